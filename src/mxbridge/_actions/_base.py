"""What every built-in action shares: its protocol, settings and HTTP outcomes."""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

import httpx
from pydantic import BaseModel, ConfigDict, ValidationError

from mxbridge._actions._context import ActionContext
from mxbridge._config import describe_errors
from mxbridge._errors import ConfigError, PermanentError, RetryableError

__all__ = [
    "Action",
    "Settings",
    "check_response",
    "from_env",
    "http_client",
    "parse_settings",
    "send",
]

_BODY_CHARS = 500


class Action(Protocol):
    """A built-in action, configured once and run for each event a rule lets by."""

    async def run(self, ctx: ActionContext) -> None:
        """Act on the event; raise `RetryableError` or `PermanentError` to steer."""

    def preview(self, ctx: ActionContext) -> str:
        """What `run` would do for `ctx`, for people, without doing it."""


class Settings(BaseModel):
    """The base of every action's settings: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


S = TypeVar("S", bound=Settings)


def parse_settings(model: type[S], settings: Mapping[str, Any]) -> S:
    """Validate `settings`; a problem is a `ConfigError` naming the key."""
    try:
        return model.model_validate(dict(settings))
    except ValidationError as exc:
        message = describe_errors(exc, prefix="settings.", top="settings")
        raise ConfigError(message) from None


def from_env(env: Mapping[str, str], variable: str, key: str) -> str:
    """The value of environment `variable`, or a `ConfigError` naming `key`."""
    value = env.get(variable, "").strip()
    if not value:
        raise ConfigError(f"{key}: environment variable {variable} is not set")
    return value


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after", "").strip()
    try:
        return max(float(value), 0.0) if value else None
    except ValueError:
        return None


@functools.cache
def _tls() -> ssl.SSLContext:
    return httpx.create_ssl_context()


def http_client(timeout: float) -> httpx.AsyncClient:
    """An HTTP client for one action run, on a TLS context built once.

    Building the context loads the CA bundle: 25-65 ms of blocked event loop,
    which a client per event must not pay.
    """
    return httpx.AsyncClient(timeout=timeout, verify=_tls())


def check_response(response: httpx.Response, what: str) -> None:
    """Raise unless 2xx: 4xx but 408 and 429 is permanent, the rest retryable.

    The answer's status and the start of its body go into the message, which the
    store keeps as the delivery's last error.
    """
    if response.is_success:
        return
    status = response.status_code
    body = response.text[:_BODY_CHARS].strip()
    message = f"{what} answered {status}" + (f": {body}" if body else "")
    if 400 <= status < 500 and status not in (408, 429):
        raise PermanentError(message)
    raise RetryableError(message, retry_after=_retry_after(response))


async def send(
    client: httpx.AsyncClient, method: str, url: str, what: str, **kwargs: Any
) -> httpx.Response:
    """Send a request; a transport failure is retryable."""
    try:
        response = await client.request(method, url, **kwargs)
    except httpx.TransportError as exc:
        raise RetryableError(f"{what} unreachable: {type(exc).__name__}") from exc
    check_response(response, what)
    return response
