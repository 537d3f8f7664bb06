"""The store's side of managed subscriptions: the record and its SQL.

Each function takes a connection and runs inside the store's one transaction
(see `SqlStore._run`). The signing secret is kept in the row, in clear: the
edge needs it to verify every delivery. Protect the database as you would a
secrets file.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mxbridge._store._schema import subscriptions

__all__ = [
    "DELETED",
    "SubscriptionOrigin",
    "SubscriptionRecord",
    "delete_row",
    "insert_row",
    "note_seen",
    "select_all",
    "select_one",
    "set_status",
]

# The status mxbridge gives a subscription MaintainX no longer knows (404).
DELETED = "DELETED"

SubscriptionOrigin = Literal["created", "imported"]


@dataclass(frozen=True, slots=True)
class SubscriptionRecord:
    """A MaintainX subscription mxbridge created or imported, as remembered.

    `source` is the path segment the edge answers it on
    (``/webhooks/maintainx/<source>``); `status` is MaintainX's (``VALID``,
    ``PENDING_APPROVAL``) or ``DELETED`` once MaintainX no longer knows it.
    """

    id: int
    source: str
    event_type: str
    url: str
    secret: str = field(repr=False)
    status: str
    created_at: float
    serialize: bool = False
    filters: Mapping[str, Any] = field(default_factory=dict)
    origin: SubscriptionOrigin = "created"
    checked_at: float | None = None
    last_delivery_at: float | None = None


def insert_row(conn: Connection, record: SubscriptionRecord) -> None:
    """Remember a new subscription."""
    conn.execute(subscriptions.insert().values(**_row(record)))


def select_all(conn: Connection) -> list[SubscriptionRecord]:
    """Every remembered subscription, oldest first."""
    s = subscriptions.c
    rows = conn.execute(sa.select(subscriptions).order_by(s.created_at, s.id))
    return [_record(row) for row in rows]


def select_one(conn: Connection, subscription_id: int) -> SubscriptionRecord | None:
    """The subscription with MaintainX id `subscription_id`, if remembered."""
    where = subscriptions.c.id == subscription_id
    row = conn.execute(sa.select(subscriptions).where(where)).first()
    return _record(row) if row is not None else None


def set_status(
    conn: Connection, subscription_id: int, status: str, checked_at: float
) -> None:
    """Record what MaintainX last said of a subscription, and when."""
    conn.execute(
        subscriptions.update()
        .where(subscriptions.c.id == subscription_id)
        .values(status=status, checked_at=checked_at)
    )


def delete_row(conn: Connection, subscription_id: int) -> bool:
    """Forget a subscription; False when it was not remembered."""
    where = subscriptions.c.id == subscription_id
    return bool(conn.execute(subscriptions.delete().where(where)).rowcount)


def note_seen(conn: Connection, seen: Mapping[str, float]) -> None:
    """Move each source's last delivery time forward (never back)."""
    s = subscriptions.c
    for source, moment in seen.items():
        later = sa.or_(s.last_delivery_at.is_(None), s.last_delivery_at < moment)
        conn.execute(
            subscriptions.update()
            .where(s.source == source, later)
            .values(last_delivery_at=moment)
        )


def _row(record: SubscriptionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "source": record.source,
        "event_type": record.event_type,
        "url": record.url,
        "secret": record.secret,
        "status": record.status,
        "serialize": record.serialize,
        "filters": json.dumps(dict(record.filters), sort_keys=True),
        "origin": record.origin,
        "created_at": record.created_at,
        "checked_at": record.checked_at,
        "last_delivery_at": record.last_delivery_at,
    }


def _record(row: Any) -> SubscriptionRecord:
    return SubscriptionRecord(
        id=row.id,
        source=row.source,
        event_type=row.event_type,
        url=row.url,
        secret=row.secret,
        status=row.status,
        created_at=row.created_at,
        serialize=bool(row.serialize),
        filters=json.loads(row.filters or "{}"),
        origin=row.origin,
        checked_at=row.checked_at,
        last_delivery_at=row.last_delivery_at,
    )
