"""What the sources add to a running service: the API client, the enricher, and
the poller and reconciler on their schedules.

The reconciler gets a client of its own whose limiter admits at most
``rate_share`` of the requests per minute and also waits on the main limiter,
so it never takes the room enrichment and polling need.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable

from mxbridge._bridge import Bridge
from mxbridge._config import Config
from mxbridge._errors import ApiError, ConfigError, StoreError
from mxbridge._logging import get_logger
from mxbridge._maintainx import MaintainXClient, RateLimiter
from mxbridge._sources._enrich import RecordEnricher
from mxbridge._sources._poll import Poller
from mxbridge._sources._reconcile import Reconciler
from mxbridge._store import Store

__all__ = ["ShareLimiter", "SourcesRuntime", "make_client", "make_poller"]

log = get_logger("mxbridge.sources")


class ShareLimiter(RateLimiter):
    """A limiter for a share of the rate that also waits on the whole one."""

    def __init__(self, limit: int, parent: RateLimiter, window: float = 60.0) -> None:
        super().__init__(limit, window)
        self.parent = parent

    async def acquire(self) -> None:
        """Wait for room in this share, then in the whole limit."""
        await super().acquire()
        await self.parent.acquire()

    def pause_until(self, monotonic_deadline: float) -> None:
        """Hold this share and everyone on the whole limit."""
        super().pause_until(monotonic_deadline)
        self.parent.pause_until(monotonic_deadline)


def make_client(
    config: Config, *, limiter: RateLimiter | None = None
) -> MaintainXClient:
    """A MaintainX client as ``[maintainx]`` describes it; the key from the env."""
    mx = config.maintainx
    key = os.environ.get(mx.api_key_env, "").strip()
    if not key:
        raise ConfigError(
            f"no MaintainX API key: set the environment variable {mx.api_key_env}"
        )
    return MaintainXClient(
        key,
        base_url=mx.base_url,
        organization_id=mx.organization_id,
        requests_per_minute=mx.requests_per_minute,
        limiter=limiter,
    )


def make_poller(
    config: Config, store: Store, client: MaintainXClient, bridge: Bridge
) -> Poller:
    """The poller `[poll]` describes."""
    poll = config.poll
    return Poller(
        store,
        client,
        bridge,
        overlap=poll.overlap,
        lookback=poll.lookback,
        page_size=poll.page_size,
        tolerance=poll.tolerance,
    )


class SourcesRuntime:
    """The client, enricher and scheduled sources of one service.

    Nothing is built when no handler asks for enrichment and neither
    ``[poll] interval`` nor ``[reconcile] interval`` is set.
    """

    def __init__(self, config: Config, bridge: Bridge, store: Store) -> None:
        self.config = config
        self.bridge = bridge
        self.store = store
        wanted = any(h.enrich for h in bridge)
        scheduled = config.poll.interval or config.reconcile.interval
        self.client: MaintainXClient | None = None
        has_key = bool(os.environ.get(config.maintainx.api_key_env, "").strip())
        if scheduled or (wanted and has_key):
            self.client = make_client(config)
        elif wanted:
            # Not fatal: the handlers still run, with event.record None.
            log.warning(
                "handlers ask for records but no MaintainX API key is set",
                variable=config.maintainx.api_key_env,
            )
        self.enricher: RecordEnricher | None = None
        if wanted and self.client is not None:
            self.enricher = RecordEnricher(
                store, self.client, bridge, window=config.enrich.window
            )
        self._clients: list[MaintainXClient] = []
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        """Start the poller and reconciler loops that are configured."""
        if self.client is None:
            return
        poll, reconcile = self.config.poll, self.config.reconcile
        if poll.interval:
            self._spawn(self._poll_job(), poll.interval, "poll")
        if reconcile.interval:
            self._spawn(self._reconcile_job(), reconcile.interval, "reconcile")

    async def stop(self) -> None:
        """Stop the loops and close the clients."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._tasks.clear()
        for client in [*self._clients, self.client]:
            if client is not None:
                await client.aclose()

    def _spawn(
        self, job: Callable[[], Awaitable[int]], interval: float, name: str
    ) -> None:
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(every(interval, job, name)))

    def _poll_job(self) -> Callable[[], Awaitable[int]]:
        assert self.client is not None
        poller = make_poller(self.config, self.store, self.client, self.bridge)
        return poll_rounds(poller, self.config)

    def _reconcile_job(self) -> Callable[[], Awaitable[int]]:
        assert self.client is not None
        client = self.client
        share = self.config.reconcile
        if client.limiter is not None:
            limit = max(1, int(client.limiter.limit * share.rate_share))
            client = make_client(
                self.config,
                limiter=ShareLimiter(limit, client.limiter, client.limiter.window),
            )
            self._clients.append(client)
        reconciler = Reconciler(self.store, client, self.bridge, hours=share.hours)
        return reconciler.run_once


def poll_rounds(
    poller: Poller, config: Config, *, walk: bool = True
) -> Callable[[], Awaitable[int]]:
    """One poll round per call; requests and assets walked every `walk_every`."""
    rounds = 0

    async def job() -> int:
        nonlocal rounds
        emitted = await poller.run_once()
        if walk and rounds % config.poll.walk_every == 0:
            for kind in config.poll.walk:
                emitted += await poller.walk(kind)
        rounds += 1
        return emitted

    return job


async def every(interval: float, job: Callable[[], Awaitable[int]], name: str) -> None:
    """Run `job` every `interval` seconds until cancelled; a failure is logged."""
    while True:
        try:
            emitted = await job()
        except (ApiError, StoreError) as exc:
            log.warning(f"{name} failed; trying again later", error=str(exc))
        except Exception:
            # A bug of ours must not stop polling for good, silently.
            log.exception(f"{name} failed unexpectedly; trying again later")
        else:
            log.info(f"{name} done", events=emitted)
        await asyncio.sleep(interval)
