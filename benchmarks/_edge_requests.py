"""Signed MaintainX-style deliveries, each body unique, as raw HTTP requests."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

from mxbridge._signing import sign_delivery

# Thin payloads of the shapes MaintainX sends most, cycled through in turn.
_SHAPES = (
    {"eventType": "NEW_WORK_ORDER", "userId": 520017},
    {
        "eventType": "WORK_ORDER_STATUS_CHANGE",
        "userId": 520044,
        "oldStatus": "IN_PROGRESS",
        "newStatus": "DONE",
    },
    {
        "eventType": "WORK_ORDER_CHANGE",
        "userId": 520017,
        "addedAssigneeIds": [520044],
        "removedAssigneeIds": [],
    },
)


def bodies(count: int, run: str) -> Iterator[bytes]:
    """`count` compact JSON bodies, unique within `run` and across runs."""
    occurred = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime())
    for number in range(count):
        payload = {
            **_SHAPES[number % len(_SHAPES)],
            "occurredAt": occurred,
            "orgId": 48213,
            "workOrderId": 200_000_000 + number,
            "benchRun": run,
        }
        yield json.dumps(payload, separators=(",", ":")).encode()


def raw_request(url: str, secret: str, body: bytes, signed_at: int) -> bytes:
    """One HTTP/1.1 keep-alive POST of `body` to `url`, signed the MaintainX way."""
    parts = urlsplit(url)
    headers = {
        "Host": parts.netloc,
        "Content-Type": "application/json",
        "Content-Length": str(len(body)),
        **sign_delivery(secret, signed_at, body, url),
    }
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"POST {parts.path} HTTP/1.1\r\n{head}\r\n".encode() + body


def signed_requests(url: str, secret: str, count: int, run: str) -> list[bytes]:
    """`count` raw requests with unique bodies, all signed now."""
    now = int(time.time())
    return [raw_request(url, secret, body, now) for body in bodies(count, run)]


def write_request_file(path: Path, requests: list[bytes]) -> None:
    """Write requests for the wrk script: each one as ``<length>\\n<bytes>``."""
    with path.open("wb") as out:
        for request in requests:
            out.write(b"%d\n" % len(request))
            out.write(request)
