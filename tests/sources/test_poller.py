"""The poller against the sandbox over real HTTP: derived events, watermark
cases, webhook overlap, fault switches and 429 storms."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from conftest import RunningSandbox
from mxbridge import Bridge, Event, RateLimitedError
from mxbridge._maintainx import MaintainXClient, RetryPolicy
from mxbridge._sources import PageReport, Poller
from mxbridge._sources._records import KINDS
from mxbridge._store import SqlStore
from mxbridge._worker import Worker
from mxkit import admin, api, new_work_order, running_edge, set_status, settle

pytest_plugins = ["mxfixtures"]


def _poller(
    store: SqlStore, client: MaintainXClient, bridge: Bridge | None = None, **kw: object
) -> Poller:
    options: dict[str, object] = {"lookback": 86400.0, **kw}
    return Poller(store, client, bridge or Bridge(), **options)  # type: ignore[arg-type]


def _stamp(sb: RunningSandbox, wo_id: int, moment: datetime) -> None:
    """Give a sandbox work order an exact updatedAt (a same-instant commit)."""
    text = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    sb.sandbox.plant.data["workOrders"][str(wo_id)]["updatedAt"] = text


async def _polled(store: SqlStore) -> list[tuple[str, str | None, str]]:
    found = await store.list_events(limit=1000)
    return sorted(
        (e.event_type, e.resource_id, e.source)
        for e in found
        if e.source in ("poll", "backfill")
    )


async def test_dropped_delivery_is_recovered_by_the_poller(
    sandbox: RunningSandbox,
    db_store: SqlStore,
    mx_client: MaintainXClient,
    db_url: str,
) -> None:
    """A status change whose delivery was dropped becomes a poll event with
    the old status from the last known state; the announced creation does not."""
    bridge = Bridge()
    handled: list[tuple[str, tuple[str, ...]]] = []

    @bridge.on("workorder.*")
    async def record(event: Event) -> None:
        handled.append((event.source, event.names))

    poller = _poller(db_store, mx_client, bridge)
    with running_edge(db_url, bridge) as edge:
        edge.subscribe(sandbox, "NEW_WORK_ORDER", "WORK_ORDER_STATUS_CHANGE")
        wo_id = new_work_order(sandbox)
        settle(sandbox)
        assert await poller.run_once() == 0
        admin(sandbox, "/faults", {"drop": 1})
        set_status(sandbox, wo_id, "DONE")
        settle(sandbox)

    emitted = await poller.run_once()
    await Worker(db_store, bridge).run_until_idle()

    assert emitted == 1
    [summary] = await db_store.list_events(name="workorder.completed")
    event = await db_store.get_event(summary.id)
    assert event is not None
    assert (event.source, event.payload["oldStatus"]) == ("poll", "OPEN")
    assert [source for source, _ in handled] == ["default", "poll"]


async def test_change_announced_by_webhook_is_not_polled_again(
    sandbox: RunningSandbox,
    db_store: SqlStore,
    mx_client: MaintainXClient,
    db_url: str,
) -> None:
    """A change the webhook delivered is not emitted by the poller, and
    polling the same state twice stores nothing new."""
    poller = _poller(db_store, mx_client)
    with running_edge(db_url, Bridge()) as edge:
        edge.subscribe(sandbox, "NEW_WORK_ORDER", "WORK_ORDER_STATUS_CHANGE")
        wo_id = new_work_order(sandbox)
        set_status(sandbox, wo_id, "IN_PROGRESS")
        settle(sandbox)

        first, second = await poller.run_once(), await poller.run_once()

    assert (first, second) == (0, 0)
    assert await _polled(db_store) == []


async def test_poll_derives_created_status_and_updated_events(
    sandbox: RunningSandbox, db_store: SqlStore, mx_client: MaintainXClient
) -> None:
    """First seen is created; a cancel and a skip are status changes with their
    outcome names; a field edit is updated."""
    ids = [new_work_order(sandbox, f"wo {n}") for n in range(3)]
    poller = _poller(db_store, mx_client)
    assert await poller.run_once() == 3

    set_status(sandbox, ids[0], "CANCELED")
    admin(sandbox, f"/workorders/{ids[1]}/skip")
    api(sandbox, "PATCH", f"/workorders/{ids[2]}", {"priority": "HIGH"})
    assert await poller.run_once() == 3

    latest = await db_store.list_events(limit=3)
    by_id = {e.resource_id: set(e.names) for e in latest}
    assert "workorder.canceled" in by_id[str(ids[0])]
    assert "workorder.skipped" in by_id[str(ids[1])]
    assert "workorder.updated" in by_id[str(ids[2])]
    assert {e.source for e in latest} == {"poll"}


async def test_three_records_sharing_updated_at_across_pages_of_two(
    sandbox: RunningSandbox, db_store: SqlStore, mx_client: MaintainXClient
) -> None:
    """Three records with one updatedAt, read two per page, all become events
    once; a second walk adds nothing."""
    moment = datetime.now(UTC) - timedelta(minutes=5)
    ids = [new_work_order(sandbox, f"wo {n}") for n in range(3)]
    for wo_id in ids:
        _stamp(sandbox, wo_id, moment)
    poller = _poller(db_store, mx_client, page_size=2)

    first, second = await poller.run_once(), await poller.run_once()

    assert (first, second) == (3, 0)
    polled = await _polled(db_store)
    assert polled == sorted(("NEW_WORK_ORDER", str(i), "poll") for i in ids)


async def test_whole_page_equal_to_the_watermark_is_passed_not_looped(
    sandbox: RunningSandbox, db_store: SqlStore, mx_client: MaintainXClient
) -> None:
    """A walk whose first page holds only records equal to the watermark moves
    on to the next page, finds the one new record there, and ends."""
    moment = datetime.now(UTC) - timedelta(minutes=5)
    ids = [new_work_order(sandbox, f"wo {n}") for n in range(3)]
    for wo_id in ids:
        _stamp(sandbox, wo_id, moment)
    poller = _poller(db_store, mx_client, page_size=2, overlap=0.0)
    assert await poller.run_once() == 3
    late = new_work_order(sandbox, "same instant, higher id")
    _stamp(sandbox, late, moment)
    before = sandbox.sandbox.counts["requests"]

    emitted = await poller.run_once()

    assert emitted == 1
    assert sandbox.sandbox.counts["requests"] - before == 2
    mark = await db_store.get_watermark("workorders")
    assert mark is not None
    assert mark.record_id == late


async def test_late_record_inside_the_overlap_is_found(
    sandbox: RunningSandbox, db_store: SqlStore, mx_client: MaintainXClient
) -> None:
    """A record committed late, with an updatedAt before the watermark but
    inside the overlap, is found by the next walk."""
    now = datetime.now(UTC)
    early, latest = new_work_order(sandbox, "a"), new_work_order(sandbox, "b")
    _stamp(sandbox, early, now - timedelta(seconds=40))
    _stamp(sandbox, latest, now - timedelta(seconds=10))
    poller = _poller(db_store, mx_client, overlap=60.0)
    assert await poller.run_once() == 2
    late = new_work_order(sandbox, "committed late")
    _stamp(sandbox, late, now - timedelta(seconds=25))

    emitted = await poller.run_once()

    assert emitted == 1
    assert ("NEW_WORK_ORDER", str(late), "poll") in await _polled(db_store)


async def test_crash_between_a_page_and_its_watermark_loses_nothing(
    sandbox: RunningSandbox, db_store: SqlStore, mx_client: MaintainXClient
) -> None:
    """Events of a page committed without the watermark saved (a crash) are
    neither lost nor stored twice when a new poller starts over."""
    ids = [new_work_order(sandbox, f"wo {n}") for n in range(3)]
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    query = {"updatedAt[gte]": since, "sort": "updatedAt", "limit": 2}
    page = await mx_client.request("GET", "/workorders", params=query)
    crashed = _poller(db_store, mx_client, page_size=2)
    assert await crashed.take_page(KINDS["workorder"], page["workOrders"], ()) == 2
    assert await db_store.get_watermark("workorders") is None

    emitted = await _poller(db_store, mx_client, page_size=2).run_once()

    assert emitted == 1
    polled = await _polled(db_store)
    assert polled == sorted(("NEW_WORK_ORDER", str(i), "poll") for i in ids)


async def test_rate_limit_storm_slows_the_poller_and_loses_nothing(
    sandbox: RunningSandbox, db_store: SqlStore, mx_client: MaintainXClient
) -> None:
    """With the sandbox allowing 2 requests a second and 429s injected, the
    poller waits as told and still stores every change once."""
    ids = [new_work_order(sandbox, f"wo {n}") for n in range(5)]
    admin(sandbox, "/rate-limit", {"limit": 2, "window": 1})
    storm = {"status": 429, "headers": {"Retry-After": "0.3"}, "count": 3}
    admin(sandbox, "/faults", {"answers": [storm]})
    started = time.monotonic()

    emitted = await _poller(db_store, mx_client, page_size=1).run_once()

    assert emitted == 5
    assert time.monotonic() - started >= 2.0
    assert sandbox.sandbox.counts["limited"] >= 1
    polled = await _polled(db_store)
    assert polled == sorted(("NEW_WORK_ORDER", str(i), "poll") for i in ids)


async def test_storm_longer_than_the_retries_resumes_from_the_watermark(
    sandbox: RunningSandbox, db_store: SqlStore
) -> None:
    """When 429s outlast the client's retries the walk stops with an error;
    the next walk resumes from the saved watermark and loses nothing."""
    ids = [new_work_order(sandbox, f"wo {n}") for n in range(3)]
    patient = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.05)
    async with MaintainXClient(
        sandbox.api_key,
        base_url=sandbox.api_url,
        requests_per_minute=None,
        retry=patient,
    ) as client:
        poller = _poller(db_store, client, page_size=2)
        storm = {"status": 429, "headers": {"Retry-After": "0"}, "count": 2}
        pages_seen: list[int] = []

        def storm_after(report: PageReport) -> None:
            pages_seen.append(report.records)
            admin(sandbox, "/faults", {"answers": [storm]})

        poller.on_page = storm_after
        with pytest.raises(RateLimitedError):
            await poller.run_once()
        poller.on_page = None

        emitted = await poller.run_once()

    assert pages_seen == [2]
    assert emitted == 1
    polled = await _polled(db_store)
    assert polled == sorted(("NEW_WORK_ORDER", str(i), "poll") for i in ids)


async def test_requests_and_assets_are_walked_against_last_known_state(
    sandbox: RunningSandbox, db_store: SqlStore, mx_client: MaintainXClient
) -> None:
    """The first walk is a baseline; later walks emit new requests and asset
    status changes, with source poll."""
    poller = _poller(db_store, mx_client)
    assert await poller.walk("request") + await poller.walk("asset") == 0
    request_id = api(sandbox, "POST", "/workrequests", {"title": "Leak"})["id"]
    api(sandbox, "POST", "/assets/90211/status", {"status": "OFFLINE"})

    emitted = await poller.walk("request") + await poller.walk("asset")

    assert emitted == 2
    assert await _polled(db_store) == [
        ("ASSET_STATUS_CHANGE", "90211", "poll"),
        ("NEW_WORK_REQUEST", str(request_id), "poll"),
    ]
