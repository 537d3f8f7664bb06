"""A paced load: requests at a steady rate on raw keep-alive connections.

wrk sends as fast as the server answers; measuring the time from acknowledgment
to handler start needs a steady, moderate rate instead, and the wall-clock time
at which each acknowledgment arrived. This client sends request ``i`` at
``start + i / rate``, over a few connections, and records both.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field


@dataclass
class PacedResult:
    """Acknowledgments seen: wall time per event id, and each request's latency."""

    acked_at: dict[str, float] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    rejected: int = 0
    late: int = 0
    seconds: float = 0.0


def run_paced(
    port: int, requests: list[bytes], rate: float, connections: int = 32
) -> PacedResult:
    """Send every request once at `rate` per second; see the module docstring."""
    return asyncio.run(_run(port, requests, rate, connections))


async def _run(
    port: int, requests: list[bytes], rate: float, connections: int
) -> PacedResult:
    result = PacedResult()
    start = time.perf_counter() + 0.1
    lanes = [
        _lane(port, requests, lane, connections, start, rate, result)
        for lane in range(connections)
    ]
    await asyncio.wait_for(asyncio.gather(*lanes), len(requests) / rate + 60)
    result.seconds = time.perf_counter() - start
    return result


async def _lane(
    port: int,
    requests: list[bytes],
    lane: int,
    step: int,
    start: float,
    rate: float,
    result: PacedResult,
) -> None:
    """One connection: sends requests lane, lane + step, ... on their schedule."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for index in range(lane, len(requests), step):
            delay = start + index / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -0.001:
                result.late += 1
            sent = time.perf_counter()
            writer.write(requests[index])
            status, body = await _read_response(reader)
            result.latencies.append(time.perf_counter() - sent)
            _record(result, status, body)
    finally:
        writer.close()
        await writer.wait_closed()


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response with a Content-Length: its status and body."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    return status, await reader.readexactly(length)


def _record(result: PacedResult, status: int, body: bytes) -> None:
    answer = json.loads(body) if status == 200 else {}
    if answer.get("status") != "accepted":
        result.rejected += 1
        return
    result.acked_at[answer["event_id"]] = time.time()
