"""The retry schedule of a failing delivery. Pure.

Exponential backoff with jitter: attempt n waits ``initial * multiplier**(n-1)``
seconds, capped at `max_delay`, spread by ``±jitter`` so that many deliveries
failing together do not come back together. The defaults wait 15 s, 45 s, 2 min,
7 min, 20 min, 1 h, 3 h, then 6 h at most, and give up after 11 attempts, about
22.5 hours after the first.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

__all__ = ["RetryPolicy"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long a delivery is tried before it goes dead."""

    max_attempts: int = 11
    initial_delay: float = 15.0
    multiplier: float = 3.0
    max_delay: float = 6 * 3600.0
    jitter: float = 0.2

    def base_delay(self, attempts: int) -> float:
        """The delay after `attempts` failed attempts, before jitter."""
        exponent = max(attempts - 1, 0)
        # Step by step, stopping at the cap, so an absurd count cannot overflow.
        delay = self.initial_delay
        for _ in range(exponent):
            delay *= self.multiplier
            if delay >= self.max_delay:
                return self.max_delay
        return min(delay, self.max_delay)

    def next_delay(
        self,
        attempts: int,
        *,
        retry_after: float | None = None,
        rng: random.Random | None = None,
    ) -> float | None:
        """Seconds to wait before the next attempt, or None when it should go dead.

        `attempts` counts the attempts made so far, this failed one included. A
        handler's own `retry_after` wins over the schedule, still capped.
        """
        if attempts >= self.max_attempts:
            return None
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_delay)
        spread = (rng or random).uniform(-self.jitter, self.jitter)
        return self.base_delay(attempts) * (1.0 + spread)

    def total_span(self) -> float:
        """Seconds from the first attempt to the last, without jitter."""
        return sum(self.base_delay(n) for n in range(1, self.max_attempts))
