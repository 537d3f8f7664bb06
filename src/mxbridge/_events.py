"""The `Event` model, MaintainX event names, and parsing a verified body. Pure.

A delivery's body is a JSON object whose MaintainX event name travels in
``eventType`` (the guide's simple format uses ``event`` and wraps the record in
``data``). Everything else depends on the type: the id of the record is
``workOrderId`` for work orders, ``workRequestId`` or ``requestId`` for requests,
and so on; see the ``x-webhooks`` section of MaintainX's API description.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mxbridge._errors import PayloadError

__all__ = [
    "DEAD_DELIVERY",
    "DERIVED_NAMES",
    "INTERNAL_SOURCE",
    "KNOWN_EVENT_TYPES",
    "KNOWN_NAMES",
    "Event",
    "dead_delivery_event",
    "event_names",
    "make_event_id",
    "parse_event",
    "resolve_event_type",
]

# eventType -> (resource kind, id fields in order of preference, aliases).
# The kinds and aliases follow DESIGN.md's table; ids follow the spec's x-webhooks.
_TYPES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "API_TOKEN_CREATED": ("apitoken", (), ("apitoken.created",)),
    "API_TOKEN_REVOKED": ("apitoken", (), ("apitoken.revoked",)),
    "ASSET_STATUS_CHANGE": (
        "asset",
        ("assetId",),
        ("asset.status_changed", "asset.updated"),
    ),
    "CONNECTOR_TOKEN_REVOKED": ("connectortoken", (), ("connectortoken.revoked",)),
    "DATA_EXPORT_INITIATED": ("dataexport", (), ("dataexport.initiated",)),
    "INVITE_LINK_ARCHIVED": ("invitelink", ("inviteLinkId",), ("invitelink.archived",)),
    "INVITE_LINK_CREATED": ("invitelink", ("inviteLinkId",), ("invitelink.created",)),
    "INVITE_LINK_UPDATED": ("invitelink", ("inviteLinkId",), ("invitelink.updated",)),
    "METER_TRIGGER_STATE_CHANGE": (
        "metertrigger",
        ("meterTriggerId",),
        ("metertrigger.state_changed",),
    ),
    "NEW_ASSET": ("asset", ("assetId",), ("asset.created",)),
    "NEW_CATEGORY_ON_WORK_ORDER": (
        "workorder",
        ("workOrderId",),
        ("workorder.category_added",),
    ),
    "NEW_COMMENT_ON_WORK_ORDER": (
        "workorder",
        ("workOrderId",),
        ("workorder.comment_added",),
    ),
    "NEW_LOCATION": ("location", ("locationId",), ("location.created",)),
    "NEW_PART": ("part", ("partId",), ("part.created",)),
    "NEW_PURCHASE_ORDER": (
        "purchaseorder",
        ("purchaseOrderId",),
        ("purchaseorder.created",),
    ),
    "NEW_SLASH_COMMAND": ("slashcommand", ("messageId",), ("slashcommand.created",)),
    "NEW_VENDOR": ("vendor", ("vendorId",), ("vendor.created",)),
    "NEW_WORK_ORDER": ("workorder", ("workOrderId",), ("workorder.created",)),
    "NEW_WORK_REQUEST": (
        "request",
        ("workRequestId", "requestId"),
        ("request.created",),
    ),
    "PART_CHANGE": ("part", ("partId",), ("part.updated",)),
    "PART_DELETE": ("part", ("partId",), ("part.deleted",)),
    "PART_QUANTITY_CHANGE": ("part", ("partId",), ("part.quantity_changed",)),
    "PART_TRANSFER": ("parttransfer", ("transferRequestId",), ("part.transferred",)),
    "PURCHASE_ORDER_CHANGE": (
        "purchaseorder",
        ("purchaseOrderId",),
        ("purchaseorder.updated",),
    ),
    "PURCHASE_ORDER_STATUS_CHANGE": (
        "purchaseorder",
        ("purchaseOrderId",),
        ("purchaseorder.status_changed",),
    ),
    "ROLE_ARCHIVED": ("role", ("roleId",), ("role.archived",)),
    "ROLE_CREATED": ("role", ("roleId",), ("role.created",)),
    "ROLE_UPDATED": ("role", ("roleId",), ("role.updated",)),
    "SSO_CONFIG_CHANGED": ("sso", (), ("sso.config_changed",)),
    "USER_ACTIVATED": ("user", ("targetUserId",), ("user.activated",)),
    "USER_INVITED": ("user", ("targetUserId",), ("user.invited",)),
    "USER_LOGIN_FAILURE": ("user", ("userId",), ("user.login_failed",)),
    "USER_LOGIN_SUCCESS": ("user", ("userId",), ("user.logged_in",)),
    "USER_LOGOUT": ("user", ("userId",), ("user.logged_out",)),
    "USER_PERMISSIONS_CHANGED": (
        "user",
        ("targetUserId",),
        ("user.permissions_changed",),
    ),
    "USER_REMOVED": ("user", ("targetUserId",), ("user.removed",)),
    "USER_ROLE_CHANGED": ("user", ("targetUserId",), ("user.role_changed",)),
    "USER_SESSION_REVOKED": ("user", ("targetUserId",), ("user.session_revoked",)),
    "WEBHOOK_ARCHIVED": ("webhook", ("webhookId",), ("webhook.archived",)),
    "WEBHOOK_CREATED": ("webhook", ("webhookId",), ("webhook.created",)),
    "WORK_ORDER_CHANGE": ("workorder", ("workOrderId",), ("workorder.updated",)),
    "WORK_ORDER_DELETE": ("workorder", ("workOrderId",), ("workorder.deleted",)),
    "WORK_ORDER_OVERDUE": ("workorder", ("workOrderId",), ("workorder.overdue",)),
    "WORK_ORDER_PART_STATUS_CHANGE": (
        "workorder",
        ("workOrderId",),
        ("workorder.part_status_changed",),
    ),
    "WORK_ORDER_STATUS_CHANGE": (
        "workorder",
        ("workOrderId",),
        ("workorder.status_changed",),
    ),
    "WORK_REQUEST_STATUS_CHANGE": (
        "request",
        ("workRequestId", "requestId"),
        ("request.status_changed",),
    ),
}

KNOWN_EVENT_TYPES: frozenset[str] = frozenset(_TYPES)
"""Every webhook event type in MaintainX's published API description."""

# The first alias of a type is its primary one; the simple format names events
# by it, so it maps back to the MaintainX type.
_PRIMARY_ALIAS = {aliases[0]: name for name, (_, _, aliases) in _TYPES.items()}
DERIVED_NAMES: dict[str, tuple[str, dict[str, str]]] = {
    "workorder.completed": ("WORK_ORDER_STATUS_CHANGE", {"newStatus": "DONE"}),
    "workorder.canceled": (
        "WORK_ORDER_STATUS_CHANGE",
        {"newStatus": "DONE", "newSubStatus": "CANCELED"},
    ),
    "workorder.skipped": (
        "WORK_ORDER_STATUS_CHANGE",
        {"newStatus": "DONE", "newSubStatus": "SKIPPED"},
    ),
    "asset.updated": ("ASSET_STATUS_CHANGE", {}),
}
"""Names that are a kind of another event: its type, and the fields that make it so."""
_NOUN = re.compile(r"^(?:NEW_)?([A-Z_]+?)(?:_STATUS_CHANGE|_CHANGE|_DELETE)?$")
_ACTOR_FIELDS = ("userId", "actorId")
_TIME_FIELDS = ("occurredAt", "triggeredAt", "timestamp")
_EVENT_ID_CHARS = re.compile(r"[\x21-\x7e]{1,200}")

INTERNAL_SOURCE = "mxbridge"
"""The source of events mxbridge emits about itself."""
DEAD_DELIVERY = "mxbridge.delivery.dead"
"""Emitted when a delivery goes dead, so rules can route the failure somewhere."""

KNOWN_NAMES: frozenset[str] = frozenset(
    {
        *_TYPES,
        *(alias for _, _, aliases in _TYPES.values() for alias in aliases),
        *DERIVED_NAMES,
        DEAD_DELIVERY,
    }
)
"""Every name a known event can carry: types, aliases, derived names, our own."""


@dataclass(frozen=True, slots=True)
class Event:
    """One MaintainX event, as received and stored.

    `names` holds every name the event answers to: its MaintainX ``eventType``
    and the dotted aliases of DESIGN.md's table, so a handler may subscribe by
    either. `payload` is the body as received (parsed), `raw` its exact bytes.
    `resource_id` is a string (MaintainX ids are numbers; ``int(...)`` them when
    calling the API). `record` holds the full record once it has been fetched.
    """

    id: str
    source: str
    event_type: str
    names: tuple[str, ...]
    resource_kind: str | None
    resource_id: str | None
    org_id: int | None
    actor_id: int | None
    occurred_at: datetime
    received_at: datetime
    payload: Mapping[str, Any]
    raw: bytes = field(repr=False)
    record: Mapping[str, Any] | None = field(default=None, repr=False)

    @property
    def data(self) -> Mapping[str, Any]:
        """The part of the payload that describes the change.

        The record itself in the simple format (its ``data``), else the payload.
        """
        inner = self.payload.get("data")
        return inner if isinstance(inner, Mapping) else self.payload


def resolve_event_type(name: str) -> str | None:
    """Return the MaintainX event type for `name` (a type or a primary alias)."""
    if name in _TYPES:
        return name
    return _PRIMARY_ALIAS.get(name)


def event_names(event_type: str, payload: Mapping[str, Any]) -> tuple[str, ...]:
    """Every name an event of `event_type` with `payload` answers to.

    A type nobody has seen before keeps its own name only; it still matches ``*``.
    """
    known = _TYPES.get(event_type)
    if known is None:
        return (event_type,)
    names = [event_type, *known[2]]
    if event_type == "WORK_ORDER_STATUS_CHANGE":
        outcome = _status_outcome(payload)
        if outcome:
            names.append(outcome)
    return tuple(names)


def _status_outcome(payload: Mapping[str, Any]) -> str | None:
    sub_status = payload.get("newSubStatus")
    if sub_status == "CANCELED":
        return "workorder.canceled"
    if sub_status == "SKIPPED":
        return "workorder.skipped"
    if payload.get("newStatus") == "DONE" and not sub_status:
        return "workorder.completed"
    return None


def _resource(
    event_type: str, payload: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    known = _TYPES.get(event_type)
    kind: str | None
    if known is not None:
        kind, id_fields, _ = known
    else:
        kind, id_fields = _guess_resource(event_type)
    for name in id_fields:
        value = payload.get(name)
        if isinstance(value, int | str) and not isinstance(value, bool):
            return kind, str(value)
    # Serialized and simple-format records carry their own id.
    value = payload.get("id")
    if (
        kind is not None
        and isinstance(value, int | str)
        and not isinstance(value, bool)
    ):
        return kind, str(value)
    return kind, None


def _guess_resource(event_type: str) -> tuple[str | None, tuple[str, ...]]:
    # An unknown MaintainX-style type such as NEW_FOO_BAR or FOO_BAR_CHANGE most
    # likely carries fooBarId; a dotted name such as foo.created names its kind.
    if "." in event_type:
        kind = event_type.split(".", 1)[0]
        return kind, (f"{kind}Id", "id")
    match = _NOUN.match(event_type)
    if match is None:
        return None, ()
    words = match.group(1).lower().split("_")
    return "".join(words), (words[0] + "".join(w.title() for w in words[1:]) + "Id",)


def _int_or_none(value: object) -> int | None:
    # Ids are stored in 64-bit columns: anything larger is not an id.
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value[:19]) if len(value) <= 19 else None
    if (
        isinstance(value, int)
        and not isinstance(value, bool)
        and -(2**63) <= value < 2**63
    ):
        return value
    return None


def _parse_time(value: object) -> datetime | None:
    if isinstance(value, bool):
        return None
    try:
        if isinstance(value, int | float):
            # Epoch seconds, or milliseconds when the number is that large.
            seconds = value / 1000 if value > 10**11 else value
            return datetime.fromtimestamp(seconds, UTC)
        if isinstance(value, str):
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def _occurred_at(
    payload: Mapping[str, Any], data: Mapping[str, Any], received_at: datetime
) -> datetime:
    for scope in (payload, data):
        for name in _TIME_FIELDS:
            parsed = _parse_time(scope.get(name))
            if parsed is not None:
                return parsed
    for name in ("updatedAt", "createdAt"):
        parsed = _parse_time(data.get(name))
        if parsed is not None:
            return parsed
    return received_at


def make_event_id(source: str, raw: bytes, header_id: str | None = None) -> str:
    """Return the event id: the sender's id when given, else a digest.

    The digest covers the source and the raw body, so the same delivery sent
    twice gets the same id and is stored once.
    """
    if header_id is not None:
        header_id = header_id.strip()
        if not _EVENT_ID_CHARS.fullmatch(header_id):
            raise PayloadError(
                "event id header must be 1 to 200 printable ASCII characters"
            )
        return header_id
    digest = hashlib.sha256(source.encode("utf-8") + b"\n" + raw).hexdigest()
    return "evt_" + digest[:32]


def parse_event(
    raw: bytes,
    *,
    source: str,
    received_at: datetime,
    event_id: str | None = None,
    header_event_id: str | None = None,
) -> Event:
    """Parse a verified body into an `Event`, or raise `PayloadError`.

    `event_id` is given when the event was already stored (it is not derived
    again); otherwise the id comes from `header_event_id` or a digest.
    """
    try:
        payload = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        # ValueError covers bad JSON, bad UTF-8 and integers over Python's limit.
        raise PayloadError(f"body is not valid JSON: {_first_line(exc)}") from exc
    if not isinstance(payload, dict):
        raise PayloadError("body is not a JSON object")
    event_type = _event_type(payload)
    data = payload.get("data") if "eventType" not in payload else None
    facts: Mapping[str, Any] = data if isinstance(data, Mapping) else payload
    maintainx_type = resolve_event_type(event_type) or event_type
    names = event_names(maintainx_type, facts)
    if event_type not in names:
        names = (event_type, *names)
    kind, resource_id = _resource(maintainx_type, facts)
    _check_text(event_type, resource_id)
    return Event(
        id=event_id or make_event_id(source, raw, header_event_id),
        source=source,
        event_type=event_type,
        names=names,
        resource_kind=kind,
        resource_id=resource_id,
        org_id=_int_or_none(payload.get("orgId", facts.get("orgId"))),
        actor_id=_first_int(payload, facts, _ACTOR_FIELDS),
        occurred_at=_occurred_at(payload, facts, received_at),
        received_at=received_at,
        payload=payload,
        raw=raw,
    )


def _check_text(*values: str | None) -> None:
    # JSON may escape lone surrogates ("\ud800") and NUL ("\u0000"); neither is
    # text a database column takes (PostgreSQL refuses NUL in any text).
    for value in values:
        if value is None:
            continue
        if len(value) > 200:
            raise PayloadError("event name or record id is over 200 characters")
        if "\x00" in value:
            raise PayloadError("event name or record id holds a NUL character")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise PayloadError("event name or record id is not valid text") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()
    return text[0] if text else type(exc).__name__


def _event_type(payload: Mapping[str, Any]) -> str:
    for key in ("eventType", "event"):
        value = payload.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    raise PayloadError("body has no eventType (nor event) naming its event")


def _first_int(
    payload: Mapping[str, Any], facts: Mapping[str, Any], keys: tuple[str, ...]
) -> int | None:
    for scope in (payload, facts):
        for key in keys:
            value = _int_or_none(scope.get(key))
            if value is not None:
                return value
    return None


def dead_delivery_event(
    *,
    delivery_id: int,
    handler: str,
    attempts: int,
    error: str | None,
    failed: Event,
    now: datetime,
) -> Event:
    """The internal event that tells a delivery of `failed` went dead."""
    payload = {
        "eventType": DEAD_DELIVERY,
        "occurredAt": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "deliveryId": delivery_id,
        "handler": handler,
        "attempts": attempts,
        "error": (error or "").splitlines()[0] if error else None,
        "event": {
            "id": failed.id,
            "eventType": failed.event_type,
            "source": failed.source,
            "resourceKind": failed.resource_kind,
            "resourceId": failed.resource_id,
        },
    }
    raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return parse_event(raw, source=INTERNAL_SOURCE, received_at=now)
