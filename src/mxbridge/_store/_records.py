"""What the store hands back: plain frozen records, no database types."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mxbridge._events import Event

__all__ = [
    "AppendResult",
    "AttemptRecord",
    "Backlog",
    "Claim",
    "DeliveryRecord",
    "DeliveryStatus",
    "EventSummary",
    "Outcome",
    "PruneResult",
]

DeliveryStatus = Literal["pending", "running", "succeeded", "failed", "dead"]
STATUSES: tuple[DeliveryStatus, ...] = (
    "pending",
    "running",
    "succeeded",
    "failed",
    "dead",
)


@dataclass(frozen=True, slots=True)
class AppendResult:
    """The answer to an append: the event's id and whether it was already stored."""

    event_id: str
    duplicate: bool
    deliveries: int


@dataclass(frozen=True, slots=True)
class Claim:
    """A delivery claimed by a worker, under a lease, with its event."""

    delivery_id: int
    handler: str
    attempt: int
    owner: str
    event: Event


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one attempt.

    `status` is ``succeeded``, ``failed`` (to be tried again at `retry_at`) or
    ``dead``; `note` says why when nothing failed (a condition was false).
    """

    status: Literal["succeeded", "failed", "dead"]
    started_at: float
    finished_at: float
    error: str | None = None
    retry_at: float | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class DeliveryRecord:
    """One (event, handler) delivery as stored."""

    id: int
    event_id: str
    handler: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: float | None
    lease_until: float | None
    last_error: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True, slots=True)
class AttemptRecord:
    """One attempt at a delivery: who ran it, when, and how it ended."""

    delivery_id: int
    number: int
    worker: str
    started_at: float
    finished_at: float
    outcome: str
    error: str | None


@dataclass(frozen=True, slots=True)
class EventSummary:
    """An event's line in a listing, with the statuses of its deliveries."""

    id: str
    source: str
    event_type: str
    names: tuple[str, ...]
    resource_kind: str | None
    resource_id: str | None
    occurred_at: float
    received_at: float
    statuses: dict[str, int]


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What a prune did: old events removed, and old events kept for their work."""

    removed: int
    kept: int


# The statuses of deliveries that still need work or a person's attention.
UNFINISHED: tuple[DeliveryStatus, ...] = ("pending", "running", "failed", "dead")


@dataclass(frozen=True, slots=True)
class Backlog:
    """Deliveries not yet succeeded, by status, and since when the oldest is due.

    `oldest_due_at` is the earliest `next_attempt_at` of a pending or failed
    delivery, due or not, or the end of a lease that has run out; None when
    there is none.
    """

    counts: dict[str, int]
    oldest_due_at: float | None
