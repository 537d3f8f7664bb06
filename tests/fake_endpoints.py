"""Loopback HTTP endpoints for the action and rule tests: Slack, an ERP."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from standardwebhooks import Webhook
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from conftest import FIXTURES
from mxbridge._actions import ActionContext
from mxbridge._events import Event, parse_event
from mxbridge._sandbox import serve_in_thread

ERP_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


@dataclass
class Endpoint:
    """A scripted endpoint: answers from `script` (then 200), records requests."""

    url: str = ""
    script: list[tuple[int, dict[str, str], str]] = field(default_factory=list)
    requests: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    verified: list[object] = field(default_factory=list)

    def answer(self, status: int, body: str = "", **headers: str) -> None:
        """Queue one answer."""
        self.script.append((status, headers, body))


@contextmanager
def serve_endpoint(*, verify_secret: str | None = None) -> Iterator[Endpoint]:
    """Serve an `Endpoint`; with `verify_secret`, refuse unsigned requests (401)."""
    endpoint = Endpoint()

    async def handle(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        body = await request.body()
        endpoint.requests.append((headers, body))
        if verify_secret is not None:
            try:
                endpoint.verified.append(Webhook(verify_secret).verify(body, headers))
            except Exception:
                return PlainTextResponse("bad signature", status_code=401)
        if endpoint.script:
            status, extra, text = endpoint.script.pop(0)
            return PlainTextResponse(text, status_code=status, headers=extra)
        return PlainTextResponse("ok")

    app = Starlette(routes=[Route("/{path:path}", handle, methods=["POST", "PUT"])])
    with serve_in_thread(app) as url:
        endpoint.url = url + "/hook"
        yield endpoint


def fixture_event(
    name: str, *, record: Mapping[str, Any] | None = None, event_id: str | None = None
) -> Event:
    """The shared fixture delivery `name` (``new_work_order``) as an `Event`."""
    raw = (FIXTURES / "bodies" / f"{name}.json").read_bytes()
    event = parse_event(
        raw, source="default", received_at=datetime.now(UTC), event_id=event_id
    )
    return dataclasses.replace(event, record=record) if record is not None else event


def ctx(event: Event, rule: str = "rule:test") -> ActionContext:
    """The context an action gets for `event`."""
    return ActionContext(event, rule)
