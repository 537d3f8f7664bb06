"""Poller and backfill benchmark (issue 4).

Serves the MaintainX sandbox on 127.0.0.1 in a thread, fills it in-process with
work orders, and measures two things against an SQLite store in a temporary
directory:

1. Poller throughput, rate limiting off (sandbox and client): work orders the
   poller turns into stored events per second (pages of 200, first sight, so
   one ``workorder.created`` each).
2. Backfill against the rate limit: 10,000 work orders walked by the backfill
   (no dispatch) with limiting on at MaintainX's own rate, 100 requests per
   60 s, scaled down in window to 10 requests per 6 s so it finishes in well
   under two minutes. The bound is ``200 records x 10 / 6 s`` = 333 work orders
   per second (plus one free burst of 10 pages); the figure is how close the
   backfill comes to it.

Everything stays on loopback and stops by itself.
"""

from __future__ import annotations

import asyncio
import os
import platform
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from mxbridge import Bridge
from mxbridge._maintainx import MaintainXClient, RateLimiter
from mxbridge._sandbox import SandboxConfig, create_app, serve_in_thread
from mxbridge._sources import Poller
from mxbridge._store import SqlStore

API_KEY = "bench-key"
POLL_RECORDS = 5_000
BACKFILL_RECORDS = 10_000
PAGE = 200
LIMIT, WINDOW = 10, 6.0


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text("utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _fill(app: object, count: int) -> None:
    plant = app.state.sandbox.plant  # type: ignore[attr-defined]
    for n in range(count):
        plant.create_work_order({"title": f"Work order {n}"})


async def _walk(
    url: str, db: Path, *, limiter: RateLimiter | None, source: str
) -> tuple[int, float]:
    store = SqlStore(f"sqlite:///{db}", synchronous="normal")
    await store.open()
    async with MaintainXClient(
        API_KEY, base_url=url, requests_per_minute=None, limiter=limiter
    ) as client:
        poller = Poller(
            store,
            client,
            Bridge(),
            source=source,
            name=source,
            start=datetime.now(UTC) - timedelta(days=1),
            page_size=PAGE,
            dispatch=source == "poll",
        )
        started = time.perf_counter()
        emitted = await poller.run_once()
        elapsed = time.perf_counter() - started
    await store.close()
    return emitted, elapsed


def _poll_throughput(tmp: Path) -> None:
    app = create_app(SandboxConfig(api_key=API_KEY, rate_limit=None, seed=False))
    _fill(app, POLL_RECORDS)
    with serve_in_thread(app) as base:
        emitted, elapsed = asyncio.run(
            _walk(base + "/v1", tmp / "poll.db", limiter=None, source="poll")
        )
    print(f"poller, rate limiting off: {emitted} work orders -> stored events")
    print(f"  {elapsed:.2f} s, {emitted / elapsed:,.0f} events/s (pages of {PAGE})")


def _backfill_bound(tmp: Path) -> None:
    config = SandboxConfig(
        api_key=API_KEY, rate_limit=LIMIT, rate_window=WINDOW, seed=False
    )
    app = create_app(config)
    _fill(app, BACKFILL_RECORDS)
    pages = -(-BACKFILL_RECORDS // PAGE)
    # Fastest legal walk: the first LIMIT pages at once, then LIMIT per WINDOW.
    bound_seconds = max(0.0, (pages - LIMIT) / LIMIT * WINDOW)
    limiter = RateLimiter(LIMIT, WINDOW)
    with serve_in_thread(app) as base:
        emitted, elapsed = asyncio.run(
            _walk(base + "/v1", tmp / "backfill.db", limiter=limiter, source="backfill")
        )
        limited = app.state.sandbox.counts["limited"]
    print(
        f"backfill, rate limit {LIMIT} requests per {WINDOW:g} s "
        f"(MaintainX's 100 per 60 s, window scaled down):"
    )
    print(f"  {emitted} work orders in {pages} pages, {elapsed:.1f} s, 429s: {limited}")
    print(f"  achieved {emitted / elapsed:,.0f} work orders/s")
    print(
        f"  bound {bound_seconds:.1f} s ({BACKFILL_RECORDS / bound_seconds:,.0f}"
        f" work orders/s); achieved/bound = {bound_seconds / elapsed:.2f}"
    )


def main() -> None:
    """Print poller throughput and the backfill's distance to the rate bound."""
    print(f"machine: {os.cpu_count()} CPUs (nproc), {_cpu_model()}")
    with tempfile.TemporaryDirectory() as tmp:
        _poll_throughput(Path(tmp))
        _backfill_bound(Path(tmp))


if __name__ == "__main__":
    main()
