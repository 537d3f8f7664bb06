"""The Bridge the edge benchmark serves: one trivial handler for every event.

The handler records when it started, as ``<event id> <unix time>`` lines in the
file named by ``MXBENCH_HANDLER_LOG``, so the benchmark can measure the time
from acknowledgment to handler start.
"""

from __future__ import annotations

import os
import time

from mxbridge import Bridge, Event

bridge = Bridge()
_log = open(  # noqa: SIM115 - held open for the life of the server process
    os.environ.get("MXBENCH_HANDLER_LOG", os.devnull), "a", buffering=1
)


@bridge.on("*", name="bench.record_start")
async def record_start(event: Event) -> None:
    """Write the event id and the time this handler started."""
    _log.write(f"{event.id} {time.time():.6f}\n")
