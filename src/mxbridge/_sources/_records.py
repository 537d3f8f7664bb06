"""Records behind events: how to fetch them, compare them, and announce a change.

Pure. A change found by reading the API (poll, reconcile, backfill) becomes a
body in MaintainX's own delivery shape (``eventType``, ``workOrderId``,
``oldStatus``/``newStatus``, ...), so `parse_event` names and routes it exactly
like a webhook. Its id is derived from the record's id, ``updatedAt`` and
status: the same change read twice is stored once.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mxbridge._events import Event, parse_event
from mxbridge._store._versions import KnownRecord

__all__ = [
    "DEEP_EXPAND",
    "KINDS",
    "READ_SOURCES",
    "Change",
    "FetchedRecord",
    "Kind",
    "derive_change",
    "digest",
    "iso",
    "known_state",
    "read_status",
    "record_missing",
    "record_unchanged",
    "timestamp",
]

READ_SOURCES = ("poll", "reconcile", "backfill")
"""The sources of events mxbridge derives by reading the API."""

DEEP_EXPAND = ("parts", "times", "time_items", "expenditures")
"""What the reconciler expands: time entries and costs move no ``updatedAt``."""


@dataclass(frozen=True, slots=True)
class Kind:
    """One kind of record: where the API keeps it and how its events are named.

    `created` and `status_changed` are MaintainX event types; `updated` is None
    when MaintainX has no such event for the kind.
    """

    name: str
    path: str
    single: str
    plural: str
    id_field: str
    expandable: bool
    created: str
    status_changed: str
    updated: str | None


KINDS: dict[str, Kind] = {
    "workorder": Kind(
        "workorder",
        "/workorders",
        "workOrder",
        "workOrders",
        "workOrderId",
        True,
        "NEW_WORK_ORDER",
        "WORK_ORDER_STATUS_CHANGE",
        "WORK_ORDER_CHANGE",
    ),
    "request": Kind(
        "request",
        "/workrequests",
        "workRequest",
        "workRequests",
        "workRequestId",
        True,
        "NEW_WORK_REQUEST",
        "WORK_REQUEST_STATUS_CHANGE",
        None,
    ),
    "asset": Kind(
        "asset",
        "/assets",
        "asset",
        "assets",
        "assetId",
        False,
        "NEW_ASSET",
        "ASSET_STATUS_CHANGE",
        None,
    ),
    "part": Kind(
        "part",
        "/parts",
        "part",
        "parts",
        "partId",
        False,
        "NEW_PART",
        "PART_CHANGE",
        "PART_CHANGE",
    ),
}


class FetchedRecord(dict[str, Any]):
    """The record an enriched handler gets in ``event.record``.

    A plain dict of the record as the API reads it, plus two marks:
    `missing` (the record no longer exists: the dict is empty, and falsy) and
    `unchanged` (it is the same as the one this handler last handled, for
    another event).
    """

    __slots__ = ("missing", "unchanged")

    def __init__(
        self,
        record: Mapping[str, Any] | None,
        *,
        unchanged: bool = False,
    ) -> None:
        super().__init__(record or {})
        self.missing = record is None
        self.unchanged = unchanged


def record_missing(event: Event) -> bool:
    """True when an enriched event's record no longer exists (it was deleted)."""
    record = event.record
    return isinstance(record, FetchedRecord) and record.missing


def record_unchanged(event: Event) -> bool:
    """True when the record is the same as the one the handler last handled."""
    record = event.record
    return isinstance(record, FetchedRecord) and record.unchanged


def timestamp(value: object) -> float | None:
    """Unix seconds of an ISO 8601 time as MaintainX writes it, else None."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()


def iso(seconds: float) -> str:
    """Unix seconds as MaintainX writes times: UTC with milliseconds."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def digest(record: Mapping[str, Any]) -> str:
    """A stable digest of a record's content."""
    text = json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def read_status(kind: str, record: Mapping[str, Any]) -> str | None:
    """The status as API reads show it (an asset's is its status object's)."""
    if kind == "request":
        value = record.get("requestStatus")
    elif kind == "asset":
        status = record.get("status")
        value = status.get("status") if isinstance(status, Mapping) else status
    else:
        value = record.get("status")
    return value if isinstance(value, str) else None


def known_state(
    kind: str,
    record: Mapping[str, Any],
    occurred_at: float | None = None,
    *,
    with_digest: bool = False,
) -> KnownRecord | None:
    """The `KnownRecord` of a record read from the API; None without updatedAt."""
    updated = timestamp(record.get("updatedAt"))
    if updated is None or "id" not in record:
        return None
    return KnownRecord(
        kind,
        str(record["id"]),
        updated,
        updated if occurred_at is None else occurred_at,
        read_status(kind, record),
        digest(record) if with_digest else None,
    )


@dataclass(frozen=True, slots=True)
class Change:
    """A change found by reading: its MaintainX event type and the record.

    `occurred_at` is when it is said to have occurred (ISO 8601); by default
    the record's ``updatedAt``.
    """

    kind: Kind
    event_type: str
    record: Mapping[str, Any]
    old_status: str | None
    occurred_at: str | None = None

    @property
    def announce_at(self) -> float:
        """When a webhook announcing this change would have occurred."""
        field = "createdAt" if self.event_type == self.kind.created else "updatedAt"
        return timestamp(self.record.get(field)) or 0.0

    @property
    def announced_by(self) -> tuple[str, ...]:
        """The webhook event types that would have announced this change."""
        if self.event_type == self.kind.updated:
            return (self.event_type, self.kind.status_changed)
        return (self.event_type,)

    def event_id(self, tag: str | None = None) -> str:
        """The id of this change's event: the same change read twice, one id."""
        status = read_status(self.kind.name, self.record) or "-"
        moment = tag or str(self.record.get("updatedAt"))
        return f"{self.kind.name}:{self.record['id']}@{moment}:{status}"[:200]

    def event(self, source: str, now: datetime, tag: str | None = None) -> Event:
        """The `Event` of this change, as if MaintainX had delivered it."""
        raw = json.dumps(self.body(), separators=(",", ":")).encode("utf-8")
        return parse_event(
            raw, source=source, received_at=now, event_id=self.event_id(tag)
        )

    def body(self) -> dict[str, Any]:
        """The delivery body MaintainX would have sent for this change."""
        record = self.record
        body: dict[str, Any] = {
            "eventType": self.event_type,
            self.kind.id_field: record["id"],
            "occurredAt": self.occurred_at or record.get("updatedAt"),
        }
        org = record.get("organizationId")
        if isinstance(org, int):
            body["orgId"] = org
        if self.event_type == self.kind.status_changed:
            body.update(
                _status_fields(self.old_status, read_status(self.kind.name, record))
            )
        return body


def _status_fields(old: str | None, new: str | None) -> dict[str, Any]:
    # Reads show DONE with a sub-status as the sub-status itself; deliveries
    # say newStatus DONE, newSubStatus CANCELED (see DESIGN.md's event names).
    fields: dict[str, Any] = {}
    for prefix, value in (("old", old), ("new", new)):
        if value in ("CANCELED", "SKIPPED"):
            fields[f"{prefix}Status"] = "DONE"
            fields[f"{prefix}SubStatus"] = value
        else:
            fields[f"{prefix}Status"] = value
    return fields


def _created_before(record: Mapping[str, Any], moment: float | None) -> bool:
    created = timestamp(record.get("createdAt"))
    return moment is not None and created is not None and created < moment


def derive_change(
    kind: Kind,
    record: Mapping[str, Any],
    known: KnownRecord | None,
    created_since: float | None = None,
) -> Change | None:
    """What changed in `record` since its last known state, if anything.

    First seen: created, unless it was created before `created_since` (the
    start of the walk): then it is an old record that changed, updated.
    Status differs: status changed. Newer ``updatedAt``: updated (for kinds
    MaintainX announces updates of). Older than known: nothing; the bridge has
    already seen a newer state.
    """
    status = read_status(kind.name, record)
    if known is None:
        created = timestamp(record.get("createdAt"))
        if (
            created_since is not None
            and created is not None
            and created < created_since
        ):
            # A first poll must not announce months-old work orders as new.
            return Change(kind, kind.updated, record, None) if kind.updated else None
        return Change(kind, kind.created, record, None)
    updated = timestamp(record.get("updatedAt")) or 0.0
    if updated < known.updated_at:
        return None
    if status != known.status:
        return Change(kind, kind.status_changed, record, known.status)
    if updated > known.updated_at and kind.updated is not None:
        return Change(kind, kind.updated, record, known.status)
    return None
