"""Describe the machine a benchmark ran on, and summarise samples."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path


def machine() -> dict[str, str]:
    """CPU count and model, memory, Python, kernel: what a reader needs to compare."""
    return {
        "cpus": str(len(os.sched_getaffinity(0))),
        "cpu model": _cpu_model(),
        "memory": f"{_mem_total_gib():.1f} GiB",
        "python": platform.python_version(),
        "kernel": platform.release(),
        "code": _code_version(),
    }


def load() -> str:
    """The 1, 5 and 15 minute load averages, as ``uptime`` shows them."""
    return ", ".join(f"{value:.2f}" for value in os.getloadavg())


def filesystem(path: Path) -> str:
    """The type of the filesystem holding `path` (for the SQLite file)."""
    best, kind = "", "unknown"
    for line in Path("/proc/mounts").read_text().splitlines():
        fields = line.split()
        mount = fields[1]
        inside = str(path).startswith(mount.rstrip("/") + "/") or mount == "/"
        if inside and len(mount) > len(best):
            best, kind = mount, fields[2]
    return kind


def percentile(samples: list[float], fraction: float) -> float:
    """The nearest-rank percentile of `samples` (0 < `fraction` <= 1)."""
    ordered = sorted(samples)
    rank = max(1, round(fraction * len(ordered)))
    return ordered[rank - 1]


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown"


def _mem_total_gib() -> float:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) / 1024 / 1024
    return 0.0


def _code_version() -> str:
    """The commit benchmarked, marked when the package's sources differ from it."""
    root = Path(__file__).resolve().parent.parent

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    dirty = git("status", "--porcelain", "--", "src")
    return f"{commit} (src modified)" if dirty else commit
