"""``mirror``: keep a copy of work orders, requests and assets in SQL.

See `mxbridge._actions._mirror_db` for the tables and how out-of-order and
repeated deliveries are absorbed. Events of other kinds pass through untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import Field, model_validator

from mxbridge._actions._base import Settings, from_env, parse_settings
from mxbridge._actions._context import ActionContext, Templates, parse_time, to_json
from mxbridge._actions._mirror_db import KINDS, MirrorDatabase, StateRow, check_url
from mxbridge._errors import RetryableError
from mxbridge._events import Event

__all__ = ["MirrorAction", "MirrorSettings", "build_mirror", "state_row"]

_NEW_STATUS_DEFAULT = {"NEW_WORK_ORDER": "OPEN"}


class MirrorSettings(Settings):
    """Settings of the ``mirror`` action (and where ``report`` reads history)."""

    url: str | None = None
    url_env: str | None = None
    table_prefix: str = "mx_"
    db_schema: str | None = Field(default=None, alias="schema")

    @model_validator(mode="after")
    def _one_url(self) -> MirrorSettings:
        if (self.url is None) == (self.url_env is None):
            raise ValueError("give exactly one of url and url_env")
        if not self.table_prefix.replace("_", "").isalnum():
            raise ValueError("table_prefix may hold only letters, digits and _")
        return self

    def database(self, env: Mapping[str, str], key: str) -> MirrorDatabase:
        """The database these settings name, its URL checked."""
        url = self.url or from_env(env, str(self.url_env), f"{key}.url_env")
        check_url(url, f"{key}.url")
        return MirrorDatabase(url, prefix=self.table_prefix, schema=self.db_schema)


class MirrorAction:
    """Writes each event's state and history row into the mirror."""

    def __init__(self, database: MirrorDatabase) -> None:
        self.database = database

    async def run(self, ctx: ActionContext) -> None:
        """Apply the event; a database that fails is retried."""
        row = state_row(ctx.event, ctx.record)
        if row is None:
            return
        try:
            await asyncio.to_thread(self.database.apply, row)
        except sa.exc.SQLAlchemyError as exc:
            raise RetryableError(f"mirror: {type(exc).__name__}: {exc}") from exc

    def preview(self, ctx: ActionContext) -> str:
        """The state and history row the event would write."""
        row = state_row(ctx.event, ctx.record)
        if row is None:
            return f"nothing: the mirror keeps only {', '.join(sorted(KINDS))}"
        table = self.database.states[row.kind].name
        shown = {k: v for k, v in row.state.items() if k != "record"}
        history = {k: v for k, v in row.history.items() if k != "payload"}
        return (
            f"upsert {table} id={row.record_id} if not older than "
            f"{row.version_at.isoformat()}: {to_json(shown)}\n"
            f"history {self.database.histories[row.kind].name}: {to_json(history)}"
        )


def build_mirror(
    settings: Mapping[str, Any], env: Mapping[str, str], templates: Templates
) -> MirrorAction:
    """Validate the settings and the database URL."""
    parsed = parse_settings(MirrorSettings, settings)
    return MirrorAction(parsed.database(env, "settings"))


def _status(value: object) -> str | None:
    # Assets carry their status as an object; work orders and requests as text.
    if isinstance(value, Mapping):
        value = value.get("status")
    return value if isinstance(value, str) else None


def _text(value: object) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    if value is None or isinstance(value, bool):
        return None
    return str(value)


def _from_record(kind: str, record: Mapping[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = {"record": dict(record)}
    title = record.get("title") or record.get("name")
    if isinstance(title, str):
        found["title"] = title
    if isinstance(record.get("priority"), str):
        found["priority"] = record["priority"]
    for column, keys in (
        ("asset_id", ("assetId", "asset")),
        ("location_id", ("locationId", "location")),
    ):
        for key in keys:
            if record.get(key) is not None:
                found[column] = _text(record[key])
                break
    status = _status(record.get("status") or record.get("requestStatus"))
    if status is not None:
        found["status"] = status
        if kind == "workorder" and "subStatus" in record:
            found["sub_status"] = record.get("subStatus")
    return found


def _from_payload(event: Event) -> dict[str, Any]:
    payload = event.payload
    found: dict[str, Any] = {
        "deleted": event.event_type.endswith("_DELETE"),
        "last_event_id": event.id,
        "last_event_type": event.event_type,
    }
    new_status = _status(payload.get("newStatus"))
    if new_status is not None:
        found["status"] = new_status
        if event.resource_kind == "workorder":
            found["sub_status"] = payload.get("newSubStatus")
    elif event.event_type in _NEW_STATUS_DEFAULT:
        found["status"] = _NEW_STATUS_DEFAULT[event.event_type]
    return found


def _version(event: Event, record: Mapping[str, Any] | None) -> datetime:
    updated = parse_time(record.get("updatedAt")) if record else None
    if updated is not None and updated > event.occurred_at:
        return updated
    return event.occurred_at


def state_row(event: Event, record: Mapping[str, Any] | None) -> StateRow | None:
    """What `event` (and its record) say for the mirror; None for other kinds."""
    kind = event.resource_kind
    if kind not in KINDS or event.resource_id is None:
        return None
    version = _version(event, record)
    from_payload = _from_payload(event)
    from_record = _from_record(kind, record) if record else {}
    # The fresher source wins: a record fetched after the event, else the event.
    if version > event.occurred_at:
        state = {**from_payload, **from_record}
    else:
        state = {**from_record, **from_payload}
    created = None
    if event.event_type.startswith("NEW_"):
        # The status it was created in: from a record of that moment only.
        fresh = version > event.occurred_at
        created = (None if fresh else from_record.get("status")) or from_payload.get(
            "status"
        )
    return StateRow(kind, event.resource_id, version, state, _history(event, created))


def _history(event: Event, created_status: str | None) -> dict[str, Any]:
    payload = event.payload
    new_status = _status(payload.get("newStatus")) or created_status
    return {
        "event_id": event.id,
        "record_id": event.resource_id,
        "event_type": event.event_type,
        "occurred_at": event.occurred_at,
        "actor_id": event.actor_id,
        "old_status": _status(payload.get("oldStatus")),
        "new_status": new_status,
        "old_sub_status": payload.get("oldSubStatus"),
        "new_sub_status": payload.get("newSubStatus"),
        "payload": dict(payload),
    }
