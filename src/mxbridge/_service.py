"""Assemble a running service from a `Config` and a `Bridge`: store, edge, worker."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import importlib.util
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from starlette.applications import Starlette

from mxbridge._bridge import Bridge
from mxbridge._config import Config, SourceConfig
from mxbridge._edge import create_app
from mxbridge._errors import ConfigError
from mxbridge._logging import get_logger
from mxbridge._metrics import Metrics
from mxbridge._rules import with_rules
from mxbridge._sources import SourcesRuntime, every
from mxbridge._store import SqlStore, Store
from mxbridge._subscriptions._sources import ManagedSources
from mxbridge._worker import Worker

__all__ = ["Service", "load_bridge", "make_store", "retention_cutoff", "with_store"]

T = TypeVar("T")

# How often `serve` removes old events when [store] keep_days is set.
RETENTION_INTERVAL = 3600.0

log = get_logger("mxbridge.service")


def make_store(config: Config) -> SqlStore:
    """The store the configuration names."""
    return SqlStore(
        config.store.url,
        synchronous=config.store.synchronous,
        lock_timeout=config.store.lock_timeout,
    )


def with_store(config: Config, action: Callable[[SqlStore], Awaitable[T]]) -> T:
    """Open the configured store, run `action` on it, and close it (commands)."""
    store = make_store(config)

    async def run() -> T:
        await store.open()
        try:
            return await action(store)
        finally:
            await store.close()

    return asyncio.run(run())


def retention_cutoff(days: float, now: float) -> float:
    """The receive time before which an event is `days` old; no earlier than 1970."""
    return max(0.0, now - days * 86400)


def load_bridge(spec: str | None) -> Bridge:
    """Load a `Bridge` from ``module:attribute`` or ``path/to/file.py:attribute``.

    With no spec, an empty bridge: events are stored, and no handler runs.
    """
    if not spec:
        return Bridge()
    target, _, attribute = spec.partition(":")
    attribute = attribute or "bridge"
    module = _import(target)
    if not hasattr(module, attribute):
        raise ConfigError(f"app {spec!r}: {target} has no {attribute!r}")
    found = getattr(module, attribute)
    if not isinstance(found, Bridge):
        kind = type(found).__name__
        raise ConfigError(f"app {spec!r}: {attribute!r} is a {kind}, not a Bridge")
    return found


def _import(target: str) -> Any:
    try:
        if target.endswith(".py"):
            path = Path(target).resolve()
            spec = importlib.util.spec_from_file_location(path.stem, path)
            if spec is None or spec.loader is None or not path.exists():
                raise ConfigError(f"app file {path} does not exist")
            module = importlib.util.module_from_spec(spec)
            sys.modules[path.stem] = module
            spec.loader.exec_module(module)
            return module
        if "" not in sys.path and "." not in sys.path:
            sys.path.insert(0, "")
        return importlib.import_module(target)
    except (ImportError, ValueError, TypeError) as exc:
        raise ConfigError(f"app {target!r} cannot be imported: {exc}") from exc
    except ConfigError:
        raise
    except Exception as exc:
        # The user's own code failed while loading: say where, in one line.
        raise ConfigError(
            f"app {target!r} failed while loading: {type(exc).__name__}: {exc}"
        ) from exc


def check_sources(config: Config) -> None:
    """Refuse to start with a source that has no secret.

    With ``[maintainx] public_url`` set, managed subscriptions bring their own
    secrets from the store, so no configured source is needed.
    """
    if not config.sources and config.maintainx.public_url is None:
        raise ConfigError(
            "no webhook source is configured: set MAINTAINX_WEBHOOK_SECRET, or add "
            "[sources.NAME] with secrets to the configuration, or set [maintainx] "
            "public_url to receive managed subscriptions"
        )
    for name, source in config.sources.items():
        if source.secrets:
            continue
        if source.secrets_env:
            raise ConfigError(
                f"sources.{name}: no secrets: environment variable "
                f"{source.secrets_env} is not set"
            )
        raise ConfigError(f"sources.{name}: no secrets (set secrets or secrets_env)")


class Service:
    """One mxbridge process: the edge and, unless turned off, the worker."""

    def __init__(
        self,
        config: Config,
        bridge: Bridge,
        *,
        store: Store | None = None,
        with_worker: bool | None = None,
    ) -> None:
        self.config = config
        # Each [[rules]] table becomes its own handler; a bad rule stops here.
        self.bridge = bridge = with_rules(bridge, config.rules)
        for handler, pattern in bridge.unknown_patterns():
            log.warning(
                "no known event has this name: a typo? The handler runs only if "
                "MaintainX sends a type of that name",
                handler=handler,
                pattern=pattern,
            )
        self.store: Store = store or make_store(config)
        self.metrics = Metrics()
        self.with_worker = config.worker.enabled if with_worker is None else with_worker
        self.sources = SourcesRuntime(config, bridge, self.store)
        self.worker = Worker(
            self.store,
            bridge,
            enricher=self.sources.enricher,
            retry=config.retry.policy(),
            concurrency=config.worker.concurrency,
            poll_interval=config.worker.poll_interval,
            handler_timeout=config.worker.handler_timeout,
            grace_seconds=config.worker.grace_seconds,
            metrics=self.metrics,
        )
        self.managed = ManagedSources(
            self.store, quiet_seconds=config.maintainx.silence_warning_hours * 3600
        )

    async def lookup_source(self, name: str) -> SourceConfig | None:
        """The source named `name`: configured, else a managed subscription's."""
        return self.config.sources.get(name) or await self.managed.lookup(name)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        """Open the store and start the worker; on the way out, stop both."""
        await self.store.open()
        self.managed.start()
        if self.with_worker:
            self.store.on_commit(self.worker.wake)
            self.worker.start()
        self.sources.start()
        retention = None
        if self.config.store.keep_days is not None:
            job = every(RETENTION_INTERVAL, self.prune_once, "retention")
            retention = asyncio.get_running_loop().create_task(job)
        try:
            yield
        finally:
            if retention is not None:
                retention.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await retention
            await self.sources.stop()
            if self.with_worker:
                await self.worker.stop()
            await self.managed.stop()
            await self.store.close()

    async def prune_once(self) -> int:
        """Remove the events past `[store] keep_days` whose handlers are done."""
        keep_days = self.config.store.keep_days
        assert keep_days is not None
        before = retention_cutoff(keep_days, time.time())
        return (await self.store.prune(before)).removed

    def app(self) -> Starlette:
        """The edge, with this service's life cycle."""
        return create_app(
            store=self.store,
            bridge=self.bridge,
            sources=self.lookup_source,
            max_body_bytes=self.config.server.max_body_bytes,
            read_timeout=self.config.server.read_timeout,
            commit_timeout=self.config.server.commit_timeout,
            metrics=self.metrics,
            lifespan=self.lifespan,
            on_received=self.managed.note,
        )

    def uvicorn_config(
        self, *, host: str | None = None, port: int | None = None
    ) -> uvicorn.Config:
        """Uvicorn's settings for this service."""
        return uvicorn.Config(
            self.app(),
            host=host or self.config.server.host,
            port=self.config.server.port if port is None else port,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=int(self.config.worker.grace_seconds) + 5,
            server_header=False,
        )

    async def run_worker(self) -> None:
        """Run only the worker until SIGINT or SIGTERM."""
        await self.store.open()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(
                sig, lambda: asyncio.ensure_future(self.worker.stop())
            )
        try:
            await self.worker.run()
        finally:
            await self.sources.stop()
            await self.store.close()
