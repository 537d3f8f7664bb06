"""The mirror action on a real SQLite file and, when reachable, real PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from itertools import permutations
from pathlib import Path

import pytest
import sqlalchemy as sa

from fake_endpoints import ctx, fixture_event
from mxbridge._actions import Templates
from mxbridge._actions._mirror import MirrorAction, build_mirror
from mxbridge._actions._mirror_db import MirrorDatabase

PG_URLS = (
    "postgresql+psycopg://postgres@127.0.0.1:5432/test",
    "postgresql+psycopg://root@127.0.0.1:5432/test",
)
STORY = (
    "new_work_order_serialized",
    "work_order_status_change_in_progress",
    "work_order_status_change_done",
)


def _postgres_url() -> str | None:
    for url in PG_URLS:
        engine = sa.create_engine(url)
        try:
            with engine.connect():
                return url
        except sa.exc.OperationalError:
            continue
        finally:
            engine.dispose()
    return None


@pytest.fixture(params=["sqlite", "postgresql"])
def mirror(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[MirrorAction]:
    """A mirror action on its own tables (unique prefix), dropped afterwards."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    else:
        found = _postgres_url()
        if found is None:
            pytest.skip("PostgreSQL is not reachable at 127.0.0.1:5432 (db test)")
        url = found
    prefix = f"t{uuid.uuid4().hex[:10]}_"
    action = build_mirror({"url": url, "table_prefix": prefix}, {}, Templates())
    yield action
    action.database.drop()
    action.database.dispose()


async def _deliver(action: MirrorAction, names: tuple[str, ...]) -> None:
    for name in names:
        await action.run(ctx(fixture_event(name)))


async def test_story_in_order_gives_state_history_and_durations(
    mirror: MirrorAction,
) -> None:
    """Created, started, done: the latest state, three history rows, durations."""
    await _deliver(mirror, STORY)

    state = mirror.database.state("workorder", "118000102")
    history = mirror.database.history("workorder", "118000102")
    assert state is not None
    assert (state["status"], state["sub_status"], state["deleted"]) == (
        "DONE",
        None,
        False,
    )
    assert state["title"] == "Compressor #2 leaking oil at the inlet flange"
    assert state["priority"] == "HIGH"
    assert [(h["old_status"], h["new_status"]) for h in history] == [
        (None, "OPEN"),
        ("OPEN", "IN_PROGRESS"),
        ("IN_PROGRESS", "DONE"),
    ]
    assert history[2]["actor_id"] == 520044
    durations = _durations(mirror)
    assert durations["OPEN"] == pytest.approx(1268.213, abs=0.01)
    assert durations["IN_PROGRESS"] == pytest.approx(4897.698, abs=0.01)


@pytest.mark.parametrize("order", list(permutations(range(3))), ids=str)
async def test_any_order_with_duplicates_gives_the_same_final_state(
    mirror: MirrorAction, order: tuple[int, ...]
) -> None:
    """Out of order and twice over: DONE, the title, one row per distinct event."""
    shuffled = tuple(STORY[i] for i in order)

    await _deliver(mirror, shuffled + shuffled[:2])

    state = mirror.database.state("workorder", "118000102")
    history = mirror.database.history("workorder", "118000102")
    assert state is not None
    assert state["status"] == "DONE"
    assert state["title"] == "Compressor #2 leaking oil at the inlet flange"
    assert state["last_event_type"] == "WORK_ORDER_STATUS_CHANGE"
    assert len(history) == 3
    assert [h["new_status"] for h in history] == ["OPEN", "IN_PROGRESS", "DONE"]


async def test_older_status_never_moves_the_state_back(mirror: MirrorAction) -> None:
    """A status change older than the stored state leaves the status alone."""
    await _deliver(mirror, (STORY[2], STORY[1]))

    state = mirror.database.state("workorder", "118000102")

    assert state is not None
    assert state["status"] == "DONE"


async def test_requests_and_assets_have_their_tables(mirror: MirrorAction) -> None:
    """A new request and an asset going offline are mirrored too."""
    await _deliver(mirror, ("new_work_request", "asset_status_change"))

    asset = mirror.database.state("asset", "90211")
    asset_history = mirror.database.history("asset", "90211")
    request = mirror.database.state("request", "5300871")
    assert asset is not None
    assert asset["status"] == "OFFLINE"
    assert (asset_history[0]["old_status"], asset_history[0]["new_status"]) == (
        "ONLINE",
        "OFFLINE",
    )
    assert request is not None


async def test_other_kinds_pass_through(mirror: MirrorAction) -> None:
    """A part's event is not mirrored, and is no failure."""
    await _deliver(mirror, ("part_quantity_change",))

    assert "nothing" in mirror.preview(ctx(fixture_event("part_quantity_change")))


async def test_delete_marks_the_row_deleted(mirror: MirrorAction) -> None:
    """A deleted work order stays, marked deleted."""
    await _deliver(mirror, ("work_order_delete",))

    state = mirror.database.state("workorder", "118000099")

    assert state is not None
    assert state["deleted"] is True


def _durations(action: MirrorAction) -> dict[str, float]:
    engine = action.database.engine()
    query = sa.text(
        f"SELECT status, seconds FROM {action.database.view_name} "
        "WHERE work_order_id = '118000102'"
    )
    with engine.connect() as conn:
        return {row.status: float(row.seconds) for row in conn.execute(query)}


def test_processes_starting_together_create_the_tables_once(
    mirror: MirrorAction,
) -> None:
    """Three mirrors of one fresh database, started at the same instant.

    As ``serve`` and ``worker`` (or the test's own reader) do: each waits for
    the first to create the tables, then finds them, instead of failing.
    """
    url, prefix = mirror.database.url, mirror.database.prefix
    others = [MirrorDatabase(url, prefix=prefix) for _ in range(3)]
    start = threading.Barrier(len(others))
    errors: list[BaseException] = []

    def open_one(database: MirrorDatabase) -> None:
        start.wait()
        try:
            database.engine()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one, args=(db,)) for db in others]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for database in others:
        database.dispose()

    assert errors == []
