"""Signature verification, on the shared fixtures and on hostile input."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import FIXTURES
from mxbridge._errors import VerificationError
from mxbridge._signing import (
    BODY_SIGNATURE_HEADER,
    SIMPLE_SIGNATURE_HEADER,
    URI_SIGNATURE_HEADER,
    hmac_hex,
    parse_signature_header,
    sign_delivery,
    signature_header,
    verify_maintainx,
    verify_simple,
)

MANIFEST: dict[str, Any] = json.loads((FIXTURES / "manifest.json").read_text())
SECRET: str = MANIFEST["secret"]
T: int = MANIFEST["t"]
URL: str = MANIFEST["url"]
DELIVERIES = [
    pytest.param(d, id=d["file"].split("/")[-1].removesuffix(".json"))
    for d in MANIFEST["deliveries"]
]


def body_of(delivery: dict[str, Any]) -> bytes:
    """The fixture body, as bytes, exactly as MaintainX sent it."""
    return (FIXTURES / delivery["file"]).read_bytes()


def verify(headers: dict[str, str], body: bytes, **kwargs: Any) -> None:
    """Verify with the fixtures' secret, URL and time unless told otherwise."""
    options: dict[str, Any] = {"public_url": URL, "now": T, "tolerance": 300}
    options.update(kwargs)
    secrets = options.pop("secrets", [SECRET])
    verify_maintainx(headers, body, secrets, **options)


@pytest.mark.parametrize("delivery", DELIVERIES)
def test_every_fixture_verifies(delivery: dict[str, Any]) -> None:
    """Each recorded delivery verifies with its secret, URL and time."""
    verify(delivery["headers"], body_of(delivery))


@pytest.mark.parametrize("delivery", DELIVERIES)
def test_a_changed_body_byte_fails(delivery: dict[str, Any]) -> None:
    """Flipping one byte of the body breaks the body signature."""
    body = bytearray(body_of(delivery))
    body[len(body) // 2] ^= 0x01

    with pytest.raises(VerificationError) as caught:
        verify(delivery["headers"], bytes(body))

    assert caught.value.reason == "mismatch"


def test_a_changed_url_fails() -> None:
    """The URI signature binds the delivery to the URL MaintainX posted to."""
    delivery = MANIFEST["deliveries"][0]

    with pytest.raises(VerificationError) as caught:
        verify(delivery["headers"], body_of(delivery), public_url=URL + "x")

    assert caught.value.reason == "uri_mismatch"


@pytest.mark.parametrize("header", [BODY_SIGNATURE_HEADER, URI_SIGNATURE_HEADER])
def test_a_changed_signature_fails(header: str) -> None:
    """Changing one hex digit of either signature fails verification."""
    delivery = MANIFEST["deliveries"][0]
    headers = dict(delivery["headers"])
    value = headers[header]
    headers[header] = value[:-1] + ("0" if value[-1] != "0" else "1")

    with pytest.raises(VerificationError):
        verify(headers, body_of(delivery))


def test_a_changed_timestamp_fails() -> None:
    """The timestamp is signed: moving it by a second fails."""
    delivery = MANIFEST["deliveries"][0]
    headers = dict(delivery["headers"])
    headers[BODY_SIGNATURE_HEADER] = headers[BODY_SIGNATURE_HEADER].replace(
        f"t={T}", f"t={T + 1}"
    )

    with pytest.raises(VerificationError):
        verify(headers, body_of(delivery), now=T + 1)


def test_uri_check_is_off_without_public_url() -> None:
    """With no public URL configured, only the body signature is checked."""
    delivery = MANIFEST["deliveries"][0]
    headers = {BODY_SIGNATURE_HEADER: delivery["headers"][BODY_SIGNATURE_HEADER]}

    verify(headers, body_of(delivery), public_url=None)


def test_uri_header_is_required_with_public_url() -> None:
    """With a public URL configured, a missing URI signature is refused."""
    delivery = MANIFEST["deliveries"][0]
    headers = {BODY_SIGNATURE_HEADER: delivery["headers"][BODY_SIGNATURE_HEADER]}

    with pytest.raises(VerificationError) as caught:
        verify(headers, body_of(delivery))

    assert caught.value.reason == "missing"


ROUND_TRIP_HOSTILE = [
    pytest.param(b'{ "eventType" : "NEW_WORK_ORDER", "orgId":1 }', id="spacing"),
    pytest.param(b'{"orgId":1,"eventType":"NEW_WORK_ORDER"}', id="key-order"),
    pytest.param(b'{"eventType":"NEW_WORK_ORDER","cost":1.10}', id="trailing-zero"),
    pytest.param(b'{"eventType":"NEW_WORK_ORDER","qty":1E5}', id="exponent"),
    pytest.param(
        b'{"eventType":"NEW_WORK_ORDER","t":"caf\\u00e9"}', id="unicode-escape"
    ),
    pytest.param(b'{"eventType":"NEW_WORK_ORDER","u":"a\\/b"}', id="escaped-slash"),
    pytest.param(b'{"eventType":"NEW_WORK_ORDER"}\n', id="trailing-newline"),
    pytest.param(
        '{"eventType":"NEW_WORK_ORDER","title":"Pompe à chaleur — fuite"}'.encode(),
        id="non-ascii",
    ),
]


@pytest.mark.parametrize("body", ROUND_TRIP_HOSTILE)
def test_bodies_a_json_round_trip_would_change_verify(body: bytes) -> None:
    """Verification is on the raw bytes, so any byte-exact body verifies."""
    headers = sign_delivery(SECRET, T, body, URL)

    verify(headers, body)

    assert json.dumps(json.loads(body)).encode() != body


def test_any_v1_in_the_header_may_match() -> None:
    """A header with several v1 values verifies when any one matches."""
    body = b'{"eventType":"NEW_WORK_ORDER"}'
    good = sign_delivery(SECRET, T, body, URL)
    bad_v1 = "v1=" + "0" * 64
    headers = {
        name: value.replace(",v1=", f",{bad_v1},v1=") for name, value in good.items()
    }

    verify(headers, body)


def test_every_secret_of_a_source_is_tried() -> None:
    """During a rotation a delivery signed with the new secret verifies."""
    body = b'{"eventType":"NEW_WORK_ORDER"}'
    headers = sign_delivery("new-secret", T, body, URL)

    verify(headers, body, secrets=["old-secret", "new-secret"])


@pytest.mark.parametrize(
    ("offset", "reason"),
    [
        pytest.param(301, "expired", id="expired"),
        pytest.param(-301, "future", id="future"),
    ],
)
def test_time_window_reasons(offset: int, reason: str) -> None:
    """Outside the window, past and future are refused with distinct reasons."""
    body = b'{"eventType":"NEW_WORK_ORDER"}'
    headers = sign_delivery(SECRET, T, body, URL)

    with pytest.raises(VerificationError) as caught:
        verify(headers, body, now=T + offset)

    assert caught.value.reason == reason


def test_window_zero_turns_the_check_off() -> None:
    """A tolerance of 0 accepts a delivery signed long ago."""
    body = b'{"eventType":"NEW_WORK_ORDER"}'
    headers = sign_delivery(SECRET, T, body, URL)

    verify(headers, body, now=T + 10**7, tolerance=0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param("", "malformed", id="empty"),
        pytest.param("v1=" + "a" * 64, "malformed", id="no-t"),
        pytest.param("t=1789999200", "malformed", id="no-v1"),
        pytest.param("t=1,t=2,v1=" + "a" * 64, "malformed", id="two-t"),
        pytest.param("t=abc,v1=" + "a" * 64, "timestamp_unparseable", id="t-letters"),
        pytest.param("t=-5,v1=" + "a" * 64, "timestamp_unparseable", id="t-negative"),
        pytest.param(
            "t=" + "9" * 40 + ",v1=" + "a" * 64, "timestamp_unparseable", id="t-absurd"
        ),
        pytest.param("t=1789999200,v1=zz", "mismatch", id="v1-not-hex"),
        pytest.param("t=1789999200,v1=" + "é" * 64, "mismatch", id="v1-non-ascii"),
        pytest.param("garbage without equals", "malformed", id="garbage"),
    ],
)
def test_malformed_headers_are_refused_with_a_reason(value: str, reason: str) -> None:
    """Malformed headers raise VerificationError with a reason, nothing else."""
    body = b'{"eventType":"NEW_WORK_ORDER"}'

    with pytest.raises(VerificationError) as caught:
        verify({BODY_SIGNATURE_HEADER: value}, body, public_url=None, now=1789999200)

    assert caught.value.reason == reason


def test_parse_keeps_every_v1_and_ignores_other_schemes() -> None:
    """Elements other than t and v1 (a future v2, say) are ignored."""
    value = f"t={T},v0=dead,v1={'a' * 64},v2=beef,v1={'B' * 64}"

    parsed = parse_signature_header(value)

    assert parsed.timestamp == T
    assert parsed.signatures == (b"a" * 64, b"b" * 64)


def test_signature_header_round_trip() -> None:
    """A header we create is one MaintainX's format parses back."""
    value = signature_header(SECRET, T, b"payload")

    parsed = parse_signature_header(value)

    assert parsed.signatures == (hmac_hex(SECRET, f"{T}.payload".encode()).encode(),)


def test_simple_scheme_verifies_the_raw_body() -> None:
    """The guide's scheme: a bare hex HMAC of the body in x-maintainx-signature."""
    body = b'{"event":"workorder.created","data":{"id":7}}'
    headers = {SIMPLE_SIGNATURE_HEADER: hmac_hex(SECRET, body)}

    verify_simple(headers, body, ["other", SECRET])

    with pytest.raises(VerificationError):
        verify_simple(headers, body + b" ", [SECRET])
    with pytest.raises(VerificationError):
        verify_simple({}, body, [SECRET])
