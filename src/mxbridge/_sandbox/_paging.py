"""Cursor pagination and list filters, the way MaintainX pages its lists."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

from mxbridge._sandbox._errors import query_error
from mxbridge._sandbox._state import Record

__all__ = ["Page", "list_values", "page", "parse_limit", "parse_time", "sort_spec"]

SORTABLE = ("updatedAt", "createdAt", "dueDate", "startedAt", "completedAt")
Page = tuple[list[Record], str | None]


def list_values(query: Any, name: str) -> list[str]:
    """Return a repeated query parameter, accepting ``name`` and ``name[]``."""
    return [*query.getlist(name), *query.getlist(f"{name}[]")]


def parse_limit(raw: str | None) -> int:
    """Return the page size: 100 by default, 1 to 200."""
    if raw is None:
        return 100
    if not raw.isdigit() or not 1 <= int(raw) <= 200:
        raise query_error("limit must be an integer between 1 and 200")
    return int(raw)


def parse_time(raw: str, name: str) -> datetime:
    """Parse an ISO 8601 date-time filter, or raise 400 naming the parameter."""
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise query_error(f"{name} must be an ISO 8601 date-time") from None
    if moment.tzinfo is None:
        raise query_error(f"{name} must carry a time zone, e.g. Z")
    return moment


def sort_spec(raw: str | None) -> tuple[str, bool]:
    """Return (field, descending) for a ``sort`` value; id order by default."""
    if raw is None:
        return "id", False
    descending = raw.startswith("-")
    name = raw.lstrip("-")
    if name not in SORTABLE:
        raise query_error(f"Invalid sort value: {raw}")
    return name, descending


def _key(record: Record, field: str) -> list[Any]:
    value = record.get(field)
    return [value is not None, value or "", record["id"]]


def _encode(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def _decode(cursor: str) -> list[Any]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded))
    except (ValueError, binascii.Error):
        raise query_error("Invalid cursor") from None
    if not isinstance(key, list) or len(key) != 3:
        raise query_error("Invalid cursor")
    return key


def _beyond(key: list[Any], cursor: list[Any], descending: bool) -> bool:
    return bool(key < cursor) if descending else bool(key > cursor)


def page(
    records: Sequence[Record],
    *,
    sort: tuple[str, bool],
    cursor: str | None,
    limit: int,
) -> Page:
    """Return one page of `records` after `cursor`, and the next cursor or None."""
    field, descending = sort
    ordered = sorted(records, key=lambda r: _key(r, field), reverse=descending)
    if cursor is not None:
        after = _decode(cursor)
        ordered = [r for r in ordered if _beyond(_key(r, field), after, descending)]
    chunk = ordered[:limit]
    more = len(ordered) > limit
    return chunk, _encode(_key(chunk[-1], field)) if more and chunk else None


def next_page_url(path: str, query: Any, cursor: str | None) -> str | None:
    """Return the path and query of the next page, as ``nextPageUrl``."""
    if cursor is None:
        return None
    items = [(k, v) for k, v in query.multi_items() if k != "cursor"]
    return f"{path}?{urlencode([*items, ('cursor', cursor)])}"
