"""The reconciler: find work order changes that no webhook and no updatedAt tell.

Time entries, comments and cost edits fire no webhook and leave ``updatedAt``
as it was. The reconciler reads, unconditionally, the work orders most likely
to have such changes (those in progress or on hold, and those changed in the
last `hours`), with their time entries and costs expanded, and compares a
digest of each with the last one it saw. A work order whose digest moved gets a
``WORK_ORDER_CHANGE`` event with ``source = reconcile``. The first time it sees
a work order it records the digest and emits nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from mxbridge._bridge import Bridge
from mxbridge._maintainx import MAX_PAGE_SIZE, MaintainXClient
from mxbridge._sources._records import (
    DEEP_EXPAND,
    KINDS,
    Change,
    iso,
    known_state,
)
from mxbridge._store import Store
from mxbridge._store._versions import KnownRecord

__all__ = ["Reconciler"]

ACTIVE_STATUSES = ("IN_PROGRESS", "ON_HOLD")


class Reconciler:
    """Refetches likely-changed work orders and emits those whose digest moved."""

    def __init__(
        self,
        store: Store,
        client: MaintainXClient,
        bridge: Bridge,
        *,
        hours: float = 24.0,
        statuses: Sequence[str] = ACTIVE_STATUSES,
        expand: Sequence[str] = DEEP_EXPAND,
        dispatch: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.client = client
        self.bridge = bridge
        self.hours = hours
        self.statuses = tuple(statuses)
        self.expand = tuple(expand)
        self.dispatch = dispatch
        self._clock = clock

    async def run_once(self) -> int:
        """Read the likely-changed work orders; return how many events stored."""
        records = await self._candidates()
        known = await self.store.known_records("workorder", list(records))
        emitted = 0
        states: list[KnownRecord] = []
        for record_id, record in records.items():
            state = known_state("workorder", record, self._clock(), with_digest=True)
            if state is None:
                continue
            last = known.get(record_id)
            if last is not None and state.digest and _unannounced(last, state):
                emitted += await self._emit(
                    record, last.digest or "", state.digest, last.status
                )
            states.append(state)
        await self.store.save_known(states)
        return emitted

    async def _candidates(self) -> dict[str, Mapping[str, Any]]:
        found: dict[str, Mapping[str, Any]] = {}
        since = iso(self._clock() - self.hours * 3600)
        walks = [
            self.client.list_work_orders(
                statuses=self.statuses, expand=self.expand, limit=MAX_PAGE_SIZE
            ),
            self.client.list_work_orders(
                updated_since=since, expand=self.expand, limit=MAX_PAGE_SIZE
            ),
        ]
        for walk in walks:
            async for record in walk:
                found[str(record["id"])] = record
        return found

    async def _emit(
        self, record: Mapping[str, Any], previous: str, fresh: str, old: str | None
    ) -> int:
        # Said to occur now: it is newer than any version already handled.
        now = datetime.fromtimestamp(self._clock(), UTC)
        change = Change(
            KINDS["workorder"],
            "WORK_ORDER_CHANGE",
            record,
            old,
            iso(now.timestamp()),
        )
        # From what to what: a change undone later (A, B, A) is a new event.
        tag = f"reconcile:{previous[:8]}>{fresh[:16]}"
        event = change.event("reconcile", now, tag=tag)
        await self.store.save_event_records(self.expand, {event.id: record})
        handlers = self.bridge.route(event) if self.dispatch else []
        result = await self.store.append(event, handlers)
        return 0 if result.duplicate else 1


def _unannounced(last: KnownRecord, state: KnownRecord) -> bool:
    # Only what moved without moving updatedAt: a change that moved it is the
    # webhook's or the poller's to report, and must not be reported twice.
    return (
        last.digest is not None
        and last.digest != state.digest
        and last.updated_at == state.updated_at
    )
