"""Fixtures of the sources and enrichment tests: a store (SQLite, then
PostgreSQL) and a MaintainX client on the sandbox.

Loaded with ``pytest_plugins = ["mxfixtures"]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import httpx
import pytest

from mxbridge._maintainx import MaintainXClient
from mxbridge._store import SqlStore

if TYPE_CHECKING:
    from conftest import RunningSandbox


@pytest.fixture
def db_url(store_url: str) -> str:
    """The test's store: an SQLite file, or a fresh PostgreSQL schema."""
    return store_url


@pytest.fixture
async def db_store(db_url: str) -> AsyncIterator[SqlStore]:
    """The test's store, open."""
    opened = SqlStore(db_url)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def mx_client(sandbox: RunningSandbox) -> AsyncIterator[MaintainXClient]:
    """A MaintainX client on the sandbox, its own limiter off; the sandbox's
    rate limit off too (tests that want it turn it on)."""
    async with httpx.AsyncClient() as http:
        await http.post(sandbox.url + "/_sandbox/rate-limit", json={"limit": None})
    async with MaintainXClient(
        sandbox.api_key, base_url=sandbox.api_url, requests_per_minute=None
    ) as opened:
        yield opened
