"""Worker benchmark: draining a backlog (issue 2).

Stores a backlog of deliveries in an SQLite file (``synchronous = full``, in a
temporary directory), then runs a worker in this process until none is left:
one async handler that only counts, concurrency 32. Reports deliveries run per
second and the CPU each took on the event loop and on the store's thread, for
backlogs of 5,000, 20,000 and 40,000. The smallest backlog is the baseline: a
worker whose claims cost the same however long the queue keeps the same rate
at every size, so the figure to read is each rate over the first.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from _edge_machine import machine

from mxbridge import Bridge, Event
from mxbridge._events import parse_event
from mxbridge._logging import configure_logging
from mxbridge._store import SqlStore
from mxbridge._worker import Worker

BACKLOGS = (5_000, 20_000, 40_000)
CONCURRENCY = 32
_TICKS = os.sysconf("SC_CLK_TCK")


def main() -> None:
    """Drain each backlog once and print the figures."""
    print("machine:", "; ".join(f"{k} {v}" for k, v in machine().items()))
    print(
        f"one async handler that counts, concurrency {CONCURRENCY}, SQLite full, "
        "a JSON log line per attempt (to /dev/null)"
    )
    # The worker logs each attempt, as in service: JSON, here thrown away.
    configure_logging("info", "json", stream=open(os.devnull, "w"))  # noqa: SIM115
    rates = []
    for size in BACKLOGS:
        with tempfile.TemporaryDirectory(prefix="mxbench-worker-") as tmp:
            rate, loop_us, store_us = asyncio.run(_drain(Path(tmp), size))
        rates.append(rate)
        print(
            f"  backlog {size:6,}: {rate:6.0f} deliveries/s; CPU per delivery: "
            f"event loop {loop_us:4.0f} us, other threads (the store's) "
            f"{store_us:4.0f} us; rate / first backlog's {rate / rates[0]:.2f}"
        )


async def _drain(root: Path, size: int) -> tuple[float, float, float]:
    """Store `size` deliveries, run them all; rate and CPU per delivery."""
    store = SqlStore(f"sqlite:///{root / 'bench.db'}")
    await store.open()
    ran = 0
    bridge = Bridge()

    @bridge.on("*", name="bench.count")
    async def count(event: Event) -> None:
        nonlocal ran
        ran += 1

    now = datetime.now(UTC)
    for start in range(0, size, 1000):
        events = [
            parse_event(
                f'{{"eventType":"NEW_WORK_ORDER","workOrderId":{n}}}'.encode(),
                source="default",
                received_at=now,
            )
            for n in range(start, min(size, start + 1000))
        ]
        await asyncio.gather(*(store.append(e, ["bench.count"]) for e in events))
    worker = Worker(store, bridge, concurrency=CONCURRENCY)
    loop_thread = str(threading.get_native_id())
    before = _thread_cpu()
    started = time.perf_counter()
    await worker.run_until_idle(limit=600)
    seconds = time.perf_counter() - started
    spent = {k: v - before.get(k, 0.0) for k, v in _thread_cpu().items()}
    await store.close()
    if ran != size:
        raise RuntimeError(f"ran {ran} of {size} deliveries")
    loop_cpu = spent.pop(loop_thread, 0.0)
    return size / seconds, loop_cpu / size * 1e6, sum(spent.values()) / size * 1e6


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process, by thread id."""
    found = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        found[task.name] = (int(fields[11]) + int(fields[12])) / _TICKS
    return found
