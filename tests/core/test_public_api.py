"""The package's public surface is small, sorted and deliberate."""

from __future__ import annotations

import mxbridge

EXPECTED = {
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
}


def test_all_is_sorted_and_exactly_the_expected_names() -> None:
    """A change to the public surface must be made here on purpose."""
    assert mxbridge.__all__ == sorted(mxbridge.__all__)
    assert set(mxbridge.__all__) == EXPECTED


def test_every_exported_name_exists() -> None:
    """Each name in __all__ is importable from the package."""
    for name in mxbridge.__all__:
        assert getattr(mxbridge, name) is not None


def test_errors_share_one_root() -> None:
    """Every exported exception derives from MxbridgeError."""
    errors = [getattr(mxbridge, n) for n in EXPECTED if n.endswith("Error")]

    assert all(issubclass(e, mxbridge.MxbridgeError) for e in errors)
