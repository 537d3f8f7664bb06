"""Create, refresh, import, delete and sync MaintainX subscriptions, remembered.

MaintainX has no call that lists subscriptions, so the store is the only memory
of them: each one is recorded the moment MaintainX answers, before the next is
made. When one of several creates fails, the ones already made are deleted from
MaintainX and forgotten again, so a failed command leaves nothing behind; one
that cannot be deleted (MaintainX unreachable by then) stays recorded, and the
error says so, so that ``subscriptions delete`` can finish the job.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mxbridge._config import DesiredSubscription
from mxbridge._errors import ApiError, ConfigError, MxbridgeError, NotFoundError
from mxbridge._events import DERIVED_NAMES, resolve_event_type
from mxbridge._maintainx import MaintainXClient
from mxbridge._store import DELETED, Store, SubscriptionRecord
from mxbridge._subscriptions._plan import Plan, plan_sync
from mxbridge._subscriptions._urls import (
    check_url,
    new_source_name,
    source_from_url,
    subscription_url,
)

__all__ = ["SubscriptionManager", "Wanted", "resolve_events"]


@dataclass(frozen=True)
class Wanted:
    """One subscription to create: an event type and its options."""

    event_type: str
    serialize: bool = False
    filters: Mapping[str, Any] = field(default_factory=dict)


def resolve_events(names: Sequence[str]) -> list[str]:
    """MaintainX event types for `names` (types or dotted names), in order.

    Raises `ConfigError` naming every unknown one, before anything is made.
    """
    for name in names:
        if name in DERIVED_NAMES:
            event_type, fields = DERIVED_NAMES[name]
            hint = f" --filter oneOfStatuses={fields['newStatus']}" if fields else ""
            raise ConfigError(
                f"{name} is a kind of {event_type}, which MaintainX subscribes to as a "
                f"whole: subscribe to {event_type}{hint} and let handlers pick {name}"
            )
    unknown = [name for name in names if resolve_event_type(name) is None]
    if unknown:
        raise ConfigError(f"unknown MaintainX event type: {', '.join(unknown)}")
    return list(dict.fromkeys(str(resolve_event_type(name)) for name in names))


class SubscriptionManager:
    """MaintainX's subscriptions on one side, the store's memory on the other."""

    def __init__(
        self,
        client: MaintainXClient,
        store: Store,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.store = store
        self.clock = clock

    # -- create --------------------------------------------------------------

    async def create(
        self, wanted: Sequence[Wanted], public_url: str
    ) -> list[SubscriptionRecord]:
        """Create and remember one subscription per item; all or none.

        Every URL is checked before the first call to MaintainX.
        """
        planned = [(item, new_source_name(item.event_type)) for item in wanted]
        for _, source in planned:
            check_url(subscription_url(public_url, source), self.client.base_url)
        made: list[SubscriptionRecord] = []
        try:
            for item, source in planned:
                made.append(await self._create_one(item, public_url, source))
        except MxbridgeError as exc:
            await self._undo(made, exc)
            raise
        return made

    async def _create_one(
        self, item: Wanted, public_url: str, source: str
    ) -> SubscriptionRecord:
        url = subscription_url(public_url, source)
        answer = await self.client.create_subscription(
            item.event_type,
            url,
            serialize_entity=item.serialize,
            filters=item.filters or None,
        )
        record = SubscriptionRecord(
            id=answer.id,
            source=source,
            event_type=item.event_type,
            url=url,
            secret=answer.secret or "",
            status=answer.status,
            created_at=self.clock(),
            serialize=item.serialize,
            filters=dict(item.filters),
            checked_at=self.clock(),
        )
        if not answer.secret:
            await self._delete_remote(answer.id)
            raise ApiError(
                f"MaintainX created subscription {answer.id} without a secret"
            )
        try:
            await self.store.add_subscription(record)
        except MxbridgeError:
            # Unremembered, it could never be listed or deleted again: undo it.
            await self._delete_remote(answer.id)
            raise
        return record

    async def _undo(self, made: list[SubscriptionRecord], cause: Exception) -> None:
        stuck = []
        for record in made:
            try:
                await self._delete_remote(record.id)
            except MxbridgeError:
                stuck.append(str(record.id))
                continue
            await self.store.remove_subscription(record.id)
        if stuck:
            raise MxbridgeError(
                f"{cause}; and subscription(s) {', '.join(stuck)} already created "
                "could not be undone: they stay recorded, remove them with "
                f"`mxbridge subscriptions delete {' '.join(stuck)}`"
            ) from cause

    async def _delete_remote(self, subscription_id: int) -> None:
        with contextlib.suppress(NotFoundError):
            await self.client.delete_subscription(subscription_id)

    # -- read, import, delete --------------------------------------------------

    async def refresh(self) -> list[SubscriptionRecord]:
        """Ask MaintainX about every live subscription; record what it says.

        One MaintainX no longer knows (404) becomes ``DELETED``.
        """
        for record in await self.store.list_subscriptions():
            if record.status == DELETED:
                continue
            try:
                found = await self.client.get_subscription(record.id)
                status = found.status
            except NotFoundError:
                status = DELETED
            await self.store.set_subscription_status(record.id, status)
        return await self.store.list_subscriptions()

    async def import_subscription(
        self, subscription_id: int, secret: str | None
    ) -> SubscriptionRecord:
        """Remember a subscription made elsewhere (the web app), with its secret.

        With no `secret`, MaintainX is asked for it.
        """
        if await self.store.get_subscription(subscription_id) is not None:
            raise ConfigError(f"subscription {subscription_id} is already known")
        found = await self.client.get_subscription(subscription_id)
        if secret is None:
            secret = await self.client.get_subscription_secret(subscription_id)
        record = SubscriptionRecord(
            id=found.id,
            source=source_from_url(found.url),
            event_type=found.type,
            url=found.url,
            secret=secret,
            status=found.status,
            created_at=self.clock(),
            origin="imported",
            checked_at=self.clock(),
        )
        await self.store.add_subscription(record)
        return record

    async def delete(self, subscription_ids: Sequence[int]) -> list[int]:
        """Delete subscriptions at MaintainX (gone already is fine) and forget them."""
        done = []
        for subscription_id in subscription_ids:
            if await self.store.get_subscription(subscription_id) is None:
                raise ConfigError(f"no subscription {subscription_id} is known")
            await self._delete_remote(subscription_id)
            await self.store.remove_subscription(subscription_id)
            done.append(subscription_id)
        return done

    # -- sync --------------------------------------------------------------------

    async def plan(
        self, desired: Sequence[DesiredSubscription], public_url: str
    ) -> Plan:
        """Refresh from MaintainX, then compare with the desired set."""
        known = await self.refresh()
        return plan_sync(desired, known, public_url)

    async def apply(self, plan: Plan, public_url: str) -> list[SubscriptionRecord]:
        """Carry out a plan: creates first (all or none), then deletes."""
        wanted = [Wanted(d.event, d.serialize, d.filters) for d in plan.create]
        made = await self.create(wanted, public_url) if wanted else []
        await self.delete([record.id for record in plan.delete])
        return made
