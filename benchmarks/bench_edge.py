"""Edge benchmark: receive, verify, commit (issue 2).

Starts ``mxbridge serve`` as a real subprocess on 127.0.0.1 (SQLite file in a
temporary directory, one secret, a Bridge with one trivial handler, worker on)
and loads it with wrk at a fixed concurrency, every delivery signed the
MaintainX way (both headers) and every body unique. Reports accepted events per
second and p50/p99 time to acknowledge, for ``[store] synchronous = "full"``
(the default) and ``"normal"``, and for the edge alone (``--no-worker``); the
same wrk load against a minimal Starlette app on the same server stack gives
the baseline ratio, and against a hand-written edge that only verifies, parses
and commits (``_edge_floor.py``) the floor any edge on this stack starts from.
Then, at a steady 500 events per second, the time from acknowledgment to
handler start.

Every load goes to 127.0.0.1 only, is bounded in requests and seconds, and
stops by itself.
"""

from __future__ import annotations

import contextlib
import sqlite3
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from _edge_machine import filesystem, load, machine, percentile
from _edge_paced import run_paced
from _edge_requests import signed_requests, write_request_file
from _edge_server import (
    SECRET,
    Server,
    start_baseline,
    start_floor,
    start_mxbridge,
)
from _edge_wrk import LoadResult, run_wrk, wrk_command

CONNECTIONS = 64
SECONDS = 10
WARMUP_SECONDS = 2
# Enough unique deliveries for 16,000 a second; a run that uses them up says so.
MAX_REQUESTS = 160_000
WARMUP_REQUESTS = 10_000
PACED_RATE = 500
PACED_SECONDS = 10
SYNCHRONOUS = ("full", "normal")
TARGET_RATE = 2000
TARGET_RATIO = 0.5


@dataclass(frozen=True)
class Throughput:
    """One closed-loop wrk run against one server."""

    load: LoadResult
    server_cpu: float
    committed: int | None
    handled: int | None
    load_average: str


@dataclass(frozen=True)
class EndToEnd:
    """The paced run: acknowledgment latency, and ack to handler start."""

    ack_ms: list[float]
    to_handler_ms: list[float]
    rejected: int
    late: int
    seconds: float
    client_cpu: float
    load_average: str


def main() -> None:
    """Run every measurement and print the section's figures."""
    wrk_command()
    with tempfile.TemporaryDirectory(prefix="mxbench-edge-") as tmp:
        root = Path(tmp)
        _print_machine(root)
        baseline = _measure(start_baseline(_dir(root, "baseline")), cycle=True)
        _print_throughput("baseline (Starlette, answers 200)", baseline)
        floor = _measure(start_floor(_dir(root, "floor")), handlers=False)
        _print_throughput("floor (hand-written verify, parse, commit)", floor)
        alone = _measure(
            start_mxbridge(_dir(root, "alone"), "full", worker=False), handlers=False
        )
        _print_throughput("mxbridge, the edge alone (--no-worker), full", alone)
        ours = {}
        for synchronous in SYNCHRONOUS:
            server = start_mxbridge(_dir(root, f"edge-{synchronous}"), synchronous)
            ours[synchronous] = _measure(server)
            _print_throughput(f"mxbridge, synchronous={synchronous}", ours[synchronous])
        for synchronous in SYNCHRONOUS:
            server = start_mxbridge(_dir(root, f"paced-{synchronous}"), synchronous)
            _print_end_to_end(synchronous, _measure_paced(server))
        _print_verdict(baseline, floor, alone, ours["full"])
        print(f"load average at the end: {load()}")


def _dir(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir()
    return path


# -- closed loop: throughput and time to acknowledge ----------------------


def _measure(
    server: Server, *, cycle: bool = False, handlers: bool = True
) -> Throughput:
    """Warm the server up, run the measured load, then stop the server."""
    try:
        _run_load(server, "warmup", WARMUP_REQUESTS, WARMUP_SECONDS, cycle)
        cpu_before = server.cpu_seconds()
        result = _run_load(server, "run", MAX_REQUESTS, SECONDS, cycle)
        server_cpu = (server.cpu_seconds() - cpu_before) / result.seconds
        handled = _count(server, "SELECT count(*) FROM attempts") if handlers else None
        load_average = load()
    finally:
        server.stop()
    committed = _count(server, "SELECT count(*) FROM events")
    return Throughput(result, server_cpu, committed, handled, load_average)


def _run_load(
    server: Server, run: str, count: int, seconds: int, cycle: bool
) -> LoadResult:
    requests = signed_requests(server.url, SECRET, count, f"{run}-{time.time()}")
    request_file = server.workdir / f"{run}.requests"
    write_request_file(request_file, requests)
    result = run_wrk(
        server.url,
        request_file,
        connections=CONNECTIONS,
        seconds=seconds,
        cycle=cycle,
    )
    request_file.unlink()
    return result


def _count(server: Server, query: str) -> int | None:
    """A count from the server's SQLite file, or None when it has none."""
    path = server.workdir / "bench.db"
    if not path.exists():
        return None
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    with contextlib.closing(connection) as db:
        return int(db.execute(query).fetchone()[0])


# -- paced: ack to handler start -------------------------------------------


def _measure_paced(server: Server) -> EndToEnd:
    """Send a steady `PACED_RATE` per second and time ack to handler start."""
    try:
        _run_load(server, "warmup", WARMUP_REQUESTS, 1, False)
        _wait_drained(server)
        count = PACED_RATE * PACED_SECONDS
        requests = signed_requests(server.url, SECRET, count, f"paced-{time.time()}")
        cpu_before = time.process_time()
        result = run_paced(server.port, requests, PACED_RATE)
        client_cpu = (time.process_time() - cpu_before) / result.seconds
        started = _handler_starts(server, set(result.acked_at))
        load_average = load()
    finally:
        server.stop()
    # In the order acknowledged, so the first and last second can be compared.
    acked = sorted(result.acked_at.items(), key=lambda item: item[1])
    to_handler = [
        (started[event_id] - acked_at) * 1000
        for event_id, acked_at in acked
        if event_id in started
    ]
    ack_ms = [seconds * 1000 for seconds in result.latencies]
    return EndToEnd(
        ack_ms,
        to_handler,
        result.rejected,
        result.late,
        result.seconds,
        client_cpu,
        load_average,
    )


def _wait_drained(server: Server, limit: float = 60.0) -> None:
    """Wait until the worker has no delivery left to run (the warm-up's)."""
    deadline = time.monotonic() + limit
    query = "SELECT count(*) FROM deliveries WHERE status != 'succeeded'"
    while _count(server, query) and time.monotonic() < deadline:
        time.sleep(0.2)


def _handler_starts(
    server: Server, wanted: set[str], limit: float = 60.0
) -> dict[str, float]:
    """Handler start times by event id, once every wanted event has started."""
    log = server.workdir / "handled.txt"
    deadline = time.monotonic() + limit
    found: dict[str, float] = {}
    while time.monotonic() < deadline:
        found = {}
        for line in log.read_text().splitlines():
            event_id, _, when = line.partition(" ")
            found[event_id] = float(when)
        if wanted <= found.keys():
            break
        time.sleep(0.2)
    return found


# -- printing ------------------------------------------------------------------


def _print_machine(root: Path) -> None:
    print("machine:", "; ".join(f"{k} {v}" for k, v in machine().items()))
    print(f"SQLite file on: {filesystem(root)} ({root})")
    print(f"load average at the start: {load()}")
    print(
        f"closed loop: wrk, 1 thread, {CONNECTIONS} keep-alive connections, "
        f"{SECONDS} s after a {WARMUP_SECONDS} s warm-up"
    )


def _print_throughput(name: str, run: Throughput) -> None:
    result = run.load
    answered = result.accepted if result.accepted else result.ok
    print(f"\n{name}")
    print(
        f"  {answered / result.seconds:8.0f} /s answered 200"
        f"{' accepted' if result.accepted else ''}   "
        f"p50 {result.p50_ms:.1f} ms   p99 {result.p99_ms:.1f} ms   "
        f"max {result.max_ms:.1f} ms"
    )
    per_answer = run.server_cpu / (answered / result.seconds) * 1e6
    print(
        f"  other answers {result.requests - answered}, socket errors "
        f"{result.errors}; server CPU {run.server_cpu:.2f} cores "
        f"({per_answer:.0f} us an answer), wrk CPU "
        f"{result.wrk_cpu_share:.2f} cores; load {run.load_average}"
    )
    if result.duplicate:
        print("  WARNING: ran out of unique deliveries; raise MAX_REQUESTS")
    if run.committed is not None:
        print(
            f"  events in the store after stop: {run.committed} "
            f"(acknowledged: warm-up plus {result.accepted})"
            + (
                ""
                if run.handled is None
                else f"; handler attempts by the end of the load: {run.handled}"
            )
        )


def _print_end_to_end(synchronous: str, run: EndToEnd) -> None:
    achieved = len(run.ack_ms) / run.seconds
    print(
        f"\nsteady {PACED_RATE}/s for {PACED_SECONDS} s, synchronous={synchronous} "
        f"(achieved {achieved:.0f}/s)"
    )
    print(
        f"  time to acknowledge: p50 {percentile(run.ack_ms, 0.5):.2f} ms, "
        f"p99 {percentile(run.ack_ms, 0.99):.2f} ms"
    )
    if run.to_handler_ms:
        print(
            "  ack to handler start: "
            f"p50 {percentile(run.to_handler_ms, 0.5):.2f} ms, "
            f"p99 {percentile(run.to_handler_ms, 0.99):.2f} ms, "
            f"max {max(run.to_handler_ms):.2f} ms "
            f"({len(run.to_handler_ms)} of {len(run.ack_ms)} events)"
        )
        first = percentile(run.to_handler_ms[:PACED_RATE], 0.5)
        last = percentile(run.to_handler_ms[-PACED_RATE:], 0.5)
        print(
            f"  ack to handler start, p50 of the first second {first:.2f} ms, "
            f"of the last second {last:.2f} ms"
        )
    print(
        f"  not accepted {run.rejected}, sent late {run.late}; client CPU "
        f"{run.client_cpu:.2f} cores; load {run.load_average}"
    )


def _print_verdict(
    baseline: Throughput, floor: Throughput, alone: Throughput, ours: Throughput
) -> None:
    base = baseline.load.ok_per_second
    print("\nratios to the baseline (accepted/s over answered/s):")
    for name, run in (("floor", floor), ("edge alone", alone), ("serve", ours)):
        rate = run.load.accepted_per_second
        print(f"  {name:<11}{rate:8.0f}/s   {rate / base:.3f}")
    share = alone.load.accepted_per_second / floor.load.accepted_per_second
    print(f"  the edge alone reaches {share:.2f} of the floor")
    rate = ours.load.accepted_per_second
    ratio = rate / base
    print(
        f"\nserve with its worker, synchronous=full (the defaults): ratio {ratio:.3f} "
        f"(target {TARGET_RATIO}); accepted {rate:.0f}/s (target {TARGET_RATE})"
    )
    met = rate >= TARGET_RATE and ratio >= TARGET_RATIO
    print("first target:", "met" if met else "MISSED")
