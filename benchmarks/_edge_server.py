"""Start and stop the servers under test as real subprocesses on loopback."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
SECRET = "bench-secret-not-for-production"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")

_CONFIG = """\
[server]
host = "127.0.0.1"
port = {port}

[store]
url = "sqlite:///{db}"
synchronous = "{synchronous}"

[worker]
grace_seconds = 2.0

[logging]
level = "info"
format = "json"

[sources.default]
secrets = ["{secret}"]
public_url = "{url}"
tolerance_seconds = 0
"""


@dataclass
class Server:
    """A server process listening on 127.0.0.1:`port`."""

    process: subprocess.Popen[bytes]
    port: int
    workdir: Path

    @property
    def url(self) -> str:
        """Where deliveries are posted."""
        return f"http://127.0.0.1:{self.port}/webhooks/maintainx"

    def cpu_seconds(self) -> float:
        """User plus system CPU time the server process has used so far."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().split(")")[-1]
        utime, stime = fields.split()[11:13]
        return (int(utime) + int(stime)) / _CLOCK_TICKS

    def stop(self) -> None:
        """Stop the server as an operator would (SIGINT), killing it if it hangs."""
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_mxbridge(workdir: Path, synchronous: str, *, worker: bool = True) -> Server:
    """Start ``mxbridge serve`` with the benchmark's handler (and worker, if on)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/maintainx"
    config = workdir / "mxbridge.toml"
    config.write_text(
        _CONFIG.format(
            port=port,
            db=workdir / "bench.db",
            synchronous=synchronous,
            secret=SECRET,
            url=url,
        )
    )
    command = [
        _mxbridge_command(),
        "serve",
        "--config",
        str(config),
        "--app",
        f"{HERE / '_edge_app.py'}:bridge",
        *([] if worker else ["--no-worker"]),
    ]
    env = {**os.environ, "MXBENCH_HANDLER_LOG": str(workdir / "handled.txt")}
    env.pop("MAINTAINX_WEBHOOK_SECRET", None)
    return _start(command, port, workdir, env)


def start_baseline(workdir: Path) -> Server:
    """Start the minimal Starlette app on the same server stack."""
    port = free_port()
    command = [sys.executable, str(HERE / "_edge_baseline.py"), str(port)]
    return _start(command, port, workdir, dict(os.environ))


def start_floor(workdir: Path) -> Server:
    """Start the hand-written minimal verify-and-commit edge."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/webhooks/maintainx"
    db = str(workdir / "bench.db")
    command = [sys.executable, str(HERE / "_edge_floor.py"), str(port), db, SECRET, url]
    return _start(command, port, workdir, dict(os.environ))


def _mxbridge_command() -> str:
    beside = Path(sys.executable).parent / "mxbridge"
    found = str(beside) if beside.exists() else shutil.which("mxbridge")
    if found is None:
        raise RuntimeError("the mxbridge command is not installed: run make install")
    return found


def _start(command: list[str], port: int, workdir: Path, env: dict[str, str]) -> Server:
    log = (workdir / "server.log").open("ab")
    process = subprocess.Popen(command, stdout=log, stderr=log, env=env)
    server = Server(process, port, workdir)
    _wait_ready(server)
    return server


def _wait_ready(server: Server, limit: float = 30.0) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            log = (server.workdir / "server.log").read_text(errors="replace")
            tail = "\n".join(log.splitlines()[-15:])
            raise RuntimeError(f"server exited early; its last lines:\n{tail}")
        try:
            answer = httpx.get(f"http://127.0.0.1:{server.port}/readyz", timeout=1)
            if answer.status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    server.stop()
    raise RuntimeError(f"server not ready after {limit} s")
