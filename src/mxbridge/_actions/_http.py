"""``http``: forward the event to any URL (an ERP, a queue's HTTP endpoint).

The body is JSON: the event (``body = "event"``, the default), the record
(``"record"``), the payload as received (``"payload"``) or a ``template`` that
renders to JSON. With ``secret_env`` the request carries the Standard Webhooks
headers (``webhook-id``, ``webhook-timestamp``, ``webhook-signature``), made by
the ``standardwebhooks`` package, so the receiver can verify it; the id is the
same on every retry of one event, for the receiver's deduplication.

A 2xx is success; a 4xx other than 408 and 429 is permanent (the delivery goes
dead with the answer recorded); anything else is retried.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import httpx
import jinja2
from pydantic import Field, field_validator
from standardwebhooks import Webhook

from mxbridge._actions._base import (
    Settings,
    from_env,
    http_client,
    parse_settings,
    send,
)
from mxbridge._actions._context import ActionContext, Templates, to_json
from mxbridge._errors import ConfigError, PermanentError

__all__ = ["HttpAction", "build_http"]

_REDACTED = "<redacted>"


class HttpSettings(Settings):
    """Settings of the ``http`` action."""

    url: str | None = None
    url_env: str | None = None
    method: Literal["POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    headers_env: dict[str, str] = Field(default_factory=dict)
    body: Literal["event", "record", "payload"] = "event"
    template: str | None = None
    secret_env: str | None = None
    timeout: float = 10.0

    @field_validator("url")
    @classmethod
    def _absolute(cls, url: str | None) -> str | None:
        if url is not None and not url.startswith(("http://", "https://")):
            raise ValueError("must be an absolute http(s) URL")
        return url


class HttpAction:
    """Sends one signed JSON request per event."""

    def __init__(
        self,
        settings: HttpSettings,
        *,
        url: str,
        headers: dict[str, str],
        secret: str | None,
        template: jinja2.Template | None,
    ) -> None:
        self.settings = settings
        self.url = url
        self.headers = headers
        self.webhook = Webhook(secret) if secret else None
        self.template = template

    def body(self, ctx: ActionContext) -> bytes:
        """The JSON body for `ctx`, as sent."""
        if self.template is not None:
            text = Templates.render(self.template, ctx, "settings.template")
            try:
                json.loads(text)
            except json.JSONDecodeError as exc:
                raise PermanentError(
                    f"settings.template: did not render JSON: {exc}"
                ) from exc
            return text.encode("utf-8")
        chosen: dict[str, object] = {
            "event": ctx.as_json(),
            "record": ctx.record,
            "payload": ctx.event.payload,
        }
        return to_json(chosen[self.settings.body]).encode("utf-8")

    def request_headers(self, ctx: ActionContext, body: bytes) -> dict[str, str]:
        """Content type, configured headers, and the signature when configured."""
        headers = {"content-type": "application/json", **self.headers}
        if self.webhook is not None:
            message_id = f"{ctx.event.id}.{ctx.rule}"
            now = datetime.now(UTC)
            headers["webhook-id"] = message_id
            headers["webhook-timestamp"] = str(int(now.timestamp()))
            headers["webhook-signature"] = self.webhook.sign(
                message_id, now, body.decode("utf-8")
            )
        return headers

    async def run(self, ctx: ActionContext) -> None:
        """Send the request; see the module's docstring for what counts."""
        body = self.body(ctx)
        headers = self.request_headers(ctx, body)
        async with http_client(self.settings.timeout) as client:
            await send(
                client,
                self.settings.method,
                self.url,
                f"{self.settings.method} {self._target()}",
                content=body,
                headers=headers,
            )

    def _target(self) -> str:
        # A URL from the environment is a secret (hook URLs carry tokens in their
        # path): name its variable. A URL in the file loses credentials and query.
        if self.settings.url_env:
            return f"${self.settings.url_env}"
        return _shown(self.url)

    def preview(self, ctx: ActionContext) -> str:
        """The request, with header values from the environment redacted."""
        shown = {"content-type": "application/json", **self.settings.headers}
        shown.update({name: _REDACTED for name in self.settings.headers_env})
        if self.webhook is not None:
            shown.update(
                {"webhook-id": f"{ctx.event.id}.{ctx.rule}", "webhook-signature": "..."}
            )
        target = self._target()
        lines = [f"{self.settings.method} {target}"]
        lines += [f"{name}: {value}" for name, value in shown.items()]
        body = json.loads(self.body(ctx))
        return "\n".join(lines) + "\n\n" + to_json(body, indent=2)


def build_http(
    settings: Mapping[str, Any], env: Mapping[str, str], templates: Templates
) -> HttpAction:
    """Validate the settings, read the environment, compile the template."""
    parsed = parse_settings(HttpSettings, settings)
    if (parsed.url is None) == (parsed.url_env is None):
        raise ConfigError("settings: give exactly one of url and url_env")
    url = parsed.url or from_env(env, str(parsed.url_env), "settings.url_env")
    headers = dict(parsed.headers)
    for name, variable in parsed.headers_env.items():
        headers[name] = from_env(env, variable, f"settings.headers_env.{name}")
    secret = None
    if parsed.secret_env is not None:
        secret = from_env(env, parsed.secret_env, "settings.secret_env")
        _check_secret(secret)
    template = None
    if parsed.template is not None:
        template = templates.compile(parsed.template, "settings.template")
    return HttpAction(
        parsed, url=url, headers=headers, secret=secret, template=template
    )


def _check_secret(secret: str) -> None:
    try:
        Webhook(secret)
    except Exception as exc:
        raise ConfigError(
            "settings.secret_env: not a Standard Webhooks secret "
            "(whsec_ followed by base64)"
        ) from exc


def _shown(url: str) -> str:
    """`url` without credentials or query, fit for logs and stored errors."""
    parsed = httpx.URL(url)
    port = f":{parsed.port}" if parsed.port else ""
    return f"{parsed.scheme}://{parsed.host}{port}{parsed.path}"
