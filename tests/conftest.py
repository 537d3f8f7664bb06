"""Shared fixtures: real servers on loopback and the shared delivery fixtures.

- `sandbox`: a local stand-in for MaintainX's API;
- `receiver`: an HTTP endpoint that records what is posted to it;
- `SHARED`: the project's shared folder (fixtures, API reference), beside the repo.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mxbridge._sandbox import Sandbox, SandboxConfig, create_app, serve_in_thread

API_KEY = "test-key"
SHARED = Path(__file__).resolve().parents[1] / ".." / "shared"
FIXTURES = SHARED / "fixtures" / "maintainx"


@dataclass
class RunningSandbox:
    """A sandbox served on loopback: its root URL, API URL, key and object."""

    url: str
    api_url: str
    api_key: str
    sandbox: Sandbox

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header the sandbox accepts."""
        return {"Authorization": f"Bearer {self.api_key}"}


@pytest.fixture
def sandbox() -> Iterator[RunningSandbox]:
    """A fresh sandbox with the seed plant, rate limiting on (100 per 60 s)."""
    app = create_app(SandboxConfig(api_key=API_KEY))
    with serve_in_thread(app) as url:
        yield RunningSandbox(url, url + "/v1", API_KEY, app.state.sandbox)


@dataclass
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A webhook endpoint that records every POST."""

    url: str
    received: list[Received] = field(default_factory=list)

    def bodies(self) -> list[Any]:
        """The JSON bodies received, in order."""
        import json

        return [json.loads(r.body) for r in self.received]


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A loopback HTTP endpoint recording the deliveries it receives."""
    log: list[Received] = []

    async def record(request: Request) -> Response:
        headers = {k.lower(): v for k, v in request.headers.items()}
        log.append(Received(request.url.path, headers, await request.body()))
        return Response(status_code=204)

    app = Starlette(routes=[Route("/{path:path}", record, methods=["POST"])])
    with serve_in_thread(app) as url:
        yield Receiver(url, log)
