"""Configuration: a TOML file (``mxbridge.toml``) plus environment variables.

The file is found by ``--config``, else ``MXBRIDGE_CONFIG``, else
``./mxbridge.toml`` when it exists; with none, the defaults apply. The
environment adds what should not live in a file:

- ``MAINTAINX_WEBHOOK_SECRET``: secrets of the ``default`` source, comma-separated
  during a rotation (a source may name another variable with ``secrets_env``);
- ``MXBRIDGE_STORE_URL``: the store's URL, over ``[store] url``.

An invalid configuration raises `ConfigError` naming the key and what is wrong.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal

import httpx
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mxbridge._database import sqlite_file
from mxbridge._errors import ConfigError
from mxbridge._events import resolve_event_type
from mxbridge._maintainx._client import API_KEY_ENV, DEFAULT_BASE_URL
from mxbridge._retry import RetryPolicy

__all__ = [
    "DEFAULT_SOURCE",
    "Config",
    "DesiredSubscription",
    "EnrichConfig",
    "LoggingConfig",
    "MaintainXConfig",
    "PollConfig",
    "ReconcileConfig",
    "RetryConfig",
    "ServerConfig",
    "SourceConfig",
    "StoreConfig",
    "WorkerConfig",
    "describe_errors",
    "load_config",
]

DEFAULT_SOURCE = "default"
SECRET_ENV = "MAINTAINX_WEBHOOK_SECRET"
STORE_URL_ENV = "MXBRIDGE_STORE_URL"
CONFIG_ENV = "MXBRIDGE_CONFIG"

PositiveFloat = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Section):
    """Where the edge listens, and how much it reads."""

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    max_body_bytes: int = Field(default=1024 * 1024, gt=0)
    read_timeout: PositiveFloat = 10.0
    commit_timeout: PositiveFloat = 8.0


class SourceConfig(_Section):
    """A named group of secrets: one MaintainX subscription, or several in rotation.

    `public_url` is the URL MaintainX posts to (as registered with it); when set,
    the URI signature is checked against it.
    """

    scheme: Literal["maintainx", "simple"] = "maintainx"
    secrets: list[str] = Field(default_factory=list)
    secrets_env: str | None = None
    public_url: str | None = None
    tolerance_seconds: int = Field(default=300, ge=0)

    @field_validator("secrets")
    @classmethod
    def _no_blank_secret(cls, secrets: list[str]) -> list[str]:
        if any(not secret.strip() for secret in secrets):
            raise ValueError("a secret is empty or whitespace only")
        if not all(_is_text(secret) for secret in secrets):
            raise ValueError("a secret is not valid UTF-8 text")
        return secrets

    @field_validator("public_url")
    @classmethod
    def _absolute_url(cls, url: str | None) -> str | None:
        return _http_url(url)


class StoreConfig(_Section):
    """Where events are kept.

    `synchronous` is SQLite's: ``full`` survives a power cut, ``normal`` only a
    killed process (and is faster). `lock_timeout` is how long an SQLite write
    waits for another process's lock before the edge answers 503. With
    `keep_days`, ``serve`` removes every hour the events older than that whose
    deliveries all succeeded (``mxbridge events prune`` does it by hand); by
    default every event is kept.
    """

    url: str = "sqlite:///mxbridge.db"
    synchronous: Literal["full", "normal"] = "full"
    lock_timeout: PositiveFloat = 5.0
    keep_days: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None


class WorkerConfig(_Section):
    """How deliveries are run."""

    enabled: bool = True
    concurrency: int = Field(default=32, ge=1, le=256)
    poll_interval: PositiveFloat = 1.0
    handler_timeout: PositiveFloat = 30.0
    grace_seconds: float = Field(default=20.0, ge=0)


class RetryConfig(_Section):
    """The retry schedule; the defaults span about a day (see `RetryPolicy`)."""

    max_attempts: int = Field(default=11, ge=1, le=100)
    initial_delay: PositiveFloat = 15.0
    multiplier: float = Field(default=3.0, ge=1.0)
    max_delay: PositiveFloat = 6 * 3600.0
    jitter: float = Field(default=0.2, ge=0.0, lt=1.0)

    def policy(self) -> RetryPolicy:
        """The pure `RetryPolicy` these settings describe."""
        return RetryPolicy(**self.model_dump())


class LoggingConfig(_Section):
    """Log level and format (``auto``: JSON unless on a terminal)."""

    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class DesiredSubscription(_Section):
    """One MaintainX subscription `subscriptions sync` keeps in place.

    `event` is MaintainX's type or its dotted name (``workorder.created``);
    `filters` are MaintainX's (``oneOfStatuses = ["DONE"]``).
    """

    event: str
    serialize: bool = False
    filters: dict[str, list[str | int]] = Field(default_factory=dict)

    @field_validator("event")
    @classmethod
    def _known_event(cls, event: str) -> str:
        event_type = resolve_event_type(event)
        if event_type is None:
            raise ValueError(f"unknown MaintainX event type {event!r}")
        return event_type


class MaintainXConfig(_Section):
    """The MaintainX API, and the subscriptions mxbridge manages there.

    The API key is read from the environment variable `api_key_env`, never from
    the file. `public_url` is where MaintainX reaches this edge's
    ``/webhooks/maintainx``; each subscription gets its own path under it.
    """

    base_url: str = DEFAULT_BASE_URL
    api_key_env: str = API_KEY_ENV
    organization_id: int | None = None
    requests_per_minute: int | None = Field(default=90, gt=0)
    public_url: str | None = None
    subscriptions: list[DesiredSubscription] = Field(default_factory=list)
    silence_warning_hours: PositiveFloat = 24.0

    @field_validator("base_url", "public_url")
    @classmethod
    def _absolute(cls, url: str | None) -> str | None:
        return _http_url(url)


class PollConfig(_Section):
    """The polling fallback: ``mxbridge poll``, and inside ``serve`` when
    `interval` (seconds) is set.

    `overlap` is how far before the watermark each walk starts again;
    `lookback` where the first walk starts; work requests and assets (`walk`)
    are read in full every `walk_every` polls; a change within `tolerance`
    seconds of a stored webhook of the same type is taken as announced.
    """

    interval: PositiveFloat | None = None
    overlap: float = Field(default=60.0, ge=0)
    lookback: float = Field(default=3600.0, ge=0, le=10 * 365 * 86400)
    page_size: int = Field(default=200, ge=1, le=200)
    walk: tuple[Literal["request", "asset"], ...] = ("request", "asset")
    walk_every: int = Field(default=10, ge=1)
    tolerance: PositiveFloat = 5.0


class ReconcileConfig(_Section):
    """The reconciler: ``mxbridge reconcile``, and inside ``serve`` every
    `interval` seconds when set, using at most `rate_share` of the rate limit.
    """

    interval: PositiveFloat | None = None
    hours: PositiveFloat = 24.0
    rate_share: float = Field(default=0.2, gt=0, le=1)


class EnrichConfig(_Section):
    """Enrichment: a fetch of a record serves other events for `window` seconds."""

    window: float = Field(default=2.0, ge=0)


class Config(_Section):
    """The whole configuration of one mxbridge service."""

    app: str | None = None
    server: ServerConfig = ServerConfig()
    store: StoreConfig = StoreConfig()
    worker: WorkerConfig = WorkerConfig()
    retry: RetryConfig = RetryConfig()
    logging: LoggingConfig = LoggingConfig()
    sources: dict[str, SourceConfig] = Field(default_factory=dict)
    maintainx: MaintainXConfig = MaintainXConfig()
    poll: PollConfig = PollConfig()
    reconcile: ReconcileConfig = ReconcileConfig()
    enrich: EnrichConfig = EnrichConfig()
    # Checked and built by mxbridge._rules (see docs/rules.md).
    rules: list[dict[str, Any]] = Field(default_factory=list)

    @field_validator("sources")
    @classmethod
    def _source_names(cls, sources: dict[str, SourceConfig]) -> dict[str, SourceConfig]:
        for name in sources:
            if not name or not all(c.isalnum() or c in "-_" for c in name):
                raise ValueError(
                    f"source name {name!r} may hold only letters, digits, - and _"
                )
        return sources


def _http_url(url: str | None) -> str | None:
    """Check that `url` is an absolute http(s) URL that parses."""
    if url is None:
        return None
    if not url.startswith(("https://", "http://")):
        raise ValueError("must be an absolute http(s) URL")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as exc:
        raise ValueError(f"is not a valid URL: {exc}") from None
    if not parsed.host:
        raise ValueError("must name a host")
    return url


def _is_text(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_config(
    path: str | Path | None = None, environ: Mapping[str, str] | None = None
) -> Config:
    """Read the configuration file (if any) and the environment into a `Config`."""
    env = os.environ if environ is None else environ
    file = _config_path(path, env)
    data = _read_toml(file) if file is not None else {}
    if file is not None:
        data = _store_beside(_app_beside(data, file), file)
    where = str(file) if file is not None else "configuration"
    data = _apply_environment(data, env, where)
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, where)) from None


def _config_path(path: str | Path | None, env: Mapping[str, str]) -> Path | None:
    if path is not None:
        return Path(path)
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV])
    default = Path("mxbridge.toml")
    return default if default.exists() else None


def _read_toml(file: Path) -> dict[str, Any]:
    try:
        with file.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such configuration file") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"{file}: cannot be read: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: not valid TOML: not UTF-8 text") from None


def _app_beside(data: dict[str, Any], file: Path) -> dict[str, Any]:
    # A relative file.py in `app` is the configuration's neighbour, wherever
    # mxbridge is started from.
    app = data.get("app")
    if not isinstance(app, str):
        return data
    target, sep, attribute = app.partition(":")
    if not target.endswith(".py"):
        return data
    path = file.parent / _home(Path(target), f"{file}: app")
    return {**data, "app": f"{path}{sep}{attribute}"}


def _store_beside(data: dict[str, Any], file: Path) -> dict[str, Any]:
    # A relative SQLite file is the configuration's neighbour too: every
    # command given this configuration finds the same store.
    store = data.get("store")
    if not isinstance(store, dict) or not isinstance(store.get("url"), str):
        return data
    url = _sqlite_path(store["url"], file, f"{file}: store.url")
    return {**data, "store": {**store, "url": url}}


def _sqlite_path(url: str, beside: Path | None, where: str) -> str:
    """`url` with its SQLite file's `~` expanded, and relative to `beside`'s folder.

    Any other URL, and an absolute file, is left as it is.
    """
    named = sqlite_file(url)
    if named is None:
        return url
    path = _home(named, where)
    if beside is not None:
        path = beside.parent.absolute() / path
    if path == named:
        return url
    moved = sa.engine.make_url(url).set(database=str(path))
    return moved.render_as_string(hide_password=False)


def _home(path: Path, where: str) -> Path:
    """`path` with a leading `~` or `~user` made that home directory."""
    try:
        return path.expanduser()
    except RuntimeError as exc:  # no such user, or no home to be found
        raise ConfigError(f"{where}: {path}: {exc}") from None


def _apply_environment(
    data: dict[str, Any], env: Mapping[str, str], where: str
) -> dict[str, Any]:
    data = dict(data)
    store = data.get("store", {})
    if env.get(STORE_URL_ENV) and isinstance(store, dict):
        # Relative to the current directory, as any path given in a shell.
        url = _sqlite_path(env[STORE_URL_ENV], None, STORE_URL_ENV)
        data["store"] = {**store, "url": url}
    found = data.get("sources", {})
    if not isinstance(found, dict) or not all(
        isinstance(v, dict) for v in found.values()
    ):
        # Not tables: leave it to validation, which names the key.
        return data
    sources = {name: dict(value) for name, value in found.items()}
    if env.get(SECRET_ENV) is not None:
        sources.setdefault(DEFAULT_SOURCE, {})
        sources[DEFAULT_SOURCE].setdefault("secrets_env", SECRET_ENV)
    for name, source in sources.items():
        variable = source.get("secrets_env")
        if not isinstance(variable, str):
            continue
        value = env.get(variable)
        if value is None:
            # Not an error here: commands that only read the store need no
            # secret. `serve` refuses to start with a source that has none.
            continue
        from_env = [part.strip() for part in value.split(",")]
        if not all(_is_text(part) for part in from_env):
            raise ConfigError(
                f"{where}: sources.{name}: environment variable {variable} is not "
                "valid UTF-8 text"
            )
        if not all(from_env):
            raise ConfigError(
                f"{where}: sources.{name}: environment variable {variable} holds an "
                "empty or whitespace-only secret (secrets are separated by commas: "
                "is there one too many?)"
            )
        source["secrets"] = [*source.get("secrets", []), *from_env]
    if sources:
        data["sources"] = sources
    return data


def describe_errors(
    exc: ValidationError, *, prefix: str = "", top: str = "(top level)"
) -> str:
    """Pydantic's errors as ``key: problem; key: problem``, keys dotted.

    `prefix` is put before every key (``settings.``); `top` names an error that
    has no key.
    """
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"])
        message = "unknown key" if error["type"] == "extra_forbidden" else error["msg"]
        problems.append(f"{prefix}{key}: {message}" if key else f"{top}: {message}")
    return "; ".join(problems)


def _describe(exc: ValidationError, where: str) -> str:
    return f"{where}: {describe_errors(exc)}"
