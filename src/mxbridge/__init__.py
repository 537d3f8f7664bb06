"""mxbridge: receive, verify, store and act on MaintainX webhooks.

    from mxbridge import Bridge, Event

    bridge = Bridge()

    @bridge.on("workorder.completed")
    async def tell_erp(event: Event) -> None:
        ...

Run it with ``mxbridge serve --app mymodule:bridge``.
"""

from __future__ import annotations

from mxbridge._bridge import Bridge, Handler
from mxbridge._errors import (
    ApiError,
    ApiUnavailableError,
    AuthenticationError,
    ConfigError,
    HandlerError,
    MxbridgeError,
    NotFoundError,
    PayloadError,
    PermanentError,
    RateLimitedError,
    RetryableError,
    StoreError,
    VerificationError,
)
from mxbridge._events import Event, parse_event
from mxbridge._retry import RetryPolicy
from mxbridge._signing import sign_delivery, verify_maintainx, verify_simple
from mxbridge._sources import record_missing, record_unchanged

__all__ = [
    "ApiError",
    "ApiUnavailableError",
    "AuthenticationError",
    "Bridge",
    "ConfigError",
    "Event",
    "Handler",
    "HandlerError",
    "MxbridgeError",
    "NotFoundError",
    "PayloadError",
    "PermanentError",
    "RateLimitedError",
    "RetryPolicy",
    "RetryableError",
    "StoreError",
    "VerificationError",
    "parse_event",
    "record_missing",
    "record_unchanged",
    "sign_delivery",
    "verify_maintainx",
    "verify_simple",
]
