"""Shared fixtures: real servers on loopback and the shared delivery fixtures.

- `sandbox`: a local stand-in for MaintainX's API;
- `receiver`: an HTTP endpoint that records what is posted to it;
- `SHARED`: the project's shared folder (fixtures, API reference), beside the
  repository or where `MXBRIDGE_SHARED` says; without it the run stops at once.
"""

from __future__ import annotations

import os
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
SHARED_ENV = "MXBRIDGE_SHARED"
SHARED = Path(
    os.environ.get(SHARED_ENV) or Path(__file__).resolve().parents[2] / "shared"
)
FIXTURES = SHARED / "fixtures" / "maintainx"


def pytest_configure(config: pytest.Config) -> None:
    """Stop with one line, before any test, when the shared folder is missing."""
    if not (FIXTURES / "manifest.json").is_file():
        pytest.exit(
            f"the shared fixtures are not at {FIXTURES}: the tests need the "
            f"project's shared folder beside this repository (../shared) or its "
            f"path in {SHARED_ENV}",
            returncode=4,
        )


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


# -- a real mxbridge edge on loopback -------------------------------------------

SECRET = "test-secret-0b7c1f"


def signed_headers(
    body: bytes, *, secret: str = SECRET, url: str = "", t: int | None = None
) -> dict[str, str]:
    """Both MaintainX signature headers for `body` posted to `url`, signed now."""
    import time

    from mxbridge._signing import sign_delivery

    headers = sign_delivery(secret, int(time.time()) if t is None else t, body, url)
    return {"content-type": "application/json", **headers}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    """Merge `extra` into a copy of `base`, recursing into tables."""
    merged = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def make_config(tmp_path: Path, **overrides: Any) -> Any:
    """A Config for tests: SQLite in `tmp_path`, one source, a fast worker."""
    from mxbridge._config import Config

    base = {
        "store": {"url": f"sqlite:///{tmp_path / 'mxbridge.db'}"},
        "sources": {"default": {"secrets": [SECRET]}},
        "worker": {"poll_interval": 0.05, "grace_seconds": 2},
        "retry": {"initial_delay": 0.05, "multiplier": 2, "jitter": 0},
    }
    return Config.model_validate(merge(base, overrides))


@dataclass
class RunningEdge:
    """An mxbridge service served on loopback, with its store's URL."""

    url: str
    service: Any

    @property
    def webhook_url(self) -> str:
        """The default source's endpoint."""
        return self.url + "/webhooks/maintainx"

    def deliver(self, body: bytes, *, source: str | None = None, **sign: Any) -> Any:
        """POST `body`, correctly signed, and return the response."""
        import httpx

        url = self.webhook_url + (f"/{source}" if source else "")
        return httpx.post(url, content=body, headers=signed_headers(body, **sign))


@pytest.fixture
def run_edge(tmp_path: Path) -> Any:
    """Start services on loopback: ``with run_edge(bridge, **config) as edge``."""
    import contextlib

    from mxbridge._service import Service

    @contextlib.contextmanager
    def start(bridge: Any, **overrides: Any) -> Iterator[RunningEdge]:
        service = Service(make_config(tmp_path, **overrides), bridge)
        with serve_in_thread(service.app()) as url:
            yield RunningEdge(url, service)

    return start


def wait_for(condition: Any, timeout: float = 10.0, interval: float = 0.02) -> None:
    """Wait until `condition()` is true; fail the test after `timeout` seconds."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(interval)


def read_store(store_url: str, action: Any) -> Any:
    """Run ``await action(store)`` on a fresh store opened on `store_url`."""
    from mxbridge._config import Config
    from mxbridge._service import with_store

    return with_store(Config.model_validate({"store": {"url": store_url}}), action)


POSTGRES = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store URL on a fresh SQLite file, or in a fresh PostgreSQL schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    import uuid

    import sqlalchemy as sa

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sa.create_engine(POSTGRES)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(f"CREATE SCHEMA {schema}"))
    except sa.exc.OperationalError as exc:
        engine.dispose()
        pytest.skip(f"PostgreSQL is not reachable at 127.0.0.1:5432: {exc}")
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


@pytest.fixture
async def store(store_url: str) -> Any:
    """An open store on a fresh SQLite file or PostgreSQL schema."""
    from mxbridge._store import SqlStore

    opened = SqlStore(store_url)
    await opened.open()
    yield opened
    await opened.close()
