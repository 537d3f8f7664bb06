"""``report``: when a work order is completed, write a completion report.

Two files in the configured ``folder``, ``work-order-<id>.html`` and
``work-order-<id>.md``, replaced whole (a replay writes them again). The report
shows the title, asset, location, assignees, the status timeline with
durations, time and cost entries, and the events that led there.

The record gives the facts (enrich it with ``expand = ["assignees", "asset",
"location", "time_items", "expenditures"]``); the history comes from the
mirror's database when ``history`` names it (the ``mirror`` action's settings),
else the report knows only the completing event. No PDF is written.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from jinja2.sandbox import SandboxedEnvironment

from mxbridge._actions._base import Settings, parse_settings
from mxbridge._actions._context import (
    ActionContext,
    Templates,
    assignee_names,
    display_name,
    format_duration,
    named,
)
from mxbridge._actions._mirror import MirrorSettings, state_row
from mxbridge._actions._mirror_db import MirrorDatabase
from mxbridge._actions._report_templates import HTML, MARKDOWN
from mxbridge._errors import RetryableError

__all__ = ["ReportAction", "build_report", "render_report", "report_data"]


class ReportSettings(Settings):
    """Settings of the ``report`` action."""

    folder: Path
    history: MirrorSettings | None = None


def _cell(value: object) -> str:
    text = "" if value is None else str(value)
    return " ".join(text.replace("|", "\\|").split())


def _environments() -> tuple[SandboxedEnvironment, SandboxedEnvironment]:
    html = SandboxedEnvironment(autoescape=True)
    markdown = SandboxedEnvironment(autoescape=False)
    markdown.filters["cell"] = _cell
    return html, markdown


_HTML_ENV, _MD_ENV = _environments()
_HTML = _HTML_ENV.from_string(HTML)
_MARKDOWN = _MD_ENV.from_string(MARKDOWN)


def render_report(data: Mapping[str, Any]) -> tuple[str, str]:
    """The report as (HTML, Markdown)."""
    return _HTML.render(r=data), _MARKDOWN.render(r=data)


def _money(value: object) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "-"
    return f"{value:,.2f}"


def _entries(record: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    seen: dict[object, Mapping[str, Any]] = {}
    for key in ("timeItems", "times", "expenditures", "costs"):
        for item in record.get(key) or []:
            if isinstance(item, Mapping):
                seen.setdefault(item.get("id", id(item)), item)
    return list(seen.values())


def _is_time(entry: Mapping[str, Any]) -> bool:
    return entry.get("type") == "TIME" or "durationTotal" in entry


def _who(ctx: ActionContext, entry: Mapping[str, Any]) -> str:
    user = entry.get("user")
    return display_name(user) or (
        f"user {entry['userId']}" if entry.get("userId") else "-"
    )


def _cost_lines(
    ctx: ActionContext, record: Mapping[str, Any]
) -> tuple[list[dict[str, str]], list[dict[str, str]], str]:
    times, costs, total = [], [], 0.0
    for entry in _entries(record):
        amount = entry.get("rowTotal")
        if isinstance(amount, int | float):
            total += amount
        line = {
            "who": _who(ctx, entry),
            "description": str(entry.get("description") or "-"),
            "cost": _money(amount),
        }
        if _is_time(entry):
            times.append(
                line | {"duration": format_duration(entry.get("durationTotal"))}
            )
        else:
            costs.append(line | {"quantity": str(entry.get("quantity", "-"))})
    return times, costs, _money(total)


def _summary(row: Mapping[str, Any]) -> str:
    payload = row.get("payload") or {}
    if row.get("new_status"):
        old = row.get("old_status")
        new = row["new_status"] + (
            f" ({row['new_sub_status']})" if row.get("new_sub_status") else ""
        )
        return f"{old} → {new}" if old else f"created as {new}"
    added = payload.get("addedAssigneeIds")
    if added:
        return "assigned " + ", ".join(f"user {a}" for a in added)
    return str(payload.get("comment") or "")


def _timeline(
    ctx: ActionContext, rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, str]]:
    changes = [r for r in rows if r.get("new_status")]
    spans = []
    for index, row in enumerate(changes):
        end = changes[index + 1]["occurred_at"] if index + 1 < len(changes) else None
        seconds = (end - row["occurred_at"]).total_seconds() if end else None
        status = row["new_status"] + (
            f" ({row['new_sub_status']})" if row.get("new_sub_status") else ""
        )
        spans.append(
            {
                "status": status,
                "start": ctx.local(row["occurred_at"]),
                "end": ctx.local(end) if end else "",
                "duration": format_duration(seconds) if seconds is not None else "",
            }
        )
    return spans


def _rows(
    ctx: ActionContext, history: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    rows = {row["event_id"]: dict(row) for row in history}
    current = state_row(ctx.event, ctx.record)
    if current is not None:
        rows.setdefault(ctx.event.id, dict(current.history))
    return sorted(rows.values(), key=lambda r: (r["occurred_at"], r["event_id"]))


def report_data(
    ctx: ActionContext, history: Sequence[Mapping[str, Any]] = ()
) -> dict[str, Any]:
    """Everything the report shows, as text ready to print."""
    record = ctx.record or {}
    rows = _rows(ctx, history)
    times, costs, total_cost = _cost_lines(ctx, record)
    first, last = (
        (rows[0]["occurred_at"], rows[-1]["occurred_at"]) if rows else (None, None)
    )
    event = ctx.event
    return {
        "id": event.resource_id,
        "title": display_name(record.get("title")) or f"Work order {event.resource_id}",
        "link": ctx.link,
        "asset": display_name(record.get("asset"))
        or display_name(record.get("assetId"))
        or "-",
        "location": named(record, "location") or "-",
        "assignees": assignee_names(record),
        "priority": display_name(record.get("priority")) or "-",
        "completed_at": ctx.local(event.occurred_at),
        "completed_by": f"user {event.actor_id}" if event.actor_id else "-",
        "total_time": format_duration((last - first).total_seconds())
        if first and last and last > first
        else "",
        "timeline": _timeline(ctx, rows),
        "time_entries": times,
        "cost_entries": costs,
        "total_cost": total_cost,
        "events": [
            {
                "when": ctx.local(r["occurred_at"]),
                "type": r["event_type"],
                "who": f"user {r['actor_id']}" if r.get("actor_id") else "-",
                "summary": _summary(r),
            }
            for r in rows
        ],
        "generated_at": ctx.local(datetime.now(UTC)),
        "timezone": str(ctx.timezone),
    }


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)


class ReportAction:
    """Writes the completion report of a work order."""

    def __init__(self, settings: ReportSettings, history: MirrorDatabase | None):
        self.folder = settings.folder
        self.history = history

    def paths(self, ctx: ActionContext) -> tuple[Path, Path]:
        """Where the HTML and Markdown files go."""
        stem = f"work-order-{ctx.event.resource_id}"
        return self.folder / f"{stem}.html", self.folder / f"{stem}.md"

    def _history(self, ctx: ActionContext) -> list[dict[str, Any]]:
        if self.history is None or ctx.event.resource_id is None:
            return []
        return self.history.history("workorder", ctx.event.resource_id)

    def _render_and_write(self, ctx: ActionContext) -> None:
        html, markdown = render_report(report_data(ctx, self._history(ctx)))
        html_path, md_path = self.paths(ctx)
        _write(html_path, html)
        _write(md_path, markdown)

    async def run(self, ctx: ActionContext) -> None:
        """Render and write both files; a failing disk or database is retried."""
        if ctx.event.resource_kind != "workorder" or ctx.event.resource_id is None:
            return
        try:
            await asyncio.to_thread(self._render_and_write, ctx)
        except (OSError, sa.exc.SQLAlchemyError) as exc:
            raise RetryableError(f"report: {type(exc).__name__}: {exc}") from exc

    def preview(self, ctx: ActionContext) -> str:
        """The files, and the Markdown report (history as of now)."""
        html_path, md_path = self.paths(ctx)
        _, markdown = render_report(report_data(ctx, self._history(ctx)))
        return f"write {html_path} and {md_path}\n{markdown}"


def build_report(
    settings: Mapping[str, Any], env: Mapping[str, str], templates: Templates
) -> ReportAction:
    """Validate the settings (and the history database's URL)."""
    parsed = parse_settings(ReportSettings, settings)
    history = None
    if parsed.history is not None:
        history = parsed.history.database(env, "settings.history")
    return ReportAction(parsed, history)
