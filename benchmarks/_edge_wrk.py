"""Drive a server with wrk and the ``edge.lua`` script, and read its figures."""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured, and the CPU time wrk itself used."""

    requests: int
    seconds: float
    ok: int
    accepted: int
    duplicate: int
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    wrk_cpu_seconds: float

    @property
    def ok_per_second(self) -> float:
        """Requests answered 200, per second."""
        return self.ok / self.seconds

    @property
    def accepted_per_second(self) -> float:
        """Deliveries answered 200 "accepted" (new and committed), per second."""
        return self.accepted / self.seconds

    @property
    def wrk_cpu_share(self) -> float:
        """wrk's CPU time over the run's wall time (1.0 is one whole core)."""
        return self.wrk_cpu_seconds / self.seconds


def wrk_command() -> str:
    """The wrk executable, or an error saying how to install it."""
    found = shutil.which("wrk")
    if found is None:
        raise RuntimeError("wrk is not installed: apt-get install -y wrk")
    return found


def run_wrk(
    url: str,
    request_file: Path,
    *,
    connections: int,
    seconds: int,
    cycle: bool = False,
) -> LoadResult:
    """Send the file's requests to `url` for at most `seconds`, then summarise.

    Each request is sent once unless `cycle`, and the run stops early when they
    run out; `LoadResult.duplicate` is then non-zero.
    """
    command = [
        wrk_command(),
        "--threads=1",
        f"--connections={connections}",
        f"--duration={seconds}s",
        "--timeout=10s",
        f"--script={HERE / 'edge.lua'}",
        url,
        "--",
        str(request_file),
        *(["cycle"] if cycle else []),
    ]
    before = _children_cpu()
    done = subprocess.run(
        command, capture_output=True, text=True, check=True, timeout=seconds + 60
    )
    cpu = _children_cpu() - before
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    return LoadResult(
        requests=summary["requests"],
        seconds=summary["duration_us"] / 1e6,
        ok=summary["ok"],
        accepted=summary["accepted"],
        duplicate=summary["duplicate"],
        p50_ms=summary["p50_us"] / 1000,
        p99_ms=summary["p99_us"] / 1000,
        max_ms=summary["max_us"] / 1000,
        errors=summary["socket_errors"] + summary["status_errors"],
        wrk_cpu_seconds=cpu,
    )


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime
