"""Fixtures of the sources and enrichment tests: a store in tmp_path and a
MaintainX client on the sandbox. Loaded with ``pytest_plugins = ["mxfixtures"]``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from mxbridge._maintainx import MaintainXClient
from mxbridge._store import SqlStore

if TYPE_CHECKING:
    from conftest import RunningSandbox


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """An SQLite store file in tmp_path."""
    return f"sqlite:///{tmp_path / 'mxbridge.db'}"


@pytest.fixture
async def sqlite_store(sqlite_url: str) -> AsyncIterator[SqlStore]:
    """The test's store, open."""
    opened = SqlStore(sqlite_url)
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
