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
import os
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import PoolProxiedConnection

from mxbridge._database import READ_ONLY, sqlite_engine, sqlite_file, take_turns
from mxbridge._errors import StoreError
from mxbridge._events import Event
from mxbridge._store import _hotpath as hot
from mxbridge._store import _subscriptions as _subs
from mxbridge._store import _versions
from mxbridge._store._group import GroupCommit
from mxbridge._store._records import (
    UNFINISHED,
    AppendResult,
    AttemptRecord,
    Backlog,
    Claim,
    DeliveryRecord,
    DeliveryStatus,
    EventSummary,
    Outcome,
    PruneResult,
)
from mxbridge._store._retention import prune_step
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
# How long `ping` reports a batch of appends that failed, unless one commits.
_APPEND_FAILURE_MEMORY = 30.0
_Append = tuple[Event, Sequence[str]]


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
        self.is_sqlite = _is_sqlite(url)
        # No file behind it (memory, or a URI we do not take apart): its
        # connections are never replaced.
        self._file = sqlite_file(url) if self.is_sqlite else None
        self._in_memory = self.is_sqlite and self._file is None
        # The file's identity (device, inode) when opened; see `_same_file`.
        self._file_id: tuple[int, int] | None = None
        self._engine: Engine | None = None
        self._executor: ThreadPoolExecutor | None = None
        self._reader: ThreadPoolExecutor | None = None
        # SQLite's hot path: a driver connection kept by the store's one thread.
        self._hot = hot.Statements() if self.is_sqlite else None
        self._driver: PoolProxiedConnection | None = None
        self._callbacks: list[Callable[[], None]] = []
        self._appends = GroupCommit(self._write_appends, max_batch=_MAX_BATCH)
        # The latest batch of appends that failed: (time.monotonic(), why), or
        # None once one has committed since; see `ping`.
        self._append_failure: tuple[float, str] | None = None
        self._outcomes = GroupCommit(self._write_outcomes, max_batch=_MAX_BATCH)

    # -- life cycle ---------------------------------------------------------

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
        if self.is_sqlite and not self._in_memory:
            # Reads of an SQLite file on a thread of their own: in WAL mode they
            # need no lock, so /metrics and the commands that only look do not
            # queue behind the writes (an in-memory database is one connection).
            self._reader = ThreadPoolExecutor(1, thread_name_prefix="mxbridge-read")
        # Most opens find the schema in place: a read then suffices, and a
        # command that only looks takes no write lock from a busy service.
        if not await self._read(self._schema_is_current):
            await self._run(self._create_schema)
        self._file_id = _identity(self._file)

    async def close(self) -> None:
        """Let pending appends commit, then disconnect."""
        await self._appends.wait()
        await self._outcomes.wait()
        if self._executor is not None:
            # The driver connection goes back from the thread that used it.
            self._executor.submit(self._drop_driver).result()
            self._executor.shutdown(wait=True)
            self._executor = None
        if self._reader is not None:
            self._reader.shutdown(wait=True)
            self._reader = None
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
        # Wait this long for another writer's lock, then fail: an edge that
        # answers 503 in time beats MaintainX giving up at 10 s.
        return sqlite_engine(
            url, lock_timeout=self._lock_timeout, synchronous=self._synchronous
        )

    def _schema_is_current(self, conn: Connection) -> bool:
        if not set(sa.inspect(conn).get_table_names()) >= set(metadata.tables):
            return False
        return _schema_version(conn) == SCHEMA_VERSION

    def _create_schema(self, conn: Connection) -> None:
        # Two processes starting together on a fresh database: one creates.
        take_turns(conn, "mxbridge store schema")
        metadata.create_all(conn)
        if _schema_version(conn) is None:
            conn.execute(
                meta.insert().values(key="schema_version", value=str(SCHEMA_VERSION))
            )

    async def _run(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(conn, *args)`` in one transaction on the store's thread."""
        return await self._in_thread(self._transaction, func, args)

    async def _read(self, func: Callable[..., T], *args: Any) -> T:
        """`_run` for a transaction that only reads: on SQLite it takes no lock."""
        return await self._in_thread(self._read_transaction, func, args, self._reader)

    async def _run_hot(self, func: Callable[..., T], *args: Any) -> T:
        """Run ``func(db, *args)`` in one transaction on SQLite's driver connection."""
        return await self._in_thread(self._hot_transaction, func, args)

    async def _in_thread(
        self,
        transaction: Callable[[Callable[..., T], tuple[Any, ...]], T],
        func: Callable[..., T],
        args: tuple[Any, ...],
        executor: ThreadPoolExecutor | None = None,
    ) -> T:
        """Run `transaction` on the store's thread (or `executor`) off the loop."""
        executor = executor or self._executor
        if self._engine is None or executor is None:
            raise StoreError("the store is not open")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(executor, transaction, func, args)
        except StoreError:
            raise
        except _DATABASE_ERRORS as exc:
            raise StoreError(f"store error: {_first_line(exc)}") from exc

    def _transaction(
        self, func: Callable[..., T], args: tuple[Any, ...], *, read_only: bool = False
    ) -> T:
        assert self._engine is not None
        self._same_file()
        try:
            with self._engine.connect() as conn:
                conn = conn.execution_options(**{READ_ONLY: read_only})
                with conn.begin():
                    result = func(conn, *args)
            if not read_only:
                self._same_file()
            return result
        except (sa.exc.OperationalError, sqlite3.Error):
            # A read may run on the reader thread: the driver connection is
            # the store thread's to replace.
            self._reconnect(driver=not read_only)
            raise

    def _read_transaction(self, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        return self._transaction(func, args, read_only=True)

    def _hot_transaction(self, func: Callable[..., T], args: tuple[Any, ...]) -> T:
        assert self._engine is not None
        if self._driver is None:
            self._same_file()  # a new connection would make an empty file
            self._driver = self._engine.raw_connection()
        db = self._driver.driver_connection
        assert isinstance(db, sqlite3.Connection)
        try:
            result = hot.transaction(db, lambda db: func(db, *args))
            self._same_file()
            return result
        except sqlite3.Error:
            # A connection left inside a transaction it could not roll back
            # is replaced in any case.
            if db.in_transaction:
                self._drop_driver()
            self._reconnect()
            raise

    def _reconnect(self, *, driver: bool = True) -> None:
        """After an SQLite error, open fresh connections for the next transaction.

        A connection SQLite opened while the file could not be written stays
        read-only for good, even once the file can be written again; so may one
        that hit a full disk. Only a file store: an in-memory database lives
        only as long as its connection.
        """
        if self._engine is None or not self.is_sqlite or self._in_memory:
            return
        if driver:
            self._drop_driver()
        self._engine.dispose()

    def _same_file(self) -> None:
        """Raise `StoreError` if the SQLite file was removed or replaced.

        A connection goes on writing to the file it opened after that file is
        deleted, and its commits succeed: into a file nobody will read again.
        Checked before a connection is opened, so that none makes an empty
        file in its place, and after each commit, so that a commit into the
        removed file is not acknowledged.
        """
        if self._file_id is None or _identity(self._file) == self._file_id:
            return
        raise StoreError(
            f"the store file {self._file} was removed or replaced while in use; "
            "nothing more is accepted: restart mxbridge to open the file there now"
        )

    def _drop_driver(self) -> None:
        if self._driver is not None:
            driver, self._driver = self._driver, None
            driver.invalidate()

    async def ping(self) -> None:
        """Raise `StoreError` unless the store can commit a write.

        Answering a query is not enough: a store that can be read but not
        written (a read-only file, a database in recovery) refuses every
        delivery. The write changes nothing.
        """
        touch = (
            meta.update()
            .where(meta.c.key == "schema_version")
            .values(value=meta.c.value)
        )
        await self._run(lambda conn: conn.execute(touch))
        # A write that changes nothing can pass where deliveries fail (a full
        # disk still takes a page rewritten in place): a batch of appends that
        # failed, and none committed since, counts for a while.
        if self._append_failure is not None:
            failed_at, error = self._append_failure
            ago = time.monotonic() - failed_at
            if ago <= _APPEND_FAILURE_MEMORY:
                raise StoreError(
                    f"a delivery could not be committed {ago:.0f} s ago: {error}"
                )

    # -- append (group commit) ----------------------------------------------

    async def append(self, event: Event, handlers: Sequence[str]) -> AppendResult:
        """Store `event` and its deliveries; see `Store.append`."""
        return await self._appends.submit((event, handlers))

    async def _write_appends(self, batch: list[_Append]) -> list[AppendResult]:
        # The first of several appends of one event id in a batch is the one
        # stored; the others are duplicates, as if they had come later.
        first: dict[str, int] = {}
        for index, (event, _) in enumerate(batch):
            first.setdefault(event.id, index)
        distinct = [batch[index] for index in first.values()]
        now = self._clock()
        try:
            if self._hot is not None:
                inserted = await self._run_hot(self._hot.insert_new, distinct, now)
            else:
                inserted = await self._run(_insert_new, distinct, now)
        except StoreError as exc:
            self._append_failure = (time.monotonic(), str(exc))
            raise
        self._append_failure = None
        results = []
        for index, (event, handlers) in enumerate(batch):
            is_new = event.id in inserted and first[event.id] == index
            count = len(set(handlers)) if is_new else 0
            results.append(AppendResult(event.id, not is_new, count))
        if any(not r.duplicate and r.deliveries for r in results):
            for callback in self._callbacks:
                callback()
        return results

    # -- claims and outcomes ------------------------------------------------

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Claim]:
        """Claim up to `limit` due deliveries; see `Store.claim`."""
        if limit <= 0:
            return []
        if self._hot is not None:
            now = self._clock()
            return await self._run_hot(
                self._hot.claim, owner, limit, now + lease_seconds, now
            )
        return await self._run(self._claim, owner, limit, lease_seconds)

    def _claim(
        self, conn: Connection, owner: str, limit: int, lease_seconds: float
    ) -> list[Claim]:
        now = self._clock()
        params = hot.claim_values(owner, now + lease_seconds, now, limit)
        rows = conn.execute(hot.CLAIM["postgresql"], params).all()
        event_ids = list({row.event_id for row in rows})
        columns = (events.c.id, events.c.source, events.c.received_at, events.c.raw)
        found = {
            row[0]: hot.stored_event(*row)
            for row in conn.execute(
                sa.select(*columns).where(events.c.id.in_(event_ids))
            )
        }
        return hot.claims(rows, found, owner)

    async def complete(self, claim: Claim, outcome: Outcome) -> bool:
        """Record an attempt and its outcome; see `Store.complete`.

        Outcomes that arrive together are written in one transaction.
        """
        return await self._outcomes.submit((claim, outcome))

    async def _write_outcomes(self, batch: list[tuple[Claim, Outcome]]) -> list[bool]:
        if self._hot is not None:
            return await self._run_hot(self._hot.finish, batch, self._clock())
        return await self._run(self._complete_batch, batch)

    def _complete_batch(
        self, conn: Connection, batch: list[tuple[Claim, Outcome]]
    ) -> list[bool]:
        now = self._clock()
        kept = [
            conn.execute(hot.FINISH, hot.finish_values(c, o, now)).rowcount == 1
            for c, o in batch
        ]
        rows = [
            _keyed(hot.ATTEMPT_COLUMNS, hot.attempt_values(c, o, held))
            for (c, o), held in zip(batch, kept, strict=True)
        ]
        conn.execute(attempts.insert(), rows)
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

        return await self._read(query)

    async def list_events(
        self,
        *,
        status: DeliveryStatus | None = None,
        name: str | None = None,
        resource_id: str | None = None,
        limit: int = 50,
    ) -> list[EventSummary]:
        """Events, newest first; see `Store.list_events`."""
        return await self._read(self._list_events, status, name, resource_id, limit)

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

        return await self._read(query)

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

        return await self._read(query)

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

        return await self._read(query)

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

        return await self._read(query)

    async def backlog(self) -> Backlog:
        """Deliveries not yet succeeded; see `Store.backlog`."""

        def query(conn: Connection) -> Backlog:
            d = deliveries.c
            # Read through the (status, next_attempt_at) index: the succeeded
            # deliveries, most of the table, are not touched.
            counts: dict[str, int] = {
                status: conn.execute(
                    sa.select(sa.func.count()).where(d.status == status)
                ).scalar_one()
                for status in UNFINISHED
            }
            since = [
                conn.execute(
                    sa.select(sa.func.min(column)).where(d.status == status)
                ).scalar_one()
                for status, column in (
                    ("pending", d.next_attempt_at),
                    ("failed", d.next_attempt_at),
                    # A running delivery whose lease ran out is due again: its
                    # worker stopped mid-attempt.
                    ("running", d.lease_until),
                )
            ]
            *waiting, lease = since
            if lease is not None and lease <= self._clock():
                waiting.append(lease)
            found = [value for value in waiting if value is not None]
            return Backlog(counts, min(found) if found else None)

        return await self._read(query)

    async def prune(
        self, before: float, *, dry_run: bool = False, batch: int = 500
    ) -> PruneResult:
        """Remove events received before `before` whose deliveries all succeeded.

        See `mxbridge._store._retention`. Each batch of `batch` events is its
        own transaction; with `dry_run` nothing is removed, only counted.
        """
        removed = kept = 0
        after = 0
        while True:
            started = time.monotonic()
            step = await self._run(prune_step, after, before, batch, dry_run)
            removed += step.removed
            kept += step.kept
            after = step.last_seq
            if step.finished:
                return PruneResult(removed, kept)
            # As long again between batches: a writer in another process (the
            # edge, while this is a command) gets the lock in between.
            await asyncio.sleep(time.monotonic() - started)

    # -- managed subscriptions ----------------------------------------------

    async def add_subscription(self, record: SubscriptionRecord) -> None:
        """Remember a subscription mxbridge created or imported."""
        await self._run(_subs.insert_row, record)

    async def list_subscriptions(self) -> list[SubscriptionRecord]:
        """Every remembered subscription, oldest first."""
        return await self._read(_subs.select_all)

    async def get_subscription(self, subscription_id: int) -> SubscriptionRecord | None:
        """The remembered subscription with this MaintainX id, if any."""
        return await self._read(_subs.select_one, subscription_id)

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


# The driver's own errors (a value it cannot bind, say) as well as SQLAlchemy's.
_DATABASE_ERRORS = (
    sa.exc.SQLAlchemyError,
    sqlite3.Error,
    OSError,
    ValueError,
    OverflowError,
)


def _insert_new(conn: Connection, new: Sequence[_Append], now: float) -> set[str]:
    """`Statements.insert_new` through SQLAlchemy, for PostgreSQL."""
    statement = (
        postgresql.insert(events)
        .values()
        .on_conflict_do_nothing(index_elements=["id"])
        .returning(events.c.id)
    )
    rows = [_keyed(hot.EVENT_COLUMNS, hot.event_values(e)) for e, _ in new]
    inserted = set(conn.execute(statement, rows).scalars().all())
    wanted = [
        _keyed(hot.DELIVERY_COLUMNS, hot.delivery_values(e.id, h, now))
        for e, handlers in new
        if e.id in inserted
        for h in dict.fromkeys(handlers)
    ]
    if wanted:
        conn.execute(deliveries.insert(), wanted)
    return inserted


def _identity(file: Path | None) -> tuple[int, int] | None:
    """A file's (device, inode); None when there is none."""
    if file is None:
        return None
    try:
        found = os.stat(file)
    except OSError:
        return None
    return found.st_dev, found.st_ino


def _schema_version(conn: Connection) -> int | None:
    """The store's schema version; `StoreError` if a newer mxbridge wrote it."""
    found = conn.execute(
        sa.select(meta.c.value).where(meta.c.key == "schema_version")
    ).scalar()
    if found is not None and int(found) > SCHEMA_VERSION:
        raise StoreError(
            f"the store was written by a newer mxbridge (schema {found}, "
            f"this one knows {SCHEMA_VERSION})"
        )
    return None if found is None else int(found)


def _is_sqlite(url: str) -> bool:
    # An unparseable URL is reported by `open`, with the store's other errors.
    try:
        return sa.engine.make_url(url).get_backend_name() == "sqlite"
    except sa.exc.ArgumentError:
        return False


def _keyed(columns: Sequence[str], values: Sequence[Any]) -> dict[str, Any]:
    return dict(zip(columns, values, strict=True))


def _row_event(row: Any) -> Event:
    return hot.stored_event(row.id, row.source, row.received_at, row.raw)


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
