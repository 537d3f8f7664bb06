"""Realistic sample deliveries, for ``mxbridge send-test``. Pure.

Ids and texts are invented. Bodies are compact JSON with the event name in
``eventType``, as MaintainX sends them.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from mxbridge._errors import PayloadError
from mxbridge._events import DERIVED_NAMES, KNOWN_EVENT_TYPES, resolve_event_type

__all__ = ["apply_overrides", "sample_body", "sample_payload"]

_ORG = 48213
_USER = 520017
_SAMPLES: dict[str, dict[str, Any]] = {
    "NEW_WORK_ORDER": {"workOrderId": 118000101, "userId": _USER},
    "WORK_ORDER_CHANGE": {
        "workOrderId": 118000101,
        "userId": _USER,
        "addedAssigneeIds": [520044],
        "removedAssigneeIds": [],
    },
    "WORK_ORDER_STATUS_CHANGE": {
        "workOrderId": 118000101,
        "userId": 520044,
        "oldStatus": "IN_PROGRESS",
        "newStatus": "DONE",
    },
    "WORK_ORDER_DELETE": {"workOrderId": 118000099, "userId": _USER},
    "WORK_ORDER_OVERDUE": {
        "workOrderId": 118000101,
        "dueDate": "2026-09-22T13:00:00.000Z",
    },
    "NEW_COMMENT_ON_WORK_ORDER": {
        "workOrderId": 118000101,
        "type": "TEXT",
        "comment": "Replaced the inlet gasket; leak stopped.",
    },
    "NEW_WORK_REQUEST": {"workRequestId": 5300871},
    "WORK_REQUEST_STATUS_CHANGE": {
        "requestId": 5300871,
        "oldStatus": "PENDING",
        "newStatus": "APPROVED",
    },
    "NEW_ASSET": {"assetId": 90212},
    "ASSET_STATUS_CHANGE": {
        "assetId": 90211,
        "oldStatus": {"status": "ONLINE"},
        "newStatus": {"status": "OFFLINE", "downtimeType": "UNPLANNED"},
    },
    "PART_QUANTITY_CHANGE": {
        "partId": 66012,
        "userId": 520044,
        "quantityDiff": -2,
        "oldQuantity": 7,
        "newQuantity": 5,
        "locations": [],
    },
}


def sample_payload(name: str, now: datetime | None = None) -> dict[str, Any]:
    """A realistic payload for event `name` (a MaintainX type or an alias)."""
    event_type, extra = DERIVED_NAMES.get(name, (resolve_event_type(name), {}))
    if event_type is None or event_type not in KNOWN_EVENT_TYPES:
        raise PayloadError(
            f"unknown event {name!r}: give a MaintainX event type such as "
            "NEW_WORK_ORDER, or an alias such as workorder.created"
        )
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    payload: dict[str, Any] = {
        "eventType": event_type,
        "occurredAt": moment.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "orgId": _ORG,
    }
    payload.update(_SAMPLES.get(event_type, {}))
    payload.update(extra)
    return payload


def apply_overrides(
    payload: dict[str, Any], assignments: Iterable[str]
) -> dict[str, Any]:
    """Apply ``field=value`` assignments (dotted paths; values parsed as JSON)."""
    for assignment in assignments:
        path, sep, text = assignment.partition("=")
        if not sep or not path:
            raise PayloadError(f"--set {assignment!r}: expected field=value")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        target = payload
        *parents, last = path.split(".")
        for part in parents:
            child = target.setdefault(part, {})
            if not isinstance(child, dict):
                raise PayloadError(f"--set {assignment!r}: {part} is not an object")
            target = child
        target[last] = value
    return payload


def sample_body(payload: dict[str, Any]) -> bytes:
    """Serialise a payload compactly, as MaintainX does."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode(
        "utf-8"
    )
