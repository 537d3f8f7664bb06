"""The one exception tree of mxbridge.

Every error the package raises on purpose derives from `MxbridgeError`::

    MxbridgeError
    ├── ConfigError            a configuration key is missing or wrong
    ├── VerificationError      a delivery's signature does not prove it (401)
    ├── PayloadError           a delivery's body is not an event (400)
    ├── StoreError             the store could not read or commit (503)
    ├── HandlerError           raised by handlers to steer their retries
    │   ├── RetryableError     try again, optionally after a given delay
    │   └── PermanentError     do not try again: dead at once
    └── ApiError               the MaintainX API answered with an error
        ├── AuthenticationError   401: the API key is wrong or missing
        ├── NotFoundError         404: the record does not exist (any more)
        ├── RateLimitedError      429 after the client's own retries
        └── ApiUnavailableError   unreachable, or 5xx after retries
"""

from __future__ import annotations

__all__ = [
    "ApiError",
    "ApiUnavailableError",
    "AuthenticationError",
    "ConfigError",
    "HandlerError",
    "MxbridgeError",
    "NotFoundError",
    "PayloadError",
    "PermanentError",
    "RateLimitedError",
    "RetryableError",
    "StoreError",
    "VerificationError",
]


class MxbridgeError(Exception):
    """The root of every error mxbridge raises on purpose."""


class ConfigError(MxbridgeError):
    """The configuration is invalid; the message names the key."""


class VerificationError(MxbridgeError):
    """A delivery could not be proven to come from MaintainX.

    `reason` is a short stable code (``"expired"``, ``"mismatch"``, ...) for logs
    and metrics; the message explains it to a person. Neither ever holds a secret
    or a full signature.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


class PayloadError(MxbridgeError):
    """A verified body is not an event mxbridge can store."""


class StoreError(MxbridgeError):
    """The store could not be reached or could not commit."""


class HandlerError(MxbridgeError):
    """Raised by a handler to say how its failure should be treated."""


class RetryableError(HandlerError):
    """A temporary failure: retry, after `retry_after` seconds when given."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentError(HandlerError):
    """A failure that retrying cannot mend: the delivery goes dead at once."""


class ApiError(MxbridgeError):
    """The MaintainX API answered with an error.

    `status` is the HTTP status (0 when no answer came), `errors` the
    ``errors[]`` entries of MaintainX's error body as ``(fieldPath, error)``
    pairs, so the message carries MaintainX's own words.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 0,
        errors: tuple[tuple[str | None, str], ...] = (),
    ) -> None:
        super().__init__(message)
        self.status = status
        self.errors = errors


class AuthenticationError(ApiError):
    """MaintainX refused the API key (401): it is wrong, revoked or missing."""


class NotFoundError(ApiError):
    """The record does not exist, or no longer does."""


class RateLimitedError(ApiError):
    """MaintainX kept answering 429 after the client's own retries."""


class ApiUnavailableError(ApiError):
    """MaintainX could not be reached, or kept failing with 5xx."""
