"""MaintainX-style rate limiting: a fixed window per API key.

Every answer carries ``X-Rate-Limit-Limit``, ``X-Rate-Limit-Remaining`` and
``X-Rate-Limit-Reset`` (whole seconds until the window starts again); a request
over the limit gets 429 (tag "Rate Limiting" of the API description).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["WindowLimiter"]


@dataclass
class WindowLimiter:
    """`limit` requests per `window` seconds per key; `limit` None means off."""

    limit: int | None = 100
    window: float = 60.0
    clock: Callable[[], float] = time.monotonic
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)

    def configure(self, limit: int | None, window: float) -> None:
        """Change the limit and start every window afresh."""
        self.limit, self.window = limit, window
        self._windows.clear()

    def hit(self, key: str) -> tuple[bool, dict[str, str]]:
        """Count one request for `key`; return (allowed, headers to send)."""
        if self.limit is None:
            return True, {}
        now = self.clock()
        start, used = self._windows.get(key, (now, 0))
        if now - start >= self.window:
            start, used = now, 0
        allowed = used < self.limit
        used += 1 if allowed else 0
        self._windows[key] = (start, used)
        reset = max(0, math.ceil(start + self.window - now))
        headers = {
            "X-Rate-Limit-Limit": str(self.limit),
            "X-Rate-Limit-Remaining": str(max(0, self.limit - used)),
            "X-Rate-Limit-Reset": str(reset),
        }
        return allowed, headers
