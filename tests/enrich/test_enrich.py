"""Enrichment and the ordering guard, against the sandbox over real HTTP."""

from __future__ import annotations

from typing import Any

from conftest import RunningSandbox
from mxbridge import Bridge, Event
from mxbridge._maintainx import MaintainXClient
from mxbridge._sources import RecordEnricher, record_missing
from mxbridge._store import SqlStore
from mxbridge._worker import Worker
from mxkit import admin, api, new_work_order, running_edge, set_status, settle

pytest_plugins = ["mxfixtures"]


def _worker(store: SqlStore, client: MaintainXClient, bridge: Bridge) -> Worker:
    enricher = RecordEnricher(store, client, bridge)
    return Worker(store, bridge, enricher=enricher, concurrency=1)


async def test_thin_delivery_is_enriched_once_for_several_handlers(
    sandbox: RunningSandbox,
    db_store: SqlStore,
    mx_client: MaintainXClient,
    db_url: str,
) -> None:
    """Two enriched handlers of one thin delivery share one fetch, with the
    union of their expansions, and keep the delivery's own facts."""
    bridge = Bridge()
    seen: dict[str, Event] = {}

    @bridge.on("workorder.status_changed", expand=("assignees",), name="a")
    async def first(event: Event) -> None:
        seen["a"] = event

    @bridge.on("workorder.status_changed", expand=("times",), name="b")
    async def second(event: Event) -> None:
        seen["b"] = event

    wo_id = new_work_order(sandbox, "Belt worn")
    with running_edge(db_url, bridge) as edge:
        edge.subscribe(sandbox, "WORK_ORDER_STATUS_CHANGE")
        set_status(sandbox, wo_id, "IN_PROGRESS")
        settle(sandbox)
    enricher = RecordEnricher(db_store, mx_client, bridge)
    before = sandbox.sandbox.counts["requests"]

    await Worker(db_store, bridge, enricher=enricher).run_until_idle()

    assert enricher.fetches == 1
    assert sandbox.sandbox.counts["requests"] - before == 1
    for event in seen.values():
        assert event.record is not None
        assert event.record["title"] == "Belt worn"
        assert {"assignees", "times"} <= set(event.record)
        assert event.payload["oldStatus"] == "OPEN"
        assert event.actor_id is not None
    kept = await db_store.get_event_record(seen["a"].id)
    assert kept is not None
    assert kept.expand == ("assignees", "times")


async def test_events_about_one_record_share_a_recent_fetch(
    sandbox: RunningSandbox,
    db_store: SqlStore,
    mx_client: MaintainXClient,
    db_url: str,
) -> None:
    """Two events about one work order, both older than a fetch made within the
    window, are enriched by that one fetch."""
    bridge = Bridge()
    statuses: list[str] = []

    @bridge.on("workorder.*", enrich=True)
    async def mirror(event: Event) -> None:
        assert event.record is not None
        statuses.append(event.record["status"])

    with running_edge(db_url, bridge) as edge:
        edge.subscribe(sandbox, "NEW_WORK_ORDER", "WORK_ORDER_STATUS_CHANGE")
        wo_id = new_work_order(sandbox)
        set_status(sandbox, wo_id, "ON_HOLD")
        settle(sandbox)
    enricher = RecordEnricher(db_store, mx_client, bridge, window=30)

    await Worker(db_store, bridge, enricher=enricher).run_until_idle()

    assert enricher.fetches == 1
    assert statuses == ["ON_HOLD", "ON_HOLD"]


async def test_deleted_record_is_marked_missing_not_retried(
    sandbox: RunningSandbox,
    db_store: SqlStore,
    mx_client: MaintainXClient,
    db_url: str,
) -> None:
    """A record deleted before its event is handled reaches the handler as
    missing (an empty, falsy record), once, and the delivery succeeds."""
    bridge = Bridge()
    got: list[Event] = []

    @bridge.on("workorder.status_changed", enrich=True)
    async def handle(event: Event) -> None:
        got.append(event)

    wo_id = new_work_order(sandbox)
    with running_edge(db_url, bridge) as edge:
        edge.subscribe(sandbox, "WORK_ORDER_STATUS_CHANGE")
        set_status(sandbox, wo_id, "DONE")
        settle(sandbox)
    api(sandbox, "DELETE", f"/workorders/{wo_id}")

    await _worker(db_store, mx_client, bridge).run_until_idle()

    [event] = got
    assert record_missing(event)
    assert not event.record
    assert event.payload["newStatus"] == "DONE"
    [delivery] = await db_store.deliveries(event.id)
    assert (delivery.status, delivery.attempts) == ("succeeded", 1)


async def test_duplicate_and_reordered_deliveries_end_in_the_right_state(
    sandbox: RunningSandbox,
    db_store: SqlStore,
    mx_client: MaintainXClient,
    db_url: str,
) -> None:
    """A duplicated delivery is handled once; of a reordered pair the older
    one is skipped as stale, so a mirror ends at the newest status."""
    bridge = Bridge()
    mirror: dict[str, Any] = {"runs": []}

    @bridge.on("workorder.status_changed", skip_stale=True)
    async def apply(event: Event) -> None:
        mirror["runs"].append(event.payload["newStatus"])
        mirror["status"] = event.payload["newStatus"]

    wo_id = new_work_order(sandbox)
    with running_edge(db_url, bridge) as edge:
        edge.subscribe(sandbox, "WORK_ORDER_STATUS_CHANGE")
        admin(sandbox, "/faults", {"duplicate": 1})
        set_status(sandbox, wo_id, "ON_HOLD")
        settle(sandbox)
        admin(sandbox, "/faults", {"reorder": 1})
        set_status(sandbox, wo_id, "IN_PROGRESS")
        set_status(sandbox, wo_id, "DONE")
        settle(sandbox)
    sent = [d["body"]["newStatus"] for d in admin_log(sandbox)]
    assert sent == ["ON_HOLD", "ON_HOLD", "DONE", "IN_PROGRESS"]

    await _worker(db_store, mx_client, bridge).run_until_idle()

    assert mirror["runs"] == ["ON_HOLD", "DONE"]
    assert mirror["status"] == "DONE"


def admin_log(sb: RunningSandbox) -> list[dict[str, Any]]:
    """The sandbox's delivery log."""
    import httpx

    return list(httpx.get(sb.url + "/_sandbox/deliveries").json()["deliveries"])
