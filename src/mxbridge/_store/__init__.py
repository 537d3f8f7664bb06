"""The store: events and their deliveries. One interface, SQL underneath."""

from __future__ import annotations

from mxbridge._store._protocol import Store
from mxbridge._store._records import (
    STATUSES,
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
from mxbridge._store._sql import SqlStore
from mxbridge._store._subscriptions import DELETED, SubscriptionRecord

__all__ = [
    "DELETED",
    "STATUSES",
    "AppendResult",
    "AttemptRecord",
    "Backlog",
    "Claim",
    "DeliveryRecord",
    "DeliveryStatus",
    "EventSummary",
    "Outcome",
    "PruneResult",
    "SqlStore",
    "Store",
    "SubscriptionRecord",
]
