"""``slack``: post a message to a Slack incoming webhook.

The webhook URL is a secret, so the rule names the environment variable that
holds it (``webhook_url_env``). Without a ``template`` the message has a default
layout: the title, priority, asset and location, who, and a link to MaintainX.
Slack's 429 carries ``Retry-After``; the retry waits that long.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jinja2

from mxbridge._actions._base import (
    Settings,
    from_env,
    http_client,
    parse_settings,
    send,
)
from mxbridge._actions._context import (
    ActionContext,
    Templates,
    assignee_names,
    display_name,
    named,
    slack_escape,
    to_json,
)
from mxbridge._events import DEAD_DELIVERY

__all__ = ["SlackAction", "build_slack"]


class SlackSettings(Settings):
    """Settings of the ``slack`` action."""

    webhook_url_env: str
    template: str | None = None
    timeout: float = 10.0


class SlackAction:
    """Posts one message per event to a Slack incoming webhook."""

    def __init__(
        self, settings: SlackSettings, url: str, template: jinja2.Template | None
    ) -> None:
        self.settings = settings
        self.url = url
        self.template = template

    def message(self, ctx: ActionContext) -> dict[str, Any]:
        """The JSON body Slack gets for `ctx`."""
        if self.template is not None:
            text = Templates.render(self.template, ctx, "settings.template")
            return {"text": text.strip()}
        return default_message(ctx)

    async def run(self, ctx: ActionContext) -> None:
        """Post the message; 429 and 5xx retry, other 4xx are permanent."""
        body = self.message(ctx)
        async with http_client(self.settings.timeout) as client:
            await send(client, "POST", self.url, "Slack", json=body)

    def preview(self, ctx: ActionContext) -> str:
        """The message, and where it would go."""
        target = f"${self.settings.webhook_url_env}"
        return f"POST {target}\n{to_json(self.message(ctx), indent=2)}"


def build_slack(
    settings: Mapping[str, Any], env: Mapping[str, str], templates: Templates
) -> SlackAction:
    """Validate the settings, find the URL, compile the template."""
    parsed = parse_settings(SlackSettings, settings)
    url = from_env(env, parsed.webhook_url_env, "settings.webhook_url_env")
    template = None
    if parsed.template is not None:
        template = templates.compile(parsed.template, "settings.template")
    return SlackAction(parsed, url, template)


def _who(ctx: ActionContext, record: Mapping[str, Any]) -> str:
    names = assignee_names(record)
    parts = []
    if ctx.event.actor_id is not None:
        parts.append(f"by user {ctx.event.actor_id}")
    if names:
        parts.append("assigned to " + ", ".join(names))
    return "; ".join(parts) or "-"


def _place(record: Mapping[str, Any]) -> str:
    asset = named(record, "asset")
    location = display_name(record.get("location")) or display_name(
        record.get("locationId")
    )
    shown = [
        f"asset {asset}" if asset else None,
        f"at {location}" if location else None,
    ]
    return ", ".join(s for s in shown if s) or "-"


def default_message(ctx: ActionContext) -> dict[str, Any]:
    """The default layout: a header, a few fields and a link, with a text fallback."""
    if ctx.event.event_type == DEAD_DELIVERY:
        return _dead_message(ctx)
    record = ctx.record or {}
    event = ctx.event
    title = (
        display_name(record.get("title"))
        or f"{event.resource_kind} {event.resource_id}"
    )
    status = ctx.event.payload.get("newStatus")
    fields = {
        "Event": event.event_type,
        "Priority": display_name(record.get("priority")) or "-",
        "Asset and location": _place(record),
        "Who": _who(ctx, record),
        "When": ctx.local(event.occurred_at),
    }
    if isinstance(status, str):
        fields["Status"] = status
    text = f"{slack_escape(title)} ({fields['Priority']})"
    if ctx.link:
        text += f" <{ctx.link}|open in MaintainX>"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {
            "type": "section",
            "fields": [
                {"type": "mrkdwn", "text": f"*{k}*\n{slack_escape(v)}"}
                for k, v in fields.items()
            ],
        },
    ]
    if ctx.link:
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": f"<{ctx.link}|Open in MaintainX>"},
            }
        )
    return {"text": text, "blocks": blocks}


def _dead_message(ctx: ActionContext) -> dict[str, Any]:
    payload = ctx.event.payload
    failed = payload.get("event") or {}
    text = (
        f":rotating_light: mxbridge gave up on handler {payload.get('handler')} for "
        f"event {failed.get('id')} ({failed.get('eventType')}) after "
        f"{payload.get('attempts')} attempt(s): {payload.get('error') or 'no error'}"
    )
    return {"text": slack_escape(text)}
