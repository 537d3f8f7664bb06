"""The MaintainX REST API client: limited, retried, paged, typed errors.

Use `MaintainXClient`; errors are the `ApiError` family of `mxbridge._errors`.
"""

from __future__ import annotations

from mxbridge._maintainx._client import (
    API_KEY_ENV,
    DEFAULT_BASE_URL,
    MAX_PAGE_SIZE,
    MaintainXClient,
    Record,
    Subscription,
)
from mxbridge._maintainx._clock import Clock, SystemClock
from mxbridge._maintainx._limiter import RateLimiter
from mxbridge._maintainx._retry import (
    RetryPolicy,
    backoff_delay,
    parse_retry_after,
    retry_delay,
)

__all__ = [
    "API_KEY_ENV",
    "DEFAULT_BASE_URL",
    "MAX_PAGE_SIZE",
    "Clock",
    "MaintainXClient",
    "RateLimiter",
    "Record",
    "RetryPolicy",
    "Subscription",
    "SystemClock",
    "backoff_delay",
    "parse_retry_after",
    "retry_delay",
]
