"""What an action sees of an event: the record, a plain view, templates.

Templates run in Jinja2's `SandboxedEnvironment`, so a rule in a configuration
file can read the event and its record but cannot reach Python internals. A
missing field renders as nothing (`ChainableUndefined`), so
``{{ record.asset.name }}`` is empty, not an error, when the record is thin.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from mxbridge._errors import ConfigError, PermanentError
from mxbridge._events import Event

__all__ = [
    "DEFAULT_APP_URL",
    "ActionContext",
    "Templates",
    "assignee_names",
    "display_name",
    "event_view",
    "format_duration",
    "named",
    "parse_time",
    "record_of",
    "to_json",
    "web_link",
]

DEFAULT_APP_URL = "https://app.getmaintainx.com"
"""MaintainX's web app; links to records are built on it."""

# Keys under which a `serializeEntity` subscription carries the record.
_ENTITY_KEYS = (
    "newWorkOrder",
    "WorkOrder",
    "newWorkRequest",
    "WorkRequest",
    "newAsset",
    "newPart",
    "newPurchaseOrder",
    "newLocation",
    "newVendor",
)
_WEB_PATHS = {
    "workorder": "workorders",
    "request": "requests",
    "asset": "assets",
    "part": "parts",
    "location": "locations",
    "purchaseorder": "purchase-orders",
    "vendor": "vendors",
}


def record_of(event: Event) -> Mapping[str, Any] | None:
    """The record of `event`: fetched by enrichment, else carried in the payload.

    A delivery of a ``serializeEntity`` subscription carries it (``newWorkOrder``,
    ``newAsset``, ...); the guide's simple format carries it in ``data``.
    """
    if event.record:
        # An empty record means enrichment found none: fall back to the payload.
        return event.record
    for key in _ENTITY_KEYS:
        value = event.payload.get(key)
        if isinstance(value, Mapping):
            return value
    if "eventType" not in event.payload:
        data = event.payload.get("data")
        if isinstance(data, Mapping):
            return data
    return None


def event_view(event: Event) -> dict[str, Any]:
    """The event as a plain mapping, the ``event`` of templates and conditions."""
    return {
        "id": event.id,
        "type": event.event_type,
        "names": list(event.names),
        "source": event.source,
        "resource_kind": event.resource_kind,
        "resource_id": event.resource_id,
        "org_id": event.org_id,
        "actor_id": event.actor_id,
        "occurred_at": event.occurred_at,
        "received_at": event.received_at,
    }


EVENT_FIELDS = frozenset(
    (
        "id",
        "type",
        "names",
        "source",
        "resource_kind",
        "resource_id",
        "org_id",
        "actor_id",
        "occurred_at",
        "received_at",
    )
)


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def to_json(value: object, *, indent: int | None = None) -> str:
    """`value` as JSON; datetimes as ISO 8601 in UTC with a ``Z``."""
    return json.dumps(
        value, default=_json_default, ensure_ascii=False, indent=indent, sort_keys=False
    )


def parse_time(value: object) -> datetime | None:
    """A datetime from a datetime or an ISO 8601 string, else None."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_duration(seconds: object) -> str:
    """``2 d 3 h``, ``1 h 30 min``, ``45 s``: a duration for people."""
    if not isinstance(seconds, int | float) or isinstance(seconds, bool):
        return ""
    total = round(seconds)
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    if minutes:
        return f"{minutes} min"
    return f"{secs} s"


def web_link(app_url: str, kind: str | None, record_id: object) -> str | None:
    """The URL of a record in MaintainX's web app, when its kind has a page."""
    path = _WEB_PATHS.get(kind or "")
    if path is None or record_id in (None, ""):
        return None
    return f"{app_url.rstrip('/')}/{path}/{record_id}"


@dataclass(frozen=True, slots=True)
class ActionContext:
    """One event as a rule's action sees it, with the rule's settings for display."""

    event: Event
    rule: str
    timezone: ZoneInfo = field(default_factory=lambda: ZoneInfo("UTC"))
    app_url: str = DEFAULT_APP_URL

    @property
    def record(self) -> Mapping[str, Any] | None:
        """The record (see `record_of`)."""
        return record_of(self.event)

    @property
    def link(self) -> str | None:
        """The event's record in MaintainX's web app."""
        event = self.event
        return web_link(self.app_url, event.resource_kind, event.resource_id)

    def local(self, value: object, fmt: str = "%Y-%m-%d %H:%M %Z") -> str:
        """`value` (a datetime or ISO string) in the configured time zone."""
        moment = parse_time(value)
        if moment is None:
            return "" if value is None else str(value)
        return moment.astimezone(self.timezone).strftime(fmt)

    def variables(self) -> dict[str, Any]:
        """What templates and conditions can name."""
        return {
            "event": event_view(self.event),
            "payload": self.event.payload,
            "record": self.record,
            "rule": self.rule,
            "link": self.link,
        }

    def as_json(self) -> dict[str, Any]:
        """The event as the JSON body of the ``http`` and ``log`` actions."""
        view = event_view(self.event)
        return {**view, "payload": self.event.payload, "record": self.record}


def load_zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`, or `ConfigError`."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ConfigError(f"timezone: unknown time zone {name!r}") from exc


class Templates:
    """Compiles and renders rule templates in a sandbox, with the helpers."""

    def __init__(self, *, autoescape: bool = False) -> None:
        env = SandboxedEnvironment(
            undefined=jinja2.ChainableUndefined,
            autoescape=autoescape,
            keep_trailing_newline=True,
        )
        env.filters["duration"] = format_duration
        env.filters["slack"] = slack_escape
        env.filters["json"] = to_json
        self.env = env

    def compile(self, source: str, key: str) -> jinja2.Template:
        """Compile `source`; a syntax error is a `ConfigError` naming `key`."""
        try:
            return self.env.from_string(source)
        except jinja2.TemplateSyntaxError as exc:
            raise ConfigError(
                f"{key}: template does not compile: {exc.message} (line {exc.lineno})"
            ) from None
        except jinja2.TemplateError as exc:
            raise ConfigError(f"{key}: template does not compile: {exc}") from None

    @staticmethod
    def render(template: jinja2.Template, ctx: ActionContext, key: str) -> str:
        """Render `template` for `ctx`; a failure is permanent (it would recur)."""
        helpers = {
            "local": ctx.local,
            "link_to": lambda kind, rid: web_link(ctx.app_url, kind, rid),
        }
        try:
            return template.render(**ctx.variables(), **helpers)
        except jinja2.TemplateError as exc:
            raise PermanentError(f"{key}: template failed: {exc}") from exc
        except (TypeError, ValueError, ArithmeticError, LookupError) as exc:
            raise PermanentError(
                f"{key}: template failed: {type(exc).__name__}: {exc}"
            ) from exc


def slack_escape(value: object) -> str:
    """Escape ``&``, ``<`` and ``>`` as Slack's message format asks."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def display_name(value: object) -> str | None:
    """A person's or a thing's name from a record field: an expanded object
    (first and last name, or name), else its id, else None."""
    if isinstance(value, Mapping):
        full = " ".join(
            str(value[k]) for k in ("firstName", "lastName") if value.get(k)
        )
        return full or display_name(value.get("name")) or display_name(value.get("id"))
    return None if value in (None, "") else str(value)


def assignee_names(record: Mapping[str, Any]) -> list[str]:
    """The assignees of a record, expanded (names) or not (ids)."""
    assignees = record.get("assignees") or record.get("assigneeIds") or []
    return [name for name in map(display_name, assignees) if name]


def named(record: Mapping[str, Any], key: str) -> str | None:
    """The name of `record[key]` when expanded, else of its id `record[keyId]`."""
    return display_name(record.get(key)) or display_name(record.get(f"{key}Id"))
