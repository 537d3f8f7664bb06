"""Managed subscriptions: create, remember, verify with, sync and watch them.

`SubscriptionManager` pairs the MaintainX client with the store;
`ManagedSources` gives the edge their secrets from memory; `plan_sync` and
`silent_subscriptions` are the pure rules. The click groups live in
`mxbridge._subscriptions.cli`.
"""

from __future__ import annotations

from mxbridge._subscriptions._manager import (
    SubscriptionManager,
    Wanted,
    resolve_events,
)
from mxbridge._subscriptions._plan import Plan, plan_sync, silent_subscriptions
from mxbridge._subscriptions._sources import ManagedSources
from mxbridge._subscriptions._urls import (
    check_url,
    new_source_name,
    source_from_url,
    subscription_url,
)

__all__ = [
    "ManagedSources",
    "Plan",
    "SubscriptionManager",
    "Wanted",
    "check_url",
    "new_source_name",
    "plan_sync",
    "resolve_events",
    "silent_subscriptions",
    "source_from_url",
    "subscription_url",
]
