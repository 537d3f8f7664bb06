"""What the store keeps about records (not events): versions, fetched records,
watermarks. Plain frozen records, no database types.

A record is named by its kind (``workorder``, ``request``, ``asset``, ...) and
its id as text, like an `Event`'s ``resource_kind`` and ``resource_id``. A
version orders two states of one record: ``updatedAt`` first, then the moment
the event about it occurred, both unix seconds.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from mxbridge._database import take_turns
from mxbridge._store._schema import (
    event_records,
    events,
    handled_versions,
    record_versions,
    watermarks,
)

__all__ = [
    "Announcement",
    "GuardResult",
    "KnownRecord",
    "StoredRecord",
    "Version",
    "Watermark",
]

Version = tuple[float, float]
"""(updatedAt, occurred-at) in unix seconds; tuples compare in that order."""


@dataclass(frozen=True, slots=True)
class KnownRecord:
    """The last known state of one record, as the bridge last saw it.

    `status` is what the API reads show (``OPEN``, ``DONE``, ``CANCELED``...);
    `digest` is the reconciler's digest of the record with its time entries and
    costs, None until the reconciler has looked at it.
    """

    kind: str
    record_id: str
    updated_at: float
    occurred_at: float
    status: str | None = None
    digest: str | None = None

    @property
    def version(self) -> Version:
        """The (updatedAt, occurred-at) pair this state was seen at."""
        return (self.updated_at, self.occurred_at)


@dataclass(frozen=True, slots=True)
class StoredRecord:
    """The record fetched for one event; `record` None when it no longer exists."""

    event_id: str
    expand: tuple[str, ...]
    record: Mapping[str, Any] | None
    fetched_at: float


@dataclass(frozen=True, slots=True)
class GuardResult:
    """The ordering guard's answer for one (handler, event).

    `stale`: a newer version of the record was already handled by the handler.
    `unchanged`: the record is the same as the last one the handler handled,
    for another event.
    """

    stale: bool
    unchanged: bool


@dataclass(frozen=True, slots=True)
class Announcement:
    """A question for the store: did an event of `event_types` about this
    record occur between `start` and `end` (unix seconds)?"""

    kind: str
    record_id: str
    event_types: tuple[str, ...]
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class Watermark:
    """How far a walk over a list has gone: the last (updatedAt, id) taken.

    `updated_at` is kept as MaintainX wrote it (ISO 8601), to send it back as is.
    """

    name: str
    updated_at: str
    record_id: int


# -- SQL, run inside one store transaction (`SqlStore._run`) ------------------


def _upsert(conn: Connection, table: sa.Table, row: dict[str, Any]) -> None:
    keys = [c.name for c in table.primary_key.columns]
    insert: Any = (
        postgresql.insert(table)
        if conn.dialect.name == "postgresql"
        else sqlite.insert(table)
    )
    values = {k: v for k, v in row.items() if k not in keys}
    conn.execute(
        insert.values(row).on_conflict_do_update(index_elements=keys, set_=values)
    )


def _known(row: Any) -> KnownRecord:
    return KnownRecord(
        row.kind, row.record_id, row.updated_at, row.occurred_at, row.status, row.digest
    )


def select_known(
    conn: Connection, kind: str, record_ids: Sequence[str], *, lock: bool = False
) -> dict[str, KnownRecord]:
    """The known state of each of `record_ids` that has one.

    With `lock`, the rows stay locked to this transaction (PostgreSQL; SQLite's
    write transactions are one at a time anyway), for a read-decide-write.
    """
    r = record_versions.c
    found: dict[str, KnownRecord] = {}
    for start in range(0, len(record_ids), 500):
        chunk = list(record_ids[start : start + 500])
        query = sa.select(record_versions).where(r.kind == kind, r.record_id.in_(chunk))
        if lock:
            query = query.with_for_update()
        found.update({row.record_id: _known(row) for row in conn.execute(query)})
    return found


def upsert_known(conn: Connection, records: Sequence[KnownRecord], now: float) -> None:
    """Save each state unless a newer version is already known.

    A state without a digest keeps the digest already known.
    """
    ids = {(k.kind, k.record_id) for k in records}
    known: dict[tuple[str, str], KnownRecord] = {}
    # In a fixed order, so that two transactions cannot each wait for the other.
    for kind in sorted({kind for kind, _ in ids}):
        # A record seen for the first time has no row to lock yet.
        take_turns(conn, "record_versions", kind)
        same = [rid for k, rid in ids if k == kind]
        found = select_known(conn, kind, same, lock=True)
        known.update({(kind, rid): v for rid, v in found.items()})
    for record in records:
        old = known.get((record.kind, record.record_id))
        if old is not None and old.version > record.version:
            continue
        digest = record.digest if record.digest is not None else old and old.digest
        row = {
            "kind": record.kind,
            "record_id": record.record_id,
            "updated_at": record.updated_at,
            "occurred_at": record.occurred_at,
            "status": record.status,
            "digest": digest,
            "seen_at": now,
        }
        _upsert(conn, record_versions, row)
        known[(record.kind, record.record_id)] = record


def guard(
    conn: Connection,
    handler: str,
    record: KnownRecord,
    event_id: str,
) -> GuardResult:
    """Compare `record` with what `handler` last started on, then note it."""
    h = handled_versions.c
    query = sa.select(handled_versions).where(
        h.handler == handler, h.kind == record.kind, h.record_id == record.record_id
    )
    # Locked until commit: a second worker on the same record waits, then reads
    # this one's version, instead of both passing the check. The row lock alone
    # cannot do it the first time, when there is no row yet.
    take_turns(conn, handler, record.kind, record.record_id)
    last = conn.execute(query.with_for_update()).first()
    if last is not None and (last.updated_at, last.occurred_at) > record.version:
        return GuardResult(stale=True, unchanged=last.digest == record.digest)
    unchanged = (
        last is not None and last.event_id != event_id and last.digest == record.digest
    )
    row = {
        "handler": handler,
        "kind": record.kind,
        "record_id": record.record_id,
        "updated_at": record.updated_at,
        "occurred_at": record.occurred_at,
        "digest": record.digest,
        "event_id": event_id,
    }
    _upsert(conn, handled_versions, row)
    return GuardResult(stale=False, unchanged=unchanged)


def save_event_records(
    conn: Connection,
    expand: Sequence[str],
    records: Mapping[str, Mapping[str, Any] | None],
    now: float,
) -> None:
    """Keep the record fetched for each event id (None: it no longer exists)."""
    for event_id, record in records.items():
        row = {
            "event_id": event_id,
            "expand": json.dumps(sorted(expand)),
            "record": None if record is None else json.dumps(record, sort_keys=True),
            "fetched_at": now,
        }
        _upsert(conn, event_records, row)


def select_event_record(conn: Connection, event_id: str) -> StoredRecord | None:
    """The record kept for an event, if any."""
    row = conn.execute(
        sa.select(event_records).where(event_records.c.event_id == event_id)
    ).first()
    if row is None:
        return None
    record = None if row.record is None else json.loads(row.record)
    return StoredRecord(
        row.event_id, tuple(json.loads(row.expand)), record, row.fetched_at
    )


def select_watermark(conn: Connection, name: str) -> Watermark | None:
    """The watermark saved under `name`, if any."""
    row = conn.execute(sa.select(watermarks).where(watermarks.c.name == name)).first()
    return None if row is None else Watermark(row.name, row.updated_at, row.record_id)


def save_watermark(conn: Connection, mark: Watermark, now: float) -> None:
    """Save a watermark, replacing the one of the same name."""
    row = {
        "name": mark.name,
        "updated_at": mark.updated_at,
        "record_id": mark.record_id,
        "saved_at": now,
    }
    _upsert(conn, watermarks, row)


def announced(
    conn: Connection, queries: Sequence[Announcement], sources: Sequence[str]
) -> list[bool]:
    """For each query, whether such an event from none of `sources` is stored."""
    e = events.c
    found = []
    for q in queries:
        query = (
            sa.select(e.id)
            .where(
                e.resource_kind == q.kind,
                e.resource_id == q.record_id,
                e.event_type.in_(list(q.event_types)),
                e.occurred_at.between(q.start, q.end),
                e.source.not_in(list(sources)),
            )
            .limit(1)
        )
        found.append(conn.execute(query).first() is not None)
    return found
