"""Enrichment and the ordering guard: the worker's `Enricher`.

Before a handler that asked for it runs, the record its event is about is
fetched from the MaintainX API, once per event, with the union of the
expansions every enriched handler of that event asked for. The record is kept
with the event in the store, so every handler of the event (in any worker
process, on any attempt) sees the same one. A fetch already made for the same
record within a short window, after the event occurred, is reused.

A record that no longer exists is not an error: the handler gets an empty,
falsy `FetchedRecord` whose ``missing`` is True (see `record_missing`). Any
other API failure is a `RetryableError`, retried on the worker's schedule.

The guard compares the record's version, ``(updatedAt, occurredAt)``, with the
newest one the handler has started on for the same record: an older event is
skipped for ``skip_stale`` handlers, and a record equal to the last one handled
for another event is marked ``unchanged``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mxbridge._bridge import Bridge, Handler
from mxbridge._errors import ApiError, NotFoundError, RetryableError
from mxbridge._events import Event
from mxbridge._maintainx import MaintainXClient
from mxbridge._sources._records import KINDS, FetchedRecord, Kind, known_state
from mxbridge._store import Store

__all__ = ["RecordEnricher"]

Fetched = Mapping[str, Any] | None
_PRUNE_AT = 1024


@dataclass(slots=True)
class _Fetch:
    started: float
    expand: frozenset[str]
    future: asyncio.Future[Fetched]


class RecordEnricher:
    """Fetches, keeps and shares the record of each event; guards the order.

    `window` is how long (seconds) a fetch of a record may serve other events
    about it that occurred before the fetch started.
    """

    def __init__(
        self,
        store: Store,
        client: MaintainXClient,
        bridge: Bridge,
        *,
        window: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.client = client
        self.bridge = bridge
        self.window = window
        self.fetches = 0
        self._clock = clock
        self._recent: dict[tuple[str, str], _Fetch] = {}

    async def prepare(self, event: Event, handler: Handler) -> Event | None:
        """The event with its record for `handler`, or None when it is stale."""
        kind = KINDS.get(event.resource_kind or "")
        if not handler.enrich or kind is None or event.resource_id is None:
            return event
        record = await self.record_for(event, kind)
        unchanged = False
        moment = event.occurred_at.timestamp()
        state = known_state(kind.name, record or {}, moment, with_digest=True)
        if state is not None:
            verdict = await self.store.guard_version(handler.name, state, event.id)
            if verdict.stale and handler.skip_stale:
                return None
            unchanged = verdict.unchanged
        return dataclasses.replace(
            event, record=FetchedRecord(record, unchanged=unchanged)
        )

    async def record_for(self, event: Event, kind: Kind) -> Fetched:
        """The record kept with `event`, fetched first when none covers it."""
        expand = self._expand_for(event, kind)
        stored = await self.store.get_event_record(event.id)
        if stored is not None and set(expand) <= set(stored.expand):
            return stored.record
        if stored is not None:
            expand = tuple(sorted({*expand, *stored.expand}))
        assert event.resource_id is not None
        record = await self._coalesced(kind, event.resource_id, expand, event)
        await self.store.save_event_records(expand, {event.id: record})
        if record is not None:
            state = known_state(kind.name, record, event.occurred_at.timestamp())
            if state is not None:
                await self.store.save_known([state])
        return record

    def _expand_for(self, event: Event, kind: Kind) -> tuple[str, ...]:
        if not kind.expandable:
            return ()
        wanted = {
            name
            for h in self.bridge
            if h.enrich and h.wants(event)
            for name in h.expand
        }
        return tuple(sorted(wanted))

    async def _coalesced(
        self, kind: Kind, record_id: str, expand: Sequence[str], event: Event
    ) -> Fetched:
        key = (kind.name, record_id)
        now = self._clock()
        recent = self._recent.get(key)
        # Reuse only a fetch that started after the event occurred: it cannot
        # be older than the change the event announces.
        if (
            recent is not None
            and recent.expand >= set(expand)
            and recent.started >= event.occurred_at.timestamp()
            and now - recent.started <= self.window
        ):
            return await asyncio.shield(recent.future)
        self._prune(now)
        future = asyncio.ensure_future(self._fetch(kind, record_id, expand))
        self._recent[key] = _Fetch(now, frozenset(expand), future)
        try:
            return await asyncio.shield(future)
        except RetryableError:
            self._recent.pop(key, None)
            raise

    def _prune(self, now: float) -> None:
        if len(self._recent) < _PRUNE_AT:
            return
        for key, fetch in list(self._recent.items()):
            if now - fetch.started > self.window and fetch.future.done():
                del self._recent[key]

    async def _fetch(
        self, kind: Kind, record_id: str, expand: Sequence[str]
    ) -> Fetched:
        self.fetches += 1
        params = {"expand": list(expand)} if expand else None
        try:
            answer = await self.client.request(
                "GET", f"{kind.path}/{record_id}", params=params
            )
        except NotFoundError:
            return None
        except ApiError as exc:
            raise RetryableError(
                f"could not fetch {kind.name} {record_id}: {exc}"
            ) from exc
        return dict(answer[kind.single])
