"""The tables of the store, in SQLAlchemy Core, the same for SQLite and PostgreSQL.

Times are unix seconds in double columns: no time zone to get wrong, and the
same arithmetic in both databases.
"""

from __future__ import annotations

import sqlalchemy as sa

__all__ = [
    "SCHEMA_VERSION",
    "attempts",
    "deliveries",
    "event_records",
    "events",
    "handled_versions",
    "meta",
    "metadata",
    "record_versions",
    "subscriptions",
    "watermarks",
]

SCHEMA_VERSION = 1

metadata = sa.MetaData()

meta = sa.Table(
    "mxbridge_meta",
    metadata,
    sa.Column("key", sa.String(64), primary_key=True),
    sa.Column("value", sa.String(256), nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
    sa.Column("id", sa.String(200), nullable=False, unique=True),
    sa.Column("source", sa.String(200), nullable=False),
    sa.Column("event_type", sa.String(200), nullable=False),
    # Every name of the event between single spaces (" A b.c "), for LIKE filters.
    sa.Column("names", sa.Text, nullable=False),
    sa.Column("resource_kind", sa.String(64)),
    sa.Column("resource_id", sa.String(200)),
    sa.Column("org_id", sa.BigInteger),
    sa.Column("actor_id", sa.BigInteger),
    sa.Column("occurred_at", sa.Double, nullable=False),
    sa.Column("received_at", sa.Double, nullable=False),
    sa.Column("raw", sa.LargeBinary, nullable=False),
    sa.Index("ix_events_resource", "resource_kind", "resource_id"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
    sa.Column(
        "event_id",
        sa.String(200),
        sa.ForeignKey("events.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("handler", sa.String(300), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("next_attempt_at", sa.Double),
    sa.Column("lease_owner", sa.String(200)),
    sa.Column("lease_until", sa.Double),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.UniqueConstraint("event_id", "handler", name="uq_deliveries_event_handler"),
    sa.Index("ix_deliveries_due", "status", "next_attempt_at"),
    sa.Index("ix_deliveries_lease", "status", "lease_until"),
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column(
        "id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True
    ),
    sa.Column(
        "delivery_id",
        sa.BigInteger().with_variant(sa.Integer, "sqlite"),
        sa.ForeignKey("deliveries.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    sa.Column("number", sa.Integer, nullable=False),
    sa.Column("worker", sa.String(200), nullable=False),
    sa.Column("started_at", sa.Double, nullable=False),
    sa.Column("finished_at", sa.Double, nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("error", sa.Text),
)

# MaintainX subscriptions mxbridge created or imported. New in a store that had
# none: `create_all` adds the table, so the schema version stays.
subscriptions = sa.Table(
    "subscriptions",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("source", sa.String(200), nullable=False, index=True),
    sa.Column("event_type", sa.String(64), nullable=False),
    sa.Column("url", sa.Text, nullable=False),
    # In clear: the edge verifies every delivery with it.
    sa.Column("secret", sa.String(256), nullable=False),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("serialize", sa.Boolean, nullable=False, default=False),
    sa.Column("filters", sa.Text, nullable=False, default="{}"),
    sa.Column("origin", sa.String(16), nullable=False),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("checked_at", sa.Double),
    sa.Column("last_delivery_at", sa.Double),
)

# -- records behind the events (issue 4): enrichment, ordering guard, polling.
# New tables only: `create_all` adds them to an older store.

# The last known state of each record, from fetches, polls and the reconciler.
record_versions = sa.Table(
    "record_versions",
    metadata,
    sa.Column("kind", sa.String(64), primary_key=True),
    sa.Column("record_id", sa.String(200), primary_key=True),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("occurred_at", sa.Double, nullable=False),
    sa.Column("status", sa.String(64)),
    sa.Column("digest", sa.String(64)),
    sa.Column("seen_at", sa.Double, nullable=False),
)

# The newest version of each record each guarded handler has started on.
handled_versions = sa.Table(
    "handled_versions",
    metadata,
    sa.Column("handler", sa.String(300), primary_key=True),
    sa.Column("kind", sa.String(64), primary_key=True),
    sa.Column("record_id", sa.String(200), primary_key=True),
    sa.Column("updated_at", sa.Double, nullable=False),
    sa.Column("occurred_at", sa.Double, nullable=False),
    sa.Column("digest", sa.String(64)),
    sa.Column("event_id", sa.String(200), nullable=False),
)

# The record fetched for an event, shared by all its handlers: JSON, or NULL
# when it no longer existed. No foreign key: a poller writes it first.
event_records = sa.Table(
    "event_records",
    metadata,
    sa.Column("event_id", sa.String(200), primary_key=True),
    sa.Column("expand", sa.Text, nullable=False),
    sa.Column("record", sa.Text),
    sa.Column("fetched_at", sa.Double, nullable=False),
)

# How far each walk (poll, backfill) has gone: a composite (updatedAt, id).
watermarks = sa.Table(
    "watermarks",
    metadata,
    sa.Column("name", sa.String(200), primary_key=True),
    sa.Column("updated_at", sa.String(64), nullable=False),
    sa.Column("record_id", sa.BigInteger, nullable=False),
    sa.Column("saved_at", sa.Double, nullable=False),
)
