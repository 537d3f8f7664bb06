"""The poller: work orders changed since a watermark, turned into events.

A walk reads ``GET /workorders`` with ``updatedAt[gte]`` and ``sort=updatedAt``,
``limit`` up to 200, following ``nextCursor``. The watermark is the last
``(updatedAt, id)`` taken; the next walk starts `overlap` seconds before it, so
records sharing a timestamp across a page boundary, or committed late with an
older ``updatedAt``, are read again. Reading again is harmless: each record is
compared with its last known state, and an event's id is derived from the
record's id, ``updatedAt`` and status, so the store keeps one copy.

Each page is taken in order: its records kept for their events, its events
appended (one group commit), the known states saved, and only then the
watermark. A crash anywhere in between repeats a page and loses nothing.

A change a webhook already announced (a stored event of the matching type
about the same record that occurred within `tolerance` seconds of it) is not
emitted again. Work requests and assets cannot be filtered by date: `walk`
reads them all and compares each with its last known state; the first walk of
a kind only records a baseline.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from mxbridge._bridge import Bridge
from mxbridge._events import Event
from mxbridge._maintainx import MAX_PAGE_SIZE, MaintainXClient
from mxbridge._sources._records import (
    KINDS,
    READ_SOURCES,
    Change,
    Kind,
    derive_change,
    iso,
    known_state,
    timestamp,
)
from mxbridge._store import Store
from mxbridge._store._versions import Announcement, Watermark

__all__ = ["PageReport", "Poller", "enrich_expansions"]

PageHook = Callable[["PageReport"], None]


@dataclass(frozen=True, slots=True)
class PageReport:
    """What one page gave: records read, events stored, and where it ended."""

    records: int
    emitted: int
    last_updated_at: str | None


def enrich_expansions(bridge: Bridge) -> tuple[str, ...]:
    """The union of what the bridge's enriched handlers ask to expand."""
    return tuple(sorted({name for h in bridge if h.enrich for name in h.expand}))


class Poller:
    """Reads changes from the API into the store, as events of `source`.

    `dispatch` False stores events without deliveries (a quiet backfill).
    `start` is where a walk with no watermark begins (default: `lookback`
    seconds ago). `on_page` is called after each page's watermark is saved.
    """

    def __init__(
        self,
        store: Store,
        client: MaintainXClient,
        bridge: Bridge,
        *,
        source: str = "poll",
        name: str = "workorders",
        overlap: float = 60.0,
        lookback: float = 3600.0,
        start: datetime | None = None,
        page_size: int = MAX_PAGE_SIZE,
        dispatch: bool = True,
        tolerance: float = 5.0,
        on_page: PageHook | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.client = client
        self.bridge = bridge
        self.source = source
        self.name = name
        self.overlap = overlap
        self.lookback = lookback
        self.start = start
        self.page_size = max(1, min(page_size, MAX_PAGE_SIZE))
        self.dispatch = dispatch
        self.tolerance = tolerance
        self.on_page = on_page
        self._clock = clock

    # -- work orders --------------------------------------------------------

    async def run_once(self) -> int:
        """Walk every work order changed since the watermark; events stored."""
        mark = await self.store.get_watermark(self.name)
        since = self.since(mark)
        query: dict[str, Any] = {
            "updatedAt[gte]": iso(since),
            "sort": "updatedAt",
            "limit": self.page_size,
        }
        expand = enrich_expansions(self.bridge)
        if expand:
            query["expand"] = list(expand)
        emitted = 0
        while True:
            page = await self.client.request("GET", "/workorders", params=query)
            records = list(page.get("workOrders") or ())
            emitted += await self.take_page(
                KINDS["workorder"], records, expand, created_since=since
            )
            mark = await self._advance(mark, records)
            if self.on_page is not None:
                last = mark.updated_at if mark else None
                self.on_page(PageReport(len(records), emitted, last))
            if not page.get("nextCursor"):
                return emitted
            query["cursor"] = page["nextCursor"]

    def since(self, mark: Watermark | None) -> float:
        """Where a walk starts: the watermark less the overlap, else the start."""
        if mark is not None:
            return (timestamp(mark.updated_at) or 0.0) - self.overlap
        if self.start is not None:
            return self.start.timestamp()
        return self._clock() - self.lookback

    async def _advance(
        self, mark: Watermark | None, records: Sequence[Mapping[str, Any]]
    ) -> Watermark | None:
        best = mark
        for record in records:
            moment = timestamp(record.get("updatedAt"))
            if moment is None:
                continue
            here = (moment, int(record["id"]))
            if best is None or here > _position(best):
                best = Watermark(self.name, str(record["updatedAt"]), here[1])
        if best is not None and best != mark:
            await self.store.save_watermark(best)
        return best

    async def take_page(
        self,
        kind: Kind,
        records: Sequence[Mapping[str, Any]],
        expand: Sequence[str],
        *,
        created_since: float | None = None,
    ) -> int:
        """Store the events of one page's changes, then the records' states."""
        ids = [str(r["id"]) for r in records]
        known = await self.store.known_records(kind.name, ids)
        changes = [
            derive_change(kind, r, known.get(str(r["id"])), created_since)
            for r in records
        ]
        found = [c for c in changes if c is not None]
        told = await self.store.announced(
            [self._question(c) for c in found], READ_SOURCES
        )
        emitted = await self._append(
            [c for c, said in zip(found, told, strict=True) if not said], expand
        )
        states = [known_state(kind.name, r) for r in records]
        await self.store.save_known([s for s in states if s is not None])
        return emitted

    def _question(self, change: Change) -> Announcement:
        moment = change.announce_at
        return Announcement(
            change.kind.name,
            str(change.record["id"]),
            change.announced_by,
            moment - self.tolerance,
            moment + self.tolerance,
        )

    async def _append(self, changes: Sequence[Change], expand: Sequence[str]) -> int:
        now = datetime.fromtimestamp(self._clock(), UTC)
        events = [c.event(self.source, now) for c in changes]
        records = {e.id: c.record for c, e in zip(changes, events, strict=True)}
        await self.store.save_event_records(expand, records)
        results = await asyncio.gather(
            *(self.store.append(e, self._handlers(e)) for e in events)
        )
        return sum(not r.duplicate for r in results)

    def _handlers(self, event: Event) -> list[str]:
        return self.bridge.route(event) if self.dispatch else []

    # -- work requests and assets -------------------------------------------

    async def walk(self, kind_name: str) -> int:
        """Read every record of a kind and emit what changed; events stored.

        The first walk of a kind records what it finds and emits nothing.
        """
        kind = KINDS[kind_name]
        marker = f"walk:{kind.name}"
        baseline = await self.store.get_watermark(marker) is None
        params: dict[str, Any] = {"limit": self.page_size}
        if kind.name == "asset":
            params["expand"] = ["status"]
        pages = self.client.paginate(
            kind.path, kind.plural, params, limit=self.page_size
        )
        records = [r async for r in pages]
        emitted = 0
        if baseline:
            states = [known_state(kind.name, r) for r in records]
            await self.store.save_known([s for s in states if s is not None])
        else:
            emitted = await self.take_page(kind, records, ())
        stamp = iso(self._clock())
        await self.store.save_watermark(Watermark(marker, stamp, 0))
        return emitted


def _position(mark: Watermark) -> tuple[float, int]:
    return (timestamp(mark.updated_at) or 0.0, mark.record_id)
