"""What `subscriptions sync` would do, and which subscriptions have gone quiet. Pure.

A remembered subscription *keeps* a desired one when it is alive (not deleted
by MaintainX), lives under the configured public URL, and has the same event
type, ``serializeEntity`` and filters. Desired ones nothing keeps are
*created*; subscriptions mxbridge created that nothing desires are *deleted*.
Imported ones (made in MaintainX's web app) are never deleted by sync: they
are *left* alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from mxbridge._config import DesiredSubscription
from mxbridge._store import DELETED, SubscriptionRecord
from mxbridge._subscriptions._urls import subscription_base

__all__ = ["Plan", "plan_sync", "silent_subscriptions"]

Key = tuple[str, bool, str]


@dataclass(frozen=True)
class Plan:
    """The changes that bring MaintainX to the desired set."""

    create: list[DesiredSubscription] = field(default_factory=list)
    keep: list[SubscriptionRecord] = field(default_factory=list)
    delete: list[SubscriptionRecord] = field(default_factory=list)
    leave: list[SubscriptionRecord] = field(default_factory=list)

    @property
    def changes(self) -> bool:
        """True when applying the plan would call MaintainX."""
        return bool(self.create or self.delete)


def _key(event_type: str, serialize: bool, filters: Mapping[str, Any]) -> Key:
    normal = {name: sorted(map(str, values)) for name, values in filters.items()}
    return event_type, serialize, repr(sorted(normal.items()))


def plan_sync(
    desired: Sequence[DesiredSubscription],
    known: Iterable[SubscriptionRecord],
    public_url: str,
) -> Plan:
    """Compare the desired set with what is remembered; see the module text."""
    wanted = {_key(d.event, d.serialize, d.filters): d for d in desired}
    prefix = subscription_base(public_url) + "/"
    plan = Plan()
    for record in known:
        key = _key(record.event_type, record.serialize, record.filters)
        alive = record.status != DELETED and record.url.startswith(prefix)
        if alive and key in wanted:
            plan.keep.append(record)
            del wanted[key]
        elif record.origin == "imported" and record.status != DELETED:
            plan.leave.append(record)
        else:
            plan.delete.append(record)
    plan.create.extend(wanted.values())
    return plan


def silent_subscriptions(
    records: Iterable[SubscriptionRecord], now: float, quiet_seconds: float
) -> list[SubscriptionRecord]:
    """Live subscriptions with no delivery for `quiet_seconds` while others had one.

    A subscription that never had a delivery counts from its creation. With no
    recent delivery anywhere, nothing is flagged: a quiet plant is not a fault.
    """
    alive = [r for r in records if r.status != DELETED]
    recent = [
        r
        for r in alive
        if r.last_delivery_at is not None and now - r.last_delivery_at < quiet_seconds
    ]
    if not recent:
        return []
    return [
        r for r in alive if now - (r.last_delivery_at or r.created_at) >= quiet_seconds
    ]
