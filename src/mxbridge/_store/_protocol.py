"""The one interface over persistence. Everything above the store uses only this."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from mxbridge._events import Event
from mxbridge._store._records import (
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
from mxbridge._store._subscriptions import SubscriptionRecord
from mxbridge._store._versions import (
    Announcement,
    GuardResult,
    KnownRecord,
    StoredRecord,
    Watermark,
)

__all__ = ["Store"]


class Store(Protocol):
    """Events and their deliveries, safe for several workers in several processes.

    Times are unix seconds. Every write is one transaction; `append` returns only
    once the transaction holding the event has committed.
    """

    async def open(self) -> None:
        """Connect and create or migrate the schema."""

    async def close(self) -> None:
        """Finish pending appends and disconnect."""

    async def ping(self) -> None:
        """Raise `StoreError` unless the store can commit a delivery now."""

    def on_commit(self, callback: Callable[[], None]) -> None:
        """Call `callback` (on the event loop) after each commit of new deliveries."""

    async def append(self, event: Event, handlers: Sequence[str]) -> AppendResult:
        """Store `event` with one pending delivery per handler, atomically.

        The same event id twice, even at the same instant, stores one event; the
        second append reports a duplicate and creates nothing.
        """

    async def claim(self, owner: str, limit: int, lease_seconds: float) -> list[Claim]:
        """Claim up to `limit` due deliveries (or ones whose lease expired)."""

    async def complete(self, claim: Claim, outcome: Outcome) -> bool:
        """Record an attempt's outcome; False when the lease had been lost."""

    async def release(self, claims: Sequence[Claim], reason: str) -> None:
        """Give claimed deliveries back, due now (a worker stopping)."""

    async def get_event(self, event_id: str) -> Event | None:
        """The stored event, parsed again from its raw payload."""

    async def list_events(
        self,
        *,
        status: DeliveryStatus | None = None,
        name: str | None = None,
        resource_id: str | None = None,
        limit: int = 50,
    ) -> list[EventSummary]:
        """Events, newest first, filtered by delivery status, name glob, resource."""

    async def deliveries(self, event_id: str) -> list[DeliveryRecord]:
        """The deliveries of one event."""

    async def attempts(self, event_id: str) -> list[AttemptRecord]:
        """Every attempt at the deliveries of one event, oldest first."""

    async def replay(self, event_id: str) -> int:
        """Re-arm every delivery of the event; returns how many."""

    async def list_dead(self, limit: int = 100) -> list[DeliveryRecord]:
        """Dead deliveries, most recent first."""

    async def retry_dead(self, delivery_ids: Sequence[int] | None) -> int:
        """Re-arm the given dead deliveries (all when None); returns how many."""

    async def counts(self) -> dict[str, int]:
        """Number of deliveries in each status."""

    async def backlog(self) -> Backlog:
        """Deliveries not yet succeeded, by status, and the oldest one's due time.

        Cheap however many deliveries have succeeded: for scraping metrics.
        """

    async def prune(self, before: float, *, dry_run: bool = False) -> PruneResult:
        """Remove events received before `before` whose deliveries all succeeded.

        Events with a delivery pending, failing, running or dead are kept.
        """

    async def add_subscription(self, record: SubscriptionRecord) -> None:
        """Remember a MaintainX subscription mxbridge created or imported."""

    async def list_subscriptions(self) -> list[SubscriptionRecord]:
        """Every remembered subscription, oldest first."""

    async def get_subscription(self, subscription_id: int) -> SubscriptionRecord | None:
        """The remembered subscription with this MaintainX id, if any."""

    async def set_subscription_status(self, subscription_id: int, status: str) -> None:
        """Record what MaintainX last said of a subscription, and that it was now."""

    async def remove_subscription(self, subscription_id: int) -> bool:
        """Forget a subscription; False when it was not remembered."""

    async def note_subscription_deliveries(self, seen: Mapping[str, float]) -> None:
        """Move forward the last delivery time of each source's subscriptions.

        `seen` maps a source name to the unix time of its latest delivery.
        """

    async def known_records(
        self, kind: str, record_ids: Sequence[str]
    ) -> dict[str, KnownRecord]:
        """The last known state of each of `record_ids` that has one."""

    async def save_known(self, records: Sequence[KnownRecord]) -> None:
        """Save last known states; an older version never replaces a newer one."""

    async def guard_version(
        self, handler: str, record: KnownRecord, event_id: str
    ) -> GuardResult:
        """Compare a record's version with the newest `handler` started on.

        Notes the version as started unless it is older (stale).
        """

    async def save_event_records(
        self,
        expand: Sequence[str],
        records: Mapping[str, Mapping[str, Any] | None],
    ) -> None:
        """Keep the record fetched for each event id; None: it no longer exists."""

    async def get_event_record(self, event_id: str) -> StoredRecord | None:
        """The record kept for an event, if any."""

    async def get_watermark(self, name: str) -> Watermark | None:
        """The watermark saved under `name`, if any."""

    async def save_watermark(self, mark: Watermark) -> None:
        """Save a watermark, replacing the one of the same name."""

    async def announced(
        self, queries: Sequence[Announcement], sources: Sequence[str]
    ) -> list[bool]:
        """For each query, whether an event of its types about its record, from
        none of `sources`, occurred in its time span."""
