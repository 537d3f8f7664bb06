"""The store's hot path: appending, claiming and finishing, built once.

The edge appends and the worker claims and records outcomes many times a
second, each batch in a transaction of its own, so these statements are
built once here from the schema, for each dialect. On PostgreSQL they run
through SQLAlchemy like everything else. On SQLite they run straight through
the driver, on one connection the store's thread keeps: there SQLAlchemy's
execution contexts and pool bookkeeping cost more CPU than SQLite's own work,
on the same GIL as the HTTP server (see docs/benchmarks.md).

On SQLite every transaction starts with ``BEGIN IMMEDIATE``, so it holds the
write lock from its first statement: "which of these ids are stored?" and the
insert of the others cannot race another writer, and neither can a claim's
choice of deliveries and its update of them. On PostgreSQL a claim skips the
rows another worker has locked.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from mxbridge._events import Event, parse_event
from mxbridge._store._records import Claim, Outcome
from mxbridge._store._schema import attempts, deliveries, events

__all__ = [
    "ATTEMPT_COLUMNS",
    "CLAIM",
    "DELIVERY_COLUMNS",
    "EVENT_COLUMNS",
    "FINISH",
    "Statements",
    "attempt_values",
    "claim_values",
    "delivery_values",
    "event_values",
    "finish_values",
    "stored_event",
    "transaction",
]

T = TypeVar("T")

EVENT_COLUMNS = (
    "id",
    "source",
    "event_type",
    "names",
    "resource_kind",
    "resource_id",
    "org_id",
    "actor_id",
    "occurred_at",
    "received_at",
    "raw",
)
DELIVERY_COLUMNS = (
    "event_id",
    "handler",
    "status",
    "attempts",
    "next_attempt_at",
    "created_at",
    "updated_at",
)
ATTEMPT_COLUMNS = (
    "delivery_id",
    "number",
    "worker",
    "started_at",
    "finished_at",
    "outcome",
    "error",
)
# SQLite has allowed this many parameters in one statement in every build
# since 3.7; later builds allow far more.
MAX_PARAMETERS = 999

_d = deliveries.c


def _text(value: str) -> Any:
    # Constants written into the statement, so that its only parameters are
    # the named ones below.
    return sa.literal_column(f"'{value}'")


_RUNNING = _text("running")

# Claim: take the due deliveries (and those whose lease ran out, which means
# the worker holding it stopped mid-attempt) under a new lease, in one statement.
# Each kind of due row is read from its own index in order and stops at the
# limit; one query with OR would gather every due row and sort them all, so a
# backlog of n deliveries would take time in n squared to drain.


def _first_due(status: str, since: sa.Column[Any], lock: bool) -> sa.Subquery:
    """The `b_limit` rows of `status` longest due by `since`, in its index's order."""
    query = (
        sa.select(_d.id, _d.next_attempt_at)
        .where(_d.status == _text(status), since <= sa.bindparam("b_now"))
        .order_by(since)
        .limit(sa.bindparam("b_limit"))
    )
    if lock:
        query = query.with_for_update(skip_locked=True)
    return query.subquery()


def _due(lock: bool) -> sa.Select[Any]:
    parts = [
        _first_due("pending", _d.next_attempt_at, lock),
        _first_due("failed", _d.next_attempt_at, lock),
        _first_due("running", _d.lease_until, lock),
    ]
    chosen = sa.union_all(*(sa.select(*part.c) for part in parts)).subquery()
    return (
        sa.select(chosen.c.id)
        .order_by(chosen.c.next_attempt_at)
        .limit(sa.bindparam("b_limit"))
    )


def _claim(due: sa.Select[Any]) -> sa.Update:
    lost = sa.case(
        (_d.status == _RUNNING, _text("lease expired: the worker stopped mid-attempt")),
        else_=_d.last_error,
    )
    return (
        deliveries.update()
        .where(_d.id.in_(due.scalar_subquery()))
        .values(
            status=_RUNNING,
            attempts=_d.attempts + sa.literal_column("1"),
            lease_owner=sa.bindparam("b_owner"),
            lease_until=sa.bindparam("b_lease_until"),
            last_error=lost,
            updated_at=sa.bindparam("b_now"),
        )
        .returning(_d.id, _d.event_id, _d.handler, _d.attempts, _d.next_attempt_at)
    )


CLAIM = {
    "sqlite": _claim(_due(lock=False)),
    "postgresql": _claim(_due(lock=True)),
}

# Finish: the lease checks make a late outcome from a worker whose lease ran
# out change nothing.
FINISH = (
    deliveries.update()
    .where(
        _d.id == sa.bindparam("b_id"),
        _d.lease_owner == sa.bindparam("b_owner"),
        _d.status == _RUNNING,
        _d.attempts == sa.bindparam("b_attempt"),
    )
    .values(
        status=sa.bindparam("b_status"),
        next_attempt_at=sa.bindparam("b_retry_at"),
        lease_owner=sa.null(),
        lease_until=sa.null(),
        last_error=sa.bindparam("b_error"),
        updated_at=sa.bindparam("b_now"),
    )
)
_FINISH_PARAMETERS = (
    "b_status",
    "b_retry_at",
    "b_error",
    "b_now",
    "b_id",
    "b_owner",
    "b_attempt",
)
_CLAIM_PARAMETERS = ("b_owner", "b_lease_until", "b_now", "b_limit")


def event_values(event: Event) -> tuple[Any, ...]:
    """An event's row, in the order of `EVENT_COLUMNS`."""
    return (
        event.id,
        event.source,
        event.event_type,
        # Padded with spaces, so that LIKE '% name %' finds whole names.
        " " + " ".join(event.names) + " ",
        event.resource_kind,
        event.resource_id,
        event.org_id,
        event.actor_id,
        event.occurred_at.timestamp(),
        event.received_at.timestamp(),
        event.raw,
    )


def delivery_values(event_id: str, handler: str, now: float) -> tuple[Any, ...]:
    """A new pending delivery's row, in the order of `DELIVERY_COLUMNS`."""
    return (event_id, handler, "pending", 0, now, now, now)


def claim_values(
    owner: str, lease_until: float, now: float, limit: int
) -> dict[str, Any]:
    """The parameters of `CLAIM`."""
    values = (owner, lease_until, now, limit)
    return dict(zip(_CLAIM_PARAMETERS, values, strict=True))


def finish_values(claim: Claim, outcome: Outcome, now: float) -> dict[str, Any]:
    """The parameters of `FINISH` for one outcome."""
    values = (
        outcome.status,
        outcome.retry_at,
        outcome.error,
        now,
        claim.delivery_id,
        claim.owner,
        claim.attempt,
    )
    return dict(zip(_FINISH_PARAMETERS, values, strict=True))


def attempt_values(claim: Claim, outcome: Outcome, held: bool) -> tuple[Any, ...]:
    """An attempt's row, in the order of `ATTEMPT_COLUMNS`."""
    return (
        claim.delivery_id,
        claim.attempt,
        claim.owner,
        outcome.started_at,
        outcome.finished_at,
        outcome.status if held else "lease_lost",
        outcome.error or outcome.note,
    )


def stored_event(event_id: str, source: str, received_at: float, raw: bytes) -> Event:
    """An event as stored, parsed again from its raw bytes."""
    return parse_event(
        bytes(raw),
        source=source,
        received_at=datetime.fromtimestamp(received_at, UTC),
        event_id=event_id,
    )


def claims(rows: Sequence[Any], found: dict[str, Event], owner: str) -> list[Claim]:
    """Claims from the rows `CLAIM` returned and the events they name, oldest due first.

    ``RETURNING`` gives the rows in no particular order.
    """
    ordered = sorted(rows, key=lambda row: row[4])
    return [
        Claim(delivery_id, handler, attempt, owner, found[event_id])
        for delivery_id, event_id, handler, attempt, _ in ordered
    ]


def transaction(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``work(db)`` in one ``BEGIN IMMEDIATE`` transaction; roll back on error."""
    db.execute("BEGIN IMMEDIATE")
    try:
        result = work(db)
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.rollback()
        raise
    return result


class Statements:
    """The hot path on one SQLite driver connection, statements compiled once."""

    def __init__(self) -> None:
        self._insert_event = _insert(events, EVENT_COLUMNS)
        self._insert_delivery = _insert(deliveries, DELIVERY_COLUMNS)
        self._insert_attempt = _insert(attempts, ATTEMPT_COLUMNS)
        self._claim = _Compiled(CLAIM["sqlite"])
        self._finish = _Compiled(FINISH)

    def insert_new(
        self,
        db: sqlite3.Connection,
        new: Sequence[tuple[Event, Sequence[str]]],
        now: float,
    ) -> set[str]:
        """Insert the events of `new` not stored yet, each with its deliveries.

        `new` pairs each event with its handlers; its event ids are distinct.
        Returns the ids inserted.
        """
        ids = [event.id for event, _ in new]
        stored = _select_in(db, "SELECT id FROM events WHERE id IN ({})", ids)
        known = {row[0] for row in stored}
        fresh = [(event, wanted) for event, wanted in new if event.id not in known]
        if not fresh:
            return set()
        db.executemany(self._insert_event, [event_values(e) for e, _ in fresh])
        db.executemany(
            self._insert_delivery,
            [
                delivery_values(event.id, handler, now)
                for event, wanted in fresh
                for handler in dict.fromkeys(wanted)
            ],
        )
        return {event.id for event, _ in fresh}

    def claim(
        self,
        db: sqlite3.Connection,
        owner: str,
        limit: int,
        lease_until: float,
        now: float,
    ) -> list[Claim]:
        """Claim up to `limit` due deliveries for `owner`, with their events."""
        params = self._claim.positional(claim_values(owner, lease_until, now, limit))
        rows = db.execute(self._claim.sql, params).fetchall()
        event_ids = list({row[1] for row in rows})
        query = "SELECT id, source, received_at, raw FROM events WHERE id IN ({})"
        found = {row[0]: stored_event(*row) for row in _select_in(db, query, event_ids)}
        return claims(rows, found, owner)

    def finish(
        self,
        db: sqlite3.Connection,
        batch: Sequence[tuple[Claim, Outcome]],
        now: float,
    ) -> list[bool]:
        """Record each attempt and its outcome; per item, whether the lease held."""
        kept = []
        for claim, outcome in batch:
            params = self._finish.positional(finish_values(claim, outcome, now))
            kept.append(db.execute(self._finish.sql, params).rowcount == 1)
        db.executemany(
            self._insert_attempt,
            [
                attempt_values(claim, outcome, held)
                for (claim, outcome), held in zip(batch, kept, strict=True)
            ],
        )
        return kept


class _Compiled:
    """A statement compiled for the SQLite driver, with its parameters' order."""

    def __init__(self, statement: Any, column_keys: Sequence[str] | None = None):
        compiled = statement.compile(dialect=sqlite.dialect(), column_keys=column_keys)
        self.sql = str(compiled.string)
        self.order = tuple(compiled.positiontup or ())
        # Parameters SQLAlchemy added itself (an OFFSET 0) bring their value.
        self._given = {
            name: bind.value
            for name, bind in compiled.binds.items()
            if not bind.required
        }

    def positional(self, values: dict[str, Any]) -> list[Any]:
        """The values of named parameters, in the order the statement takes them."""
        return [
            values[name] if name in values else self._given[name] for name in self.order
        ]


def _insert(table: sa.Table, columns: Sequence[str]) -> str:
    """The insert of `columns` into `table`, checked to take them in that order."""
    compiled = _Compiled(table.insert(), columns)
    if compiled.order != tuple(columns):
        raise AssertionError(f"unexpected parameter order in {compiled.sql}")
    return compiled.sql


def _select_in(db: sqlite3.Connection, query: str, values: Sequence[Any]) -> list[Any]:
    """Rows of `query`, whose ``{}`` is an IN list, for every value, in slices."""
    rows: list[Any] = []
    for start in range(0, len(values), MAX_PARAMETERS):
        chunk = values[start : start + MAX_PARAMETERS]
        rows.extend(db.execute(query.format(",".join("?" * len(chunk))), chunk))
    return rows
