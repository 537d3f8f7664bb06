"""Deriving a change from a record read through the API. Pure."""

from __future__ import annotations

from datetime import UTC, datetime

from mxbridge._sources._records import KINDS, derive_change

OLD = {
    "id": 7,
    "status": "OPEN",
    "createdAt": "2026-01-05T08:00:00.000Z",
    "updatedAt": "2026-09-21T10:00:00.000Z",
}
SINCE = datetime(2026, 9, 21, 9, 0, tzinfo=UTC).timestamp()  # the walk's start


def test_a_first_seen_record_created_before_the_walk_is_an_update() -> None:
    """A first poll does not announce a months-old work order as created."""
    change = derive_change(KINDS["workorder"], OLD, None, created_since=SINCE)

    assert change is not None
    assert change.event_type == KINDS["workorder"].updated


def test_a_first_seen_record_created_during_the_walk_is_created() -> None:
    """A work order created inside the walk's window is new."""
    fresh = {**OLD, "createdAt": "2026-09-21T09:59:00.000Z"}

    change = derive_change(KINDS["workorder"], fresh, None, created_since=SINCE)

    assert change is not None
    assert change.event_type == KINDS["workorder"].created


def test_without_a_walk_start_first_seen_is_created() -> None:
    """Backfill-style walks with no start keep the old rule: first seen, created."""
    change = derive_change(KINDS["workorder"], OLD, None)

    assert change is not None
    assert change.event_type == KINDS["workorder"].created
