"""Shared pieces for the sources and enrichment tests: a real edge, a store in
tmp_path, a MaintainX client on the sandbox, and small API helpers.

The fixtures live in ``tests/mxfixtures.py``, loaded with ``pytest_plugins``
(a conftest of their own would shadow the root one, imported by name).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
from starlette.applications import Starlette

from mxbridge import Bridge
from mxbridge._config import SourceConfig
from mxbridge._edge import create_app
from mxbridge._sandbox import serve_in_thread
from mxbridge._store import SqlStore

if TYPE_CHECKING:
    from conftest import RunningSandbox


def api(sb: RunningSandbox, method: str, path: str, body: object = None) -> Any:
    """Call the sandbox's API (with its key) and return the JSON answer."""
    r = httpx.request(method, sb.api_url + path, json=body, headers=sb.auth)
    r.raise_for_status()
    return r.json() if r.content else {}


def admin(sb: RunningSandbox, path: str, body: object = None) -> Any:
    """Call one of the sandbox's /_sandbox controls."""
    r = httpx.post(sb.url + "/_sandbox" + path, json=body, timeout=20)
    r.raise_for_status()
    return r.json()


def settle(sb: RunningSandbox) -> None:
    """Wait until the sandbox has sent every queued delivery."""
    assert admin(sb, "/idle") == {"idle": True}


def new_work_order(sb: RunningSandbox, title: str = "Pump noisy") -> int:
    """Create a work order in the sandbox; return its id."""
    return int(api(sb, "POST", "/workorders", {"title": title})["id"])


def set_status(sb: RunningSandbox, wo_id: int, status: str) -> None:
    """Move a work order to `status` in the sandbox."""
    api(sb, "PATCH", f"/workorders/{wo_id}/status", {"status": status})


@dataclass
class Edge:
    """mxbridge's edge served on loopback, writing to the test's store file."""

    url: str
    sources: dict[str, SourceConfig] = field(default_factory=dict)

    def subscribe(self, sb: RunningSandbox, *event_types: str) -> None:
        """Subscribe the edge to `event_types` and trust their secrets."""
        secrets = list(self.sources.get("default", SourceConfig()).secrets)
        for event_type in event_types:
            body = {"type": event_type, "url": self.url + "/webhooks/maintainx"}
            secrets.append(api(sb, "POST", "/subscriptions", body)["secret"])
        self.sources["default"] = SourceConfig(secrets=secrets)


@contextmanager
def running_edge(url: str, bridge: Bridge) -> Iterator[Edge]:
    """Serve the real edge on its own store connection to the database `url`."""
    edge_store = SqlStore(url)
    sources: dict[str, SourceConfig] = {}

    async def lookup(name: str) -> SourceConfig | None:
        return sources.get(name)

    @asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        await edge_store.open()
        try:
            yield
        finally:
            await edge_store.close()

    app = create_app(store=edge_store, bridge=bridge, sources=lookup, lifespan=lifespan)
    with serve_in_thread(app) as base:
        yield Edge(base, sources)
