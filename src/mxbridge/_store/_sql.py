"""`SqlStore`: the store on SQLAlchemy Core, for SQLite (default) and PostgreSQL.

Database calls are blocking, so they run on a small thread pool of the store's
own (one thread for SQLite, whose writers take turns anyway). Appends that
arrive together share one transaction (group commit): each caller is answered
only once the transaction holding its event has committed.

SQLite runs in WAL mode and every transaction starts with ``BEGIN IMMEDIATE``,
so a claim's read and its update hold the write lock together and two worker
processes never claim the same delivery. On PostgreSQL, claims use
``FOR UPDATE SKIP LOCKED``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from mxbridge._errors import StoreError
from mxbridge._events import Event, parse_event
from mxbridge._store import _subscriptions as _subs
from mxbridge._store import _versions
from mxbridge._store._group import GroupCommit
from mxbridge._store._records import (
    AppendResult,
    AttemptRecord,
    Claim,
    DeliveryRecord,
    DeliveryStatus,
    EventSummary,
    Outcome,
)
from mxbridge._store._schema import (
    SCHEMA_VERSION,
    attempts,
    deliveries,
    events,
    meta,
    metadata,
)
from mxbridge._store._subscriptions import SubscriptionRecord
from mxbridge._store._versions import (
    Announcement,
    GuardResult,
    KnownRecord,
    StoredRecord,
    Watermark,
)

__all__ = ["SqlStore"]

T = TypeVar("T")

# One transaction holds at most this many appends; more wait for the next one.
_MAX_BATCH = 512
_DUE = ("pending", "failed")


class SqlStore:
    """The store on a SQLAlchemy URL: ``sqlite:///path`` or ``postgresql+psycopg://``."""

    def __init__(
        self,
        url: str,
        *,
        synchronous: str = "full",
        lock_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.url = url
        self._synchronous = synchronous
        self._lock_timeout = lock_timeout
        self._clock = clock
        self._engine: Engine | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._appends = GroupCommit(self._write_appends, max_batch=_MAX_BATCH)
        self._outcomes = GroupCommit(self._write_outcomes, max_batch=_MAX_BATCH)

    # -- life cycle ---------------------------------------------------------

    @property
    def is_sqlite(self) -> bool:
        """True when the store is an SQLite file."""
        return sa.engine.make_url(self.url).get_backend_name() == "sqlite"

    async def open(self) -> None:
        """Connect and create the schema if it is not there yet."""
        try:
            self._engine = self._make_engine()
        except (sa.exc.ArgumentError, ImportError, OSError) as exc:
            raise StoreError(
                f"store URL {self.display_url} is not usable: {exc}"
            ) from exc
        self._executor = ThreadPoolExecutor(
            max_workers=1 if self.is_sqlite else 4, thread_name_prefix="mxbridge-store"
        )
        await self._run(self._create_schema)

    async def close(self) -> None:
        """Let pending appends commit, then disconnect."""
        await self._appends.wait()
        await self._outcomes.wait()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` on the event loop after each commit of new deliveries."""
        self._callbacks.append(callback)

    @property
    def display_url(self) -> str:
        """The store's URL with any password hidden, fit for logs."""
        try:
            return sa.engine.make_url(self.url).render_as_string(hide_password=True)
        except sa.exc.ArgumentError:
            return "(unparseable)"

    def _make_engine(self) -> Engine:
        url = sa.engine.make_url(self.url)
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(url, pool_pre_ping=True, pool_size=4)
        if url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        # Wait this long for another writer's lock, then fail: an edge that
        # answers 503 in time beats MaintainX giving up at 10 s.
        engine = sa.create_engine(url, connect_args={"timeout": self._lock_timeout})
        synchronous = self._synchronous.upper()

        @sa.event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy's "begin" below own the transactions, not pysqlite.
            dbapi_conn.isolation_level = None
            cursor = dbapi_conn.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA synchronous={synchronous}")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.close()

        @sa.event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def _create_schema(self, conn: Connection) -> None:
        metadata.create_all(conn)
        found = conn.execute(
            sa.select(meta.c.value).where(meta.c.key == "schema_version")
        ).scalar()
        if found is None:
            conn.execute(
                meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
            )
        elif int(found) > SCHEMA_VERSION:
            raise StoreError(
                f"the store was written by a newer mxbridge (schema {found}, "
                f"this one knows {SCHEMA_VERSION})"
            )

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(conn, *args)`` in one transaction on the store's thread."""
        if self._engine is None or self._executor is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                self._executor, self._transaction, func, args
            )
        except StoreError:
            raise
        except (sa.exc.SQLAlchemyError, OSError, ValueError, OverflowError) as exc:
            # The driver's own errors (a value it cannot bind, say) as well.
            raise StoreError(f"store error: {_first_line(exc)}") from exc

    def _transaction(self, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        assert self._engine is not None
        with self._engine.begin() as conn:
            return func(conn, *args)

    async def ping(self) -> None:
        """Raise `StoreError` unless the store answers a query."""
        await self._run(lambda conn: conn.execute(sa.text("SELECT 1")).scalar())

    # -- append (group commit) ----------------------------------------------

    async def append(self, event: Event, handlers: Sequence[str]) -> AppendResult:
        """Store `event` and its deliveries; see `Store.append`."""
        return await self._appends.submit((event, handlers))

    async def _write_appends(
        self, batch: list[tuple[Event, Sequence[str]]]
    ) -> list[AppendResult]:
        results = await self._run(self._insert_batch, batch)
        if any(not r.duplicate and r.deliveries for r in results):
            for callback in self._callbacks:
                callback()
        return results

    def _insert_batch(
        self, conn: Connection, batch: list[tuple[Event, Sequence[str]]]
    ) -> list[AppendResult]:
        now = self._clock()
        # The first of several appends of one event id in a batch is the one
        # stored; the others are duplicates, as if they had come later.
        first: dict[str, int] = {}
        for index, (event, _) in enumerate(batch):
            first.setdefault(event.id, index)
        inserted = self._insert_events(conn, [batch[i][0] for i in first.values()])
        rows = [
            _delivery_row(event_id, handler, now)
            for event_id in inserted
            for handler in dict.fromkeys(batch[first[event_id]][1])
        ]
        if rows:
            conn.execute(deliveries.insert(), rows)
        results = []
        for index, (event, handlers) in enumerate(batch):
            is_new = event.id in inserted and first[event.id] == index
            count = len(set(handlers)) if is_new else 0
            results.append(AppendResult(event.id, not is_new, count))
        return results

    def _insert_events(self, conn: Connection, new: list[Event]) -> set[str]:
        if not new:
            return set()
        insert = _insert_for(conn).values()
        statement = insert.on_conflict_do_nothing(index_elements=["id"]).returning(
            events.c.id
        )
        result = conn.execute(statement, [_event_row(e) for e in new])
        return set(result.scalars().all())

    # -- claims and outcomes ------------------------------------------------

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Claim]:
        """Claim up to `limit` due deliveries; see `Store.claim`."""
        if limit <= 0:
            return []
        return await self._run(self._claim, owner, limit, lease_seconds)

    def _claim(
        self, conn: Connection, owner: str, limit: int, lease_seconds: float
    ) -> list[Claim]:
        now = self._clock()
        d = deliveries.c
        due = sa.or_(
            sa.and_(d.status.in_(_DUE), d.next_attempt_at <= now),
            sa.and_(d.status == "running", d.lease_until < now),
        )
        query = sa.select(d.id).where(due).order_by(d.next_attempt_at).limit(limit)
        if conn.dialect.name != "sqlite":
            query = query.with_for_update(skip_locked=True)
        ids = list(conn.execute(query).scalars())
        if not ids:
            return []
        # A lease that ran out means the worker holding it stopped mid-attempt.
        lost = sa.case(
            (d.status == "running", "lease expired: the worker stopped mid-attempt"),
            else_=d.last_error,
        )
        conn.execute(
            deliveries.update()
            .where(d.id.in_(ids))
            .values(
                status="running",
                attempts=d.attempts + 1,
                lease_owner=owner,
                lease_until=now + lease_seconds,
                last_error=lost,
                updated_at=now,
            )
        )
        joined = (
            sa.select(
                d.id.label("delivery_id"),
                d.handler.label("delivery_handler"),
                d.attempts.label("delivery_attempts"),
                *events.c,
            )
            .select_from(deliveries.join(events, events.c.id == d.event_id))
            .where(d.id.in_(ids))
            .order_by(d.next_attempt_at)
        )
        return [
            Claim(
                row.delivery_id,
                row.delivery_handler,
                row.delivery_attempts,
                owner,
                _row_event(row),
            )
            for row in conn.execute(joined)
        ]

    async def complete(self, claim: Claim, outcome: Outcome) -> bool:
        """Record an attempt and its outcome; see `Store.complete`.

        Outcomes that arrive together are written in one transaction.
        """
        return await self._outcomes.submit((claim, outcome))

    async def _write_outcomes(self, batch: list[tuple[Claim, Outcome]]) -> list[bool]:
        return await self._run(self._complete_batch, batch)

    def _complete_batch(
        self, conn: Connection, batch: list[tuple[Claim, Outcome]]
    ) -> list[bool]:
        now = self._clock()
        kept = [
            bool(conn.execute(_FINISH, _finish_params(claim, outcome, now)).rowcount)
            for claim, outcome in batch
        ]
        conn.execute(
            attempts.insert(),
            [
                _attempt_row(claim, outcome, still_held)
                for (claim, outcome), still_held in zip(batch, kept, strict=True)
            ],
        )
        return kept

    async def release(self, claims: Sequence[Claim], reason: str) -> None:
        """Give claimed deliveries back, due now, without counting the attempt."""
        if claims:
            await self._run(self._release, claims, reason)

    def _release(self, conn: Connection, claims: Sequence[Claim], reason: str) -> None:
        now = self._clock()
        d = deliveries.c
        for claim in claims:
            conn.execute(
                deliveries.update()
                .where(d.id == claim.delivery_id, d.lease_owner == claim.owner)
                .values(
                    status="pending",
                    attempts=d.attempts - 1,
                    next_attempt_at=now,
                    lease_owner=None,
                    lease_until=None,
                    last_error=reason,
                    updated_at=now,
                )
            )

    # -- reading and operating ----------------------------------------------

    async def get_event(self, event_id: str) -> Event | None:
        """The stored event, parsed again from its raw payload."""

        def query(conn: Connection) -> Event | None:
            row = conn.execute(sa.select(events).where(events.c.id == event_id)).first()
            return _row_event(row) if row is not None else None

        return await self._run(query)

    async def list_events(
        self,
        *,
        status: DeliveryStatus | None = None,
        name: str | None = None,
        resource_id: str | None = None,
        limit: int = 50,
    ) -> list[EventSummary]:
        """Events, newest first; see `Store.list_events`."""
        return await self._run(self._list_events, status, name, resource_id, limit)

    def _list_events(
        self,
        conn: Connection,
        status: DeliveryStatus | None,
        name: str | None,
        resource_id: str | None,
        limit: int,
    ) -> list[EventSummary]:
        e = events.c
        query = sa.select(e.seq, e.id, e.source, e.event_type, e.names)
        query = query.add_columns(e.resource_kind, e.resource_id)
        query = query.add_columns(e.occurred_at, e.received_at).order_by(e.seq.desc())
        if status is not None:
            has = sa.select(deliveries.c.id).where(
                deliveries.c.event_id == e.id, deliveries.c.status == status
            )
            query = query.where(has.exists())
        if resource_id is not None:
            query = query.where(e.resource_id == resource_id)
        if name is not None:
            query = query.where(e.names.like(f"% {_glob_to_like(name)} %", escape="\\"))
        found = []
        # LIKE's % may span two names; fnmatch on each name decides exactly.
        for row in conn.execute(query):
            names = tuple(row.names.split())
            if name is None or any(fnmatchcase(n, name) for n in names):
                found.append((row, names))
            if len(found) >= limit:
                break
        counts = self._status_counts(conn, [row.id for row, _ in found])
        return [
            EventSummary(
                row.id,
                row.source,
                row.event_type,
                names,
                row.resource_kind,
                row.resource_id,
                row.occurred_at,
                row.received_at,
                counts.get(row.id, {}),
            )
            for row, names in found
        ]

    def _status_counts(
        self, conn: Connection, event_ids: list[str]
    ) -> dict[str, dict[str, int]]:
        d = deliveries.c
        query = (
            sa.select(d.event_id, d.status, sa.func.count())
            .where(d.event_id.in_(event_ids))
            .group_by(d.event_id, d.status)
        )
        counts: dict[str, dict[str, int]] = {}
        for event_id, status, count in conn.execute(query):
            counts.setdefault(event_id, {})[status] = count
        return counts

    async def deliveries(self, event_id: str) -> list[DeliveryRecord]:
        """The deliveries of one event, in the order they were created."""

        def query(conn: Connection) -> list[DeliveryRecord]:
            select = sa.select(deliveries).where(deliveries.c.event_id == event_id)
            rows = conn.execute(select.order_by(deliveries.c.id))
            return [_delivery_record(row) for row in rows]

        return await self._run(query)

    async def attempts(self, event_id: str) -> list[AttemptRecord]:
        """Every attempt at the deliveries of one event, oldest first."""

        def query(conn: Connection) -> list[AttemptRecord]:
            a = attempts.c
            select = (
                sa.select(attempts)
                .join(deliveries, deliveries.c.id == a.delivery_id)
                .where(deliveries.c.event_id == event_id)
                .order_by(a.started_at, a.id)
            )
            return [
                AttemptRecord(
                    r.delivery_id,
                    r.number,
                    r.worker,
                    r.started_at,
                    r.finished_at,
                    r.outcome,
                    r.error,
                )
                for r in conn.execute(select)
            ]

        return await self._run(query)

    async def replay(self, event_id: str) -> int:
        """Re-arm every delivery of the event, whatever its status."""
        return await self._rearm(deliveries.c.event_id == event_id)

    async def list_dead(self, limit: int = 100) -> list[DeliveryRecord]:
        """Dead deliveries, most recently changed first."""

        def query(conn: Connection) -> list[DeliveryRecord]:
            d = deliveries.c
            select = sa.select(deliveries).where(d.status == "dead")
            rows = conn.execute(select.order_by(d.updated_at.desc()).limit(limit))
            return [_delivery_record(row) for row in rows]

        return await self._run(query)

    async def retry_dead(self, delivery_ids: Sequence[int] | None) -> int:
        """Re-arm dead deliveries: the given ones, or all when None."""
        d = deliveries.c
        where = d.status == "dead"
        if delivery_ids is not None:
            where = sa.and_(where, d.id.in_(list(delivery_ids)))
        return await self._rearm(where)

    async def _rearm(self, where: sa.ColumnElement[bool]) -> int:
        def update(conn: Connection) -> int:
            now = self._clock()
            d = deliveries.c
            # A running delivery is left to its worker; replaying it would run it twice.
            statement = (
                deliveries.update()
                .where(where, d.status != "running")
                .values(
                    status="pending", attempts=0, next_attempt_at=now, updated_at=now
                )
            )
            return int(conn.execute(statement).rowcount)

        count = await self._run(update)
        if count:
            for callback in self._callbacks:
                callback()
        return count

    async def counts(self) -> dict[str, int]:
        """Number of deliveries in each status."""

        def query(conn: Connection) -> dict[str, int]:
            d = deliveries.c
            rows = conn.execute(sa.select(d.status, sa.func.count()).group_by(d.status))
            return {status: count for status, count in rows}

        return await self._run(query)

    # -- managed subscriptions ----------------------------------------------

    async def add_subscription(self, record: SubscriptionRecord) -> None:
        """Remember a subscription mxbridge created or imported."""
        await self._run(_subs.insert_row, record)

    async def list_subscriptions(self) -> list[SubscriptionRecord]:
        """Every remembered subscription, oldest first."""
        return await self._run(_subs.select_all)

    async def get_subscription(self, subscription_id: int) -> SubscriptionRecord | None:
        """The remembered subscription with this MaintainX id, if any."""
        return await self._run(_subs.select_one, subscription_id)

    async def set_subscription_status(self, subscription_id: int, status: str) -> None:
        """Record what MaintainX last said of a subscription (checked now)."""
        await self._run(_subs.set_status, subscription_id, status, self._clock())

    async def remove_subscription(self, subscription_id: int) -> bool:
        """Forget a subscription; False when it was not remembered."""
        return await self._run(_subs.delete_row, subscription_id)

    async def note_subscription_deliveries(self, seen: Mapping[str, float]) -> None:
        """Move the last delivery time of each source's subscriptions forward."""
        if seen:
            await self._run(_subs.note_seen, dict(seen))

    # -- records behind the events (issue 4) --------------------------------

    async def known_records(
        self, kind: str, record_ids: Sequence[str]
    ) -> dict[str, KnownRecord]:
        """The last known state of each of `record_ids` that has one."""
        return await self._run(_versions.select_known, kind, list(record_ids))

    async def save_known(self, records: Sequence[KnownRecord]) -> None:
        """Save last known states, never going back to an older version."""
        if records:
            await self._run(_versions.upsert_known, list(records), self._clock())

    async def guard_version(
        self, handler: str, record: KnownRecord, event_id: str
    ) -> GuardResult:
        """Check and note the version of a record a handler starts on."""
        return await self._run(_versions.guard, handler, record, event_id)

    async def save_event_records(
        self,
        expand: Sequence[str],
        records: Mapping[str, Mapping[str, Any] | None],
    ) -> None:
        """Keep the record fetched for each event id; None: it no longer exists."""
        if records:
            await self._run(
                _versions.save_event_records, expand, dict(records), self._clock()
            )

    async def get_event_record(self, event_id: str) -> StoredRecord | None:
        """The record kept for an event, if any."""
        return await self._run(_versions.select_event_record, event_id)

    async def get_watermark(self, name: str) -> Watermark | None:
        """The watermark saved under `name`, if any."""
        return await self._run(_versions.select_watermark, name)

    async def save_watermark(self, mark: Watermark) -> None:
        """Save a watermark, replacing the one of the same name."""
        await self._run(_versions.save_watermark, mark, self._clock())

    async def announced(
        self, queries: Sequence[Announcement], sources: Sequence[str]
    ) -> list[bool]:
        """For each query, whether such an event from none of `sources` is stored."""
        if not queries:
            return []
        return await self._run(_versions.announced, list(queries), sources)


# Built once: recording an outcome is the worker's hot path. The lease checks
# make a late outcome from a worker whose lease ran out change nothing.
_FINISH = (
    deliveries.update()
    .where(
        deliveries.c.id == sa.bindparam("b_id"),
        deliveries.c.lease_owner == sa.bindparam("b_owner"),
        deliveries.c.status == "running",
        deliveries.c.attempts == sa.bindparam("b_attempt"),
    )
    .values(
        status=sa.bindparam("b_status"),
        next_attempt_at=sa.bindparam("b_retry_at"),
        lease_owner=None,
        lease_until=None,
        last_error=sa.bindparam("b_error"),
        updated_at=sa.bindparam("b_now"),
    )
)


def _finish_params(claim: Claim, outcome: Outcome, now: float) -> dict[str, Any]:
    return {
        "b_id": claim.delivery_id,
        "b_owner": claim.owner,
        "b_attempt": claim.attempt,
        "b_status": outcome.status,
        "b_retry_at": outcome.retry_at,
        "b_error": outcome.error,
        "b_now": now,
    }


def _attempt_row(claim: Claim, outcome: Outcome, still_held: bool) -> dict[str, Any]:
    return {
        "delivery_id": claim.delivery_id,
        "number": claim.attempt,
        "worker": claim.owner,
        "started_at": outcome.started_at,
        "finished_at": outcome.finished_at,
        "outcome": outcome.status if still_held else "lease_lost",
        "error": outcome.error or outcome.note,
    }


def _insert_for(conn: Connection) -> Any:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(events)
    return sqlite.insert(events)


def _event_row(event: Event) -> dict[str, Any]:
    return {
        "id": event.id,
        "source": event.source,
        "event_type": event.event_type,
        "names": " " + " ".join(event.names) + " ",
        "resource_kind": event.resource_kind,
        "resource_id": event.resource_id,
        "org_id": event.org_id,
        "actor_id": event.actor_id,
        "occurred_at": event.occurred_at.timestamp(),
        "received_at": event.received_at.timestamp(),
        "raw": event.raw,
    }


def _delivery_row(event_id: str, handler: str, now: float) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "handler": handler,
        "status": "pending",
        "attempts": 0,
        "next_attempt_at": now,
        "created_at": now,
        "updated_at": now,
    }


def _row_event(row: Any) -> Event:
    return parse_event(
        bytes(row.raw),
        source=row.source,
        received_at=datetime.fromtimestamp(row.received_at, UTC),
        event_id=row.id,
    )


def _delivery_record(row: Any) -> DeliveryRecord:
    return DeliveryRecord(
        row.id,
        row.event_id,
        row.handler,
        row.status,
        row.attempts,
        row.next_attempt_at,
        row.lease_until,
        row.last_error,
        row.created_at,
        row.updated_at,
    )


def _glob_to_like(pattern: str) -> str:
    escaped = pattern.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped.replace("*", "%").replace("?", "_")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
