"""The retry schedule."""

from __future__ import annotations

import random

from mxbridge import RetryPolicy


def test_default_schedule_spans_about_a_day() -> None:
    """11 attempts from 15 s growing threefold to a 6 h cap: about 22.5 hours."""
    policy = RetryPolicy()

    delays = [policy.base_delay(n) for n in range(1, policy.max_attempts)]

    assert delays[:3] == [15.0, 45.0, 135.0]
    assert max(delays) == 6 * 3600
    assert 20 * 3600 < policy.total_span() < 26 * 3600


def test_jitter_stays_within_its_band() -> None:
    """Each delay lands within ±jitter of the schedule."""
    policy = RetryPolicy(jitter=0.2)
    rng = random.Random(7)

    delays = [policy.next_delay(3, rng=rng) for _ in range(200)]

    assert all(d is not None and 108 <= d <= 162 for d in delays)
    assert len({round(d or 0, 3) for d in delays}) > 100


def test_last_attempt_goes_dead() -> None:
    """After max_attempts there is no next delay."""
    policy = RetryPolicy(max_attempts=3)

    assert policy.next_delay(2) is not None
    assert policy.next_delay(3) is None


def test_retry_after_wins_but_is_capped() -> None:
    """A handler's own retry_after is used, within the schedule's cap."""
    policy = RetryPolicy(max_delay=100)

    assert policy.next_delay(1, retry_after=42) == 42
    assert policy.next_delay(1, retry_after=10**9) == 100


def test_absurd_attempt_counts_do_not_overflow() -> None:
    """The cap is reached without computing huge powers."""
    assert RetryPolicy().base_delay(10**6) == 6 * 3600
