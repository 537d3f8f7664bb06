"""A client-side limiter that keeps a process under MaintainX's request rate.

MaintainX allows about 100 requests per 60 seconds per user (tag "Rate
Limiting" of its API description). The limiter is a sliding-window log: a
request may start only when fewer than `limit` requests started in the last
`window` seconds. One limiter is shared by every concurrent call of a client,
so a busy bridge slows itself down instead of collecting 429s.

The server's own counters win when it speaks: `pause_until` holds every caller
until a moment the server named (``X-Rate-Limit-Remaining: 0`` with
``X-Rate-Limit-Reset``, or a 429).
"""

from __future__ import annotations

import asyncio
from collections import deque

from mxbridge._maintainx._clock import Clock, SystemClock

__all__ = ["RateLimiter"]


class RateLimiter:
    """At most `limit` request starts in any `window` seconds, across tasks."""

    def __init__(
        self, limit: int = 90, window: float = 60.0, *, clock: Clock | None = None
    ) -> None:
        if limit < 1 or window <= 0:
            raise ValueError("a rate limit needs limit >= 1 and window > 0")
        self.limit = limit
        self.window = window
        self._clock = clock or SystemClock()
        self._starts: deque[float] = deque()
        self._paused_until = 0.0
        self._lock = asyncio.Lock()

    async def acquire(self) -> None:
        """Wait until one more request may start, then count it as started."""
        async with self._lock:
            while (wait := self._wait_needed(self._clock.monotonic())) > 0:
                await self._clock.sleep(wait)
            self._starts.append(self._clock.monotonic())

    def pause_until(self, monotonic_deadline: float) -> None:
        """Hold every caller until `monotonic_deadline` (on the limiter's clock)."""
        self._paused_until = max(self._paused_until, monotonic_deadline)

    def pause_for(self, seconds: float) -> None:
        """Hold every caller for `seconds` from now."""
        self.pause_until(self._clock.monotonic() + seconds)

    def _wait_needed(self, now: float) -> float:
        while self._starts and self._starts[0] <= now - self.window:
            self._starts.popleft()
        wait = self._paused_until - now
        if len(self._starts) >= self.limit:
            wait = max(wait, self._starts[0] + self.window - now)
        return wait
