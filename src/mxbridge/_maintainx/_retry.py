"""When to try a MaintainX call again, and how long to wait first. Pure.

The server's word comes first: ``Retry-After`` (seconds or an HTTP date), then
``X-Rate-Limit-Reset`` (seconds until the window resets) when the answer is a
429 or ``X-Rate-Limit-Remaining`` is 0. A small margin is added, as MaintainX's
"Rate Limiting" text recommends. With no hint, the wait is exponential backoff
with full jitter. Every wait is capped at `RetryPolicy.max_delay`.
"""

from __future__ import annotations

import email.utils
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

__all__ = [
    "RetryPolicy",
    "backoff_delay",
    "is_retryable_status",
    "parse_retry_after",
    "rate_limit_pause",
    "retry_delay",
]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How persistent the client is.

    `attempts` counts every try, the first included; `base_delay` is the first
    backoff ceiling, doubled per retry; `max_delay` caps every wait, including
    one the server asked for; `hint_margin` is added to server-named waits.
    """

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 60.0
    hint_margin: float = 0.25


def is_retryable_status(status: int) -> bool:
    """Return whether an answer with `status` is worth trying again."""
    return status == 429 or (500 <= status <= 599 and status != 501)


def parse_retry_after(value: str, now: float) -> float | None:
    """Return the seconds a ``Retry-After`` value asks for, or None if unreadable.

    Accepts delta-seconds (``"120"``, also ``"1.5"``) and an HTTP date, which is
    read against `now` (unix seconds). A date in the past means no wait.
    """
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        return _seconds_until_http_date(value, now)
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def _seconds_until_http_date(value: str, now: float) -> float | None:
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        return None
    return max(0.0, moment.timestamp() - now)


def _header_seconds(headers: Mapping[str, str], name: str) -> float | None:
    raw = headers.get(name)
    if raw is None:
        return None
    try:
        seconds = float(raw.strip())
    except ValueError:
        return None
    return max(0.0, seconds) if math.isfinite(seconds) else None


def rate_limit_pause(headers: Mapping[str, str]) -> float | None:
    """Return how long to hold all calls when the window is used up, else None.

    That is ``X-Rate-Limit-Reset`` when ``X-Rate-Limit-Remaining`` is 0.
    `headers` must be looked up without regard to case (httpx's are).
    """
    remaining = _header_seconds(headers, "x-rate-limit-remaining")
    if remaining is None or remaining > 0:
        return None
    return _header_seconds(headers, "x-rate-limit-reset")


def _server_hint(status: int, headers: Mapping[str, str], now: float) -> float | None:
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        seconds = parse_retry_after(retry_after, now)
        if seconds is not None:
            return seconds
    if status == 429:
        return _header_seconds(headers, "x-rate-limit-reset")
    return rate_limit_pause(headers)


def backoff_delay(
    attempt: int, policy: RetryPolicy, rand: Callable[[], float]
) -> float:
    """Return the jittered wait before retry number `attempt` (1 for the first).

    Full jitter: uniform between 0 and ``base_delay * 2 ** (attempt - 1)``,
    the ceiling itself capped at `policy.max_delay`.
    """
    ceiling = min(policy.max_delay, policy.base_delay * 2.0 ** max(0, attempt - 1))
    return rand() * ceiling


def retry_delay(
    status: int,
    headers: Mapping[str, str],
    attempt: int,
    *,
    now: float,
    policy: RetryPolicy,
    rand: Callable[[], float],
) -> float:
    """Return how long to wait before retry number `attempt` of a failed call.

    `status` is the answer's HTTP status (0 when no answer came) and `headers`
    its headers, looked up without regard to case.
    """
    hint = _server_hint(status, headers, now)
    if hint is None:
        return backoff_delay(attempt, policy, rand)
    return min(policy.max_delay, hint + policy.hint_margin)
