"""Verify and create MaintainX webhook signatures. Pure functions, no I/O.

MaintainX signs every delivery twice, in two headers of the form
``t=<unix seconds>,v1=<hex HMAC-SHA256>``: once over ``<t>.<raw body>`` and once
over ``<t>.<the URL it posted to>``, with the subscription's secret. See the tag
"Subscriptions & Webhooks" of MaintainX's API description.

The integration guide this project grew from describes a simpler scheme, a bare
hex HMAC-SHA256 of the raw body in ``x-maintainx-signature``; `verify_simple`
accepts it for sources configured with ``scheme = "simple"``.

Signatures are checked on the bytes received, never on re-serialised JSON, and
compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from mxbridge._errors import VerificationError

__all__ = [
    "BODY_SIGNATURE_HEADER",
    "EVENT_ID_HEADER",
    "SIMPLE_SIGNATURE_HEADER",
    "URI_SIGNATURE_HEADER",
    "SignatureHeader",
    "hmac_hex",
    "parse_signature_header",
    "sign_delivery",
    "signature_header",
    "verify_maintainx",
    "verify_simple",
]

BODY_SIGNATURE_HEADER = "x-maintainx-webhook-body-signature"
URI_SIGNATURE_HEADER = "x-maintainx-webhook-uri-signature"
SIMPLE_SIGNATURE_HEADER = "x-maintainx-signature"
EVENT_ID_HEADER = "x-maintainx-event-id"

# A unix time in seconds has 10 digits until the year 2286; more than 12 is absurd
# and would only make int() and the window arithmetic do pointless work.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")


@dataclass(frozen=True, slots=True)
class SignatureHeader:
    """A parsed ``t=...,v1=...`` header: its time and every ``v1`` it carries."""

    timestamp: int
    signatures: tuple[bytes, ...]


def hmac_hex(secret: str, message: bytes) -> str:
    """Return the hex HMAC-SHA256 of `message` keyed with `secret` (UTF-8)."""
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, payload: bytes) -> str:
    """Return a MaintainX signature header value for `payload` signed at `timestamp`."""
    signed = str(timestamp).encode("ascii") + b"." + payload
    return f"t={timestamp},v1={hmac_hex(secret, signed)}"


def sign_delivery(secret: str, timestamp: int, body: bytes, url: str) -> dict[str, str]:
    """Return both MaintainX signature headers for a delivery of `body` to `url`."""
    return {
        BODY_SIGNATURE_HEADER: signature_header(secret, timestamp, body),
        URI_SIGNATURE_HEADER: signature_header(secret, timestamp, url.encode("utf-8")),
    }


def parse_signature_header(value: str) -> SignatureHeader:
    """Parse a ``t=...,v1=...`` header, keeping every ``v1`` value.

    Elements other than ``t`` and ``v1`` are ignored, as MaintainX documents.
    Raises `VerificationError` when the header is malformed: no ``t``, two
    different ``t``, a ``t`` that is not a plausible unix time, or no ``v1``.
    """
    timestamps: set[str] = set()
    signatures: list[bytes] = []
    for element in value.split(","):
        prefix, sep, item = element.strip().partition("=")
        if not sep:
            continue
        if prefix == "t":
            timestamps.add(item.strip())
        elif prefix == "v1":
            signatures.append(_signature_bytes(item.strip()))
    if not timestamps:
        raise VerificationError("malformed", "signature header has no t= element")
    if len(timestamps) > 1:
        raise VerificationError("malformed", "signature header has several t= values")
    raw_t = timestamps.pop()
    if not _TIMESTAMP.fullmatch(raw_t):
        raise VerificationError(
            "timestamp_unparseable", "signature timestamp is not a unix time"
        )
    if not signatures:
        raise VerificationError("malformed", "signature header has no v1= element")
    return SignatureHeader(int(raw_t), tuple(signatures))


def _signature_bytes(value: str) -> bytes:
    # A v1 that is not 64 hex digits can never match; keeping it as an impossible
    # value (instead of failing the whole header) lets a valid sibling v1 match.
    if not value.isascii() or not _HEX_SHA256.fullmatch(value):
        return b""
    return value.lower().encode("ascii")


def _check_window(timestamp: int, now: float, tolerance: int) -> None:
    if tolerance <= 0:
        return
    age = now - timestamp
    if age > tolerance:
        raise VerificationError(
            "expired", f"signature is {int(age)} s old, over the {tolerance} s window"
        )
    if -age > tolerance:
        raise VerificationError(
            "future",
            f"signature is {int(-age)} s in the future, over the {tolerance} s window",
        )


def _matches(header: SignatureHeader, payload: bytes, secrets: Sequence[str]) -> bool:
    signed = str(header.timestamp).encode("ascii") + b"." + payload
    found = False
    # Every secret against every v1, without stopping early: the work done does
    # not depend on which pair matched.
    for secret in secrets:
        expected = hmac_hex(secret, signed).encode("ascii")
        for candidate in header.signatures:
            found |= hmac.compare_digest(expected, candidate)
    return found


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name)
    if value is None:
        raise VerificationError("missing", f"header {name} is missing")
    return value


def verify_maintainx(
    headers: Mapping[str, str],
    body: bytes,
    secrets: Sequence[str],
    *,
    public_url: str | None,
    now: float,
    tolerance: int = 300,
) -> None:
    """Verify a delivery signed the MaintainX way, or raise `VerificationError`.

    `headers` must be looked up without regard to case (Starlette's `Headers` is,
    and so is a dict with lower-case keys). The URI signature is checked when
    `public_url` is given: it must be the URL MaintainX posts to, from
    configuration, never from the request's own ``Host``.
    """
    body_header = parse_signature_header(_header(headers, BODY_SIGNATURE_HEADER))
    _check_window(body_header.timestamp, now, tolerance)
    if not _matches(body_header, body, secrets):
        raise VerificationError("mismatch", "body signature does not match")
    if public_url is None:
        return
    uri_header = parse_signature_header(_header(headers, URI_SIGNATURE_HEADER))
    _check_window(uri_header.timestamp, now, tolerance)
    if not _matches(uri_header, public_url.encode("utf-8"), secrets):
        raise VerificationError("uri_mismatch", "URI signature does not match")


def verify_simple(
    headers: Mapping[str, str], body: bytes, secrets: Sequence[str]
) -> None:
    """Verify the guide's simple scheme: a bare hex HMAC-SHA256 of the raw body."""
    candidate = _signature_bytes(_header(headers, SIMPLE_SIGNATURE_HEADER).strip())
    found = False
    for secret in secrets:
        found |= hmac.compare_digest(hmac_hex(secret, body).encode("ascii"), candidate)
    if not candidate or not found:
        raise VerificationError("mismatch", "body signature does not match")
