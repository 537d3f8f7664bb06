"""The mirror's tables, in SQLite or PostgreSQL, with SQLAlchemy Core.

For each kind (work orders, requests, assets) a table of latest states and a
history table with one row per event, keyed by the event's id. A state row
moves forward only: an event older than the row's ``version_at`` may fill in
descriptive columns still empty (a title, an asset) but never changes the
status, the sub-status or ``deleted``. So deliveries arriving out of order or
twice leave the same final state, and one history row per distinct event.

The bridge creates the tables (and the status-durations view) at first use and
records the schema version in ``<prefix>mirror_meta``.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from mxbridge._database import sqlite_engine, take_turns
from mxbridge._errors import ConfigError

__all__ = [
    "KINDS",
    "SCHEMA_VERSION",
    "MirrorDatabase",
    "StateRow",
    "check_url",
    "status_durations_sql",
]

SCHEMA_VERSION = 1
KINDS = {"workorder": "work_order", "request": "request", "asset": "asset"}
"""Event resource kinds the mirror keeps, and the stem of their table names."""

DESCRIPTIVE = ("title", "priority", "asset_id", "location_id", "record")
STATEFUL = ("status", "sub_status", "deleted", "last_event_id", "last_event_type")


@dataclass(frozen=True, slots=True)
class StateRow:
    """What one event says about a record's latest state, and its history row."""

    kind: str
    record_id: str
    version_at: datetime
    state: Mapping[str, Any]
    history: Mapping[str, Any]


def _utc(moment: datetime) -> datetime:
    # SQLite keeps no offset: store every time as naive UTC, in both databases.
    return moment.astimezone(UTC).replace(tzinfo=None)


def _state_table(metadata: sa.MetaData, name: str, schema: str | None) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("title", sa.Text),
        sa.Column("status", sa.String(64)),
        sa.Column("sub_status", sa.String(64)),
        sa.Column("priority", sa.String(32)),
        sa.Column("asset_id", sa.String(64)),
        sa.Column("location_id", sa.String(64)),
        sa.Column("deleted", sa.Boolean, nullable=False, default=False),
        sa.Column("version_at", sa.DateTime, nullable=False),
        sa.Column("last_event_id", sa.String(200), nullable=False),
        sa.Column("last_event_type", sa.String(64), nullable=False),
        sa.Column("record", sa.JSON),
        schema=schema,
    )


def _history_table(metadata: sa.MetaData, name: str, schema: str | None) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("event_id", sa.String(200), primary_key=True),
        sa.Column("record_id", sa.String(64), nullable=False, index=True),
        sa.Column("event_type", sa.String(64), nullable=False),
        sa.Column("occurred_at", sa.DateTime, nullable=False),
        sa.Column("actor_id", sa.BigInteger),
        sa.Column("old_status", sa.String(64)),
        sa.Column("new_status", sa.String(64)),
        sa.Column("old_sub_status", sa.String(64)),
        sa.Column("new_sub_status", sa.String(64)),
        sa.Column("payload", sa.JSON, nullable=False),
        schema=schema,
    )


def status_durations_sql(dialect: str, history: str, view: str) -> str:
    """The ``CREATE VIEW`` of seconds spent in each status per work order.

    A status lasts from the event that set it to the next one that set another,
    or to now for the current status.
    """
    now = "CURRENT_TIMESTAMP" if dialect == "sqlite" else "(now() at time zone 'utc')"
    if dialect == "sqlite":
        span = (
            f"(julianday(COALESCE(LEAD(occurred_at) OVER w, {now}))"
            " - julianday(occurred_at)) * 86400.0"
        )
        create = f"CREATE VIEW IF NOT EXISTS {view}"
    else:
        span = (
            f"EXTRACT(EPOCH FROM (COALESCE(LEAD(occurred_at) OVER w, {now})"
            " - occurred_at))"
        )
        create = f"CREATE OR REPLACE VIEW {view}"
    return (
        f"{create} AS SELECT work_order_id, status, SUM(seconds) AS seconds FROM ("
        f"SELECT record_id AS work_order_id, new_status AS status, {span} AS seconds "
        f"FROM {history} WHERE new_status IS NOT NULL "
        "WINDOW w AS (PARTITION BY record_id ORDER BY occurred_at, event_id)"
        ") AS spans GROUP BY work_order_id, status"
    )


class MirrorDatabase:
    """The mirror's tables in one database, created at first use."""

    def __init__(self, url: str, *, prefix: str = "mx_", schema: str | None = None):
        self.url = url
        self.prefix = prefix
        self.schema = schema
        self.metadata = sa.MetaData()
        self.states = {
            kind: _state_table(self.metadata, f"{prefix}{stem}s", schema)
            for kind, stem in KINDS.items()
        }
        self.histories = {
            kind: _history_table(self.metadata, f"{prefix}{stem}_events", schema)
            for kind, stem in KINDS.items()
        }
        self.meta = sa.Table(
            f"{prefix}mirror_meta",
            self.metadata,
            sa.Column("key", sa.String(64), primary_key=True),
            sa.Column("value", sa.String(200), nullable=False),
            schema=schema,
        )
        self._engine: sa.Engine | None = None
        self._lock = threading.Lock()

    @property
    def view_name(self) -> str:
        """The status-durations view, qualified by the schema when there is one."""
        name = f"{self.prefix}work_order_status_durations"
        return f"{self.schema}.{name}" if self.schema else name

    def engine(self) -> sa.Engine:
        """The engine, with the tables created and the version checked."""
        with self._lock:
            if self._engine is None:
                engine = _make_engine(self.url)
                self._create(engine)
                self._engine = engine
            return self._engine

    def _create(self, engine: sa.Engine) -> None:
        history = self.histories["workorder"]
        history_name = f"{self.schema}.{history.name}" if self.schema else history.name
        with engine.begin() as conn:
            # Two processes starting together on a fresh database: one creates.
            take_turns(conn, "mxbridge mirror", self.prefix, self.schema or "")
            self.metadata.create_all(conn)
            found = conn.execute(
                sa.select(self.meta.c.value).where(self.meta.c.key == "version")
            ).scalar()
            if found is not None and int(found) > SCHEMA_VERSION:
                raise ConfigError(
                    f"mirror {self.prefix}: schema version {found} is newer than "
                    f"this mxbridge's ({SCHEMA_VERSION})"
                )
            if found is None:
                conn.execute(
                    self.meta.insert().values(key="version", value=str(SCHEMA_VERSION))
                )
            sql = status_durations_sql(
                engine.dialect.name, history_name, self.view_name
            )
            conn.execute(sa.text(sql))

    def apply(self, row: StateRow) -> None:
        """Record one event: its history row (once) and the state (if not older)."""
        engine = self.engine()
        with engine.begin() as conn:
            conn.execute(self._history_insert(engine, row))
            conn.execute(self._state_upsert(engine, row))

    def _history_insert(self, engine: sa.Engine, row: StateRow) -> Any:
        table = self.histories[row.kind]
        values = {**row.history, "occurred_at": _utc(row.history["occurred_at"])}
        insert = _insert_for(engine)(table).values(**values)
        return insert.on_conflict_do_nothing(index_elements=[table.c.event_id])

    def _state_upsert(self, engine: sa.Engine, row: StateRow) -> Any:
        table = self.states[row.kind]
        values = {**row.state, "id": row.record_id, "version_at": _utc(row.version_at)}
        insert = _insert_for(engine)(table).values(**values)
        new = insert.excluded
        newer = table.c.version_at <= new.version_at
        updates: dict[str, Any] = {
            "version_at": sa.case((newer, new.version_at), else_=table.c.version_at)
        }
        for column in values:
            if column in STATEFUL:
                updates[column] = sa.case((newer, new[column]), else_=table.c[column])
            elif column in DESCRIPTIVE:
                fill = sa.func.coalesce(table.c[column], new[column])
                updates[column] = sa.case((newer, new[column]), else_=fill)
        return insert.on_conflict_do_update(index_elements=[table.c.id], set_=updates)

    def history(self, kind: str, record_id: str) -> list[dict[str, Any]]:
        """The history rows of one record, oldest first (times in UTC)."""
        table = self.histories[kind]
        query = (
            sa.select(table)
            .where(table.c.record_id == record_id)
            .order_by(table.c.occurred_at, table.c.event_id)
        )
        with self.engine().connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(query)]
        for row in rows:
            row["occurred_at"] = row["occurred_at"].replace(tzinfo=UTC)
        return rows

    def state(self, kind: str, record_id: str) -> dict[str, Any] | None:
        """The latest state of one record, if mirrored."""
        table = self.states[kind]
        with self.engine().connect() as conn:
            found = conn.execute(
                sa.select(table).where(table.c.id == record_id)
            ).first()
        return dict(found._mapping) if found is not None else None

    def drop(self) -> None:
        """Drop the view and every table (for tests and tear-downs)."""
        engine = self.engine()
        with engine.begin() as conn:
            conn.execute(sa.text(f"DROP VIEW IF EXISTS {self.view_name}"))
        self.metadata.drop_all(engine)

    def dispose(self) -> None:
        """Close the engine's connections."""
        with self._lock:
            if self._engine is not None:
                self._engine.dispose()
                self._engine = None


def _insert_for(engine: sa.Engine) -> Any:
    if engine.dialect.name == "sqlite":
        return sqlite.insert
    if engine.dialect.name == "postgresql":
        return postgresql.insert
    raise ConfigError(
        f"mirror: {engine.dialect.name} is not supported (SQLite or PostgreSQL)"
    )


def _make_engine(url: str) -> sa.Engine:
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"settings.url: not a database URL: {exc}") from None
    if parsed.get_backend_name() == "sqlite":
        return sqlite_engine(parsed, lock_timeout=30)
    return sa.create_engine(parsed, pool_pre_ping=True)


def check_url(url: str, key: str) -> None:
    """Raise `ConfigError` unless `url` names SQLite or PostgreSQL."""
    try:
        backend = sa.make_url(url).get_backend_name()
    except sa.exc.ArgumentError:
        raise ConfigError(f"{key}: not a database URL") from None
    if backend not in ("sqlite", "postgresql"):
        raise ConfigError(f"{key}: {backend} is not supported (SQLite or PostgreSQL)")
