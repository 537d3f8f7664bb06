"""The reconciler: changes no webhook and no updatedAt tell, over real HTTP."""

from __future__ import annotations

from conftest import RunningSandbox
from mxbridge import Bridge, Event
from mxbridge._maintainx import MaintainXClient
from mxbridge._sources import Reconciler, RecordEnricher
from mxbridge._store import SqlStore
from mxbridge._worker import Worker
from mxkit import api, new_work_order, set_status

pytest_plugins = ["mxfixtures"]


async def test_time_entry_without_webhook_is_found_by_the_reconciler(
    sandbox: RunningSandbox, db_store: SqlStore, mx_client: MaintainXClient
) -> None:
    """A time entry (no webhook, no updatedAt move) on an in-progress work
    order becomes one workorder.updated event with source reconcile."""
    bridge = Bridge()
    seen: list[Event] = []

    @bridge.on("workorder.updated", expand=("times",))
    async def costs(event: Event) -> None:
        seen.append(event)

    wo_id = new_work_order(sandbox, "Compressor service")
    set_status(sandbox, wo_id, "IN_PROGRESS")
    reconciler = Reconciler(db_store, mx_client, bridge)
    assert await reconciler.run_once() == 0
    entry = {"type": "TIME", "durationTotal": 5400, "hourlyRate": 60}
    api(sandbox, "POST", f"/workorders/{wo_id}/costs", entry)

    emitted, again = await reconciler.run_once(), await reconciler.run_once()
    enricher = RecordEnricher(db_store, mx_client, bridge)
    await Worker(db_store, bridge, enricher=enricher).run_until_idle()

    assert (emitted, again) == (1, 0)
    [event] = seen
    assert event.source == "reconcile"
    assert event.resource_id == str(wo_id)
    assert event.record is not None
    assert event.record["times"][0]["durationTotal"] == 5400
    assert enricher.fetches == 0


async def test_unchanged_work_orders_emit_nothing(
    sandbox: RunningSandbox, db_store: SqlStore, mx_client: MaintainXClient
) -> None:
    """Work orders on hold or touched recently but unchanged emit nothing."""
    wo_id = new_work_order(sandbox)
    set_status(sandbox, wo_id, "ON_HOLD")
    new_work_order(sandbox, "touched recently")
    reconciler = Reconciler(db_store, mx_client, Bridge())

    counts = [await reconciler.run_once() for _ in range(3)]

    assert counts == [0, 0, 0]
    known = await db_store.known_records("workorder", [str(wo_id)])
    assert known[str(wo_id)].digest is not None


async def test_a_change_that_moved_updated_at_is_not_reported_again(
    sandbox: RunningSandbox, db_store: SqlStore, mx_client: MaintainXClient
) -> None:
    """A status change moves updatedAt: webhooks and the poller report it, not
    the reconciler, so it is not handled twice."""
    wo_id = new_work_order(sandbox, "Conveyor belt slipping")
    set_status(sandbox, wo_id, "IN_PROGRESS")
    reconciler = Reconciler(db_store, mx_client, Bridge())
    assert await reconciler.run_once() == 0

    set_status(sandbox, wo_id, "ON_HOLD")
    emitted = await reconciler.run_once()

    assert emitted == 0
    known = await db_store.known_records("workorder", [str(wo_id)])
    assert known[str(wo_id)].status == "ON_HOLD"
