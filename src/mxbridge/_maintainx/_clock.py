"""The clock the client waits on, injectable so tests need not really sleep."""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["Clock", "SystemClock"]


class Clock(Protocol):
    """Where the client reads time and how it waits."""

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; used for intervals."""
        ...

    def time(self) -> float:
        """Unix time in seconds; used to read ``Retry-After`` HTTP dates."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait `seconds` without blocking other tasks."""
        ...


class SystemClock:
    """The real clock: `time.monotonic`, `time.time` and `asyncio.sleep`."""

    def monotonic(self) -> float:
        """Return `time.monotonic()`."""
        return time.monotonic()

    def time(self) -> float:
        """Return `time.time()`."""
        return time.time()

    async def sleep(self, seconds: float) -> None:
        """Sleep with `asyncio.sleep`."""
        await asyncio.sleep(max(0.0, seconds))
