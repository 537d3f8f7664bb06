"""The edge's view of managed subscriptions: their secrets, and when each was heard.

`ManagedSources.lookup` answers the edge from memory. The whole (small) table is
read again when the copy is older than `ttl`, or when a name it does not know
is asked for, so a subscription created a moment ago by another process is
usable at its first delivery. A name that is still unknown after a fresh read
is remembered as unknown for `miss_ttl`, so a stream of made-up paths costs at
most one read per name per `miss_ttl`.

`note` records a delivery in memory only; `run` writes the latest times to the
store every `flush_seconds` and logs, every `check_seconds`, the subscriptions
that have gone quiet while others have not (MaintainX deletes endpoints that
keep failing and tells only the person who created them).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable

from mxbridge._config import SourceConfig
from mxbridge._errors import StoreError
from mxbridge._logging import get_logger
from mxbridge._store import DELETED, Store, SubscriptionRecord
from mxbridge._subscriptions._plan import silent_subscriptions

__all__ = ["ManagedSources"]

log = get_logger("mxbridge.subscriptions")


class ManagedSources:
    """Secrets of managed subscriptions by source name, cached for the edge."""

    def __init__(
        self,
        store: Store,
        *,
        quiet_seconds: float = 24 * 3600.0,
        ttl: float = 30.0,
        miss_ttl: float = 1.0,
        flush_seconds: float = 10.0,
        check_seconds: float = 3600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.quiet_seconds = quiet_seconds
        self.ttl = ttl
        self.miss_ttl = miss_ttl
        self.flush_seconds = flush_seconds
        self.check_seconds = check_seconds
        self._clock = clock
        self._sources: dict[str, SourceConfig] = {}
        self._loaded_at: float | None = None
        self._last_miss: float | None = None
        self._loading: asyncio.Task[None] | None = None
        self._seen: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None

    # -- the edge's hot path ---------------------------------------------------

    async def lookup(self, name: str) -> SourceConfig | None:
        """The source of the managed subscription(s) at path segment `name`."""
        now = self._clock()
        stale = self._loaded_at is None or now - self._loaded_at > self.ttl
        if stale or (name not in self._sources and self._may_miss(now)):
            try:
                await self._reload()
            except StoreError as exc:
                log.warning("could not read subscriptions", error=str(exc))
                # A source we cannot look up is not unknown: 503, so that
                # MaintainX sends it again, rather than 404.
                if name not in self._sources:
                    raise
        found = self._sources.get(name)
        if found is None:
            self._last_miss = now
        return found

    def note(self, source: str) -> None:
        """Remember that `source` just had a verified, stored delivery."""
        if source in self._sources:
            self._seen[source] = self._clock()

    def _may_miss(self, now: float) -> bool:
        # One re-read per `miss_ttl` for all unknown names together: made-up
        # names in a flood of requests cannot each cost a read of the store.
        return self._last_miss is None or now - self._last_miss > self.miss_ttl

    async def _reload(self) -> None:
        # Deliveries arriving together share one read.
        if self._loading is None:
            self._loading = asyncio.ensure_future(self._read())
        task = self._loading
        try:
            await asyncio.shield(task)
        finally:
            if self._loading is task and task.done():
                self._loading = None

    async def _read(self) -> None:
        records = await self.store.list_subscriptions()
        self._sources = _by_source(records)
        self._loaded_at = self._clock()
        self._last_miss = None

    # -- in the background -----------------------------------------------------

    def start(self) -> None:
        """Start writing delivery times and checking for quiet subscriptions."""
        self._task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Stop the background task and write the last delivery times."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()

    async def run(self) -> None:
        """Flush delivery times and check for quiet subscriptions, forever."""
        next_check = self._clock() + self.check_seconds
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()
            if self._clock() >= next_check:
                next_check = self._clock() + self.check_seconds
                await self.warn_quiet()

    async def flush(self) -> None:
        """Write the delivery times noted since the last flush, in one transaction."""
        seen, self._seen = self._seen, {}
        try:
            await self.store.note_subscription_deliveries(seen)
        except StoreError as exc:
            # Kept for the next flush; a newer time noted meanwhile wins.
            self._seen = {**seen, **self._seen}
            log.warning("could not record subscription deliveries", error=str(exc))

    async def warn_quiet(self) -> list[SubscriptionRecord]:
        """Log one warning per subscription that has gone quiet; return them."""
        try:
            records = await self.store.list_subscriptions()
        except StoreError as exc:
            log.warning("could not check subscriptions", error=str(exc))
            return []
        quiet = silent_subscriptions(records, self._clock(), self.quiet_seconds)
        for record in quiet:
            log.warning(
                "subscription has had no delivery while others have: MaintainX may "
                "have deleted it (see `mxbridge subscriptions list`)",
                subscription_id=record.id,
                event_type=record.event_type,
                source=record.source,
            )
        return quiet


def _by_source(records: list[SubscriptionRecord]) -> dict[str, SourceConfig]:
    # Subscriptions sharing a URL (imported ones may) share a source: any of
    # their secrets proves a delivery.
    grouped: dict[str, list[SubscriptionRecord]] = {}
    for record in records:
        # MaintainX no longer sends for a subscription it deleted; a delivery
        # claiming to be one is refused.
        if record.secret and record.status != DELETED:
            grouped.setdefault(record.source, []).append(record)
    return {
        source: SourceConfig(
            secrets=list(dict.fromkeys(r.secret for r in group)),
            public_url=group[0].url if len({r.url for r in group}) == 1 else None,
        )
        for source, group in grouped.items()
    }
