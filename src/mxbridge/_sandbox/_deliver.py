"""Send deliveries to subscribed URLs in the background, with fault switches.

Deliveries leave one at a time, in the order the changes happened, from a task
of their own: never inside the request that caused them. Each is signed at send
time with both MaintainX headers and given 10 seconds, as MaintainX does; there
are no retries, as MaintainX documents none.

Fault switches act on the next deliveries: ``duplicate`` sends one twice,
``delay`` holds one back while later ones go ahead, ``reorder`` swaps one with
the one after it, ``drop`` loses one without a trace for the receiver.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from mxbridge._signing import sign_delivery

__all__ = ["Delivery", "Dispatcher", "Faults", "encode_body"]

TIMEOUT = 10.0
# How long a delivery held back for a swap waits for a partner before it goes.
REORDER_WAIT = 2.0


def encode_body(payload: dict[str, Any]) -> bytes:
    """Serialise a delivery body the way MaintainX does: compact JSON."""
    return json.dumps(payload, separators=(",", ":")).encode("utf-8")


@dataclass
class Delivery:
    """One body for one subscription."""

    subscription_id: int
    url: str
    secret: str
    event_type: str
    body: bytes


@dataclass
class Faults:
    """How many of the next deliveries each fault applies to."""

    duplicate: int = 0
    delay: int = 0
    delay_seconds: float = 1.0
    reorder: int = 0
    drop: int = 0

    def update(self, settings: dict[str, Any]) -> None:
        """Set the switches named in `settings`; others keep their value."""
        for name in ("duplicate", "delay", "reorder", "drop"):
            if name in settings:
                setattr(self, name, max(0, int(settings[name])))
        if "delay_seconds" in settings:
            self.delay_seconds = max(0.0, float(settings["delay_seconds"]))

    def as_dict(self) -> dict[str, Any]:
        """Return the switches as JSON-ready data."""
        return asdict(self)


@dataclass
class Dispatcher:
    """The queue of deliveries and the task that sends them."""

    clock: Callable[[], float] = time.time
    faults: Faults = field(default_factory=Faults)
    log: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue: asyncio.Queue[Delivery] = asyncio.Queue()
        self._held: Delivery | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._http: httpx.AsyncClient | None = None
        self._pending = 0

    async def start(self) -> None:
        """Start the sending task (call from the server's event loop)."""
        self._http = httpx.AsyncClient(timeout=TIMEOUT)
        self._worker = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop sending; deliveries not yet sent are abandoned."""
        for task in [*self._tasks, self._worker]:
            if task is not None:
                task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._worker is not None:
            await asyncio.gather(self._worker, return_exceptions=True)
        if self._http is not None:
            await self._http.aclose()

    def enqueue(self, delivery: Delivery) -> None:
        """Queue a delivery; returns at once."""
        self._pending += 1
        self._queue.put_nowait(delivery)

    async def idle(self) -> None:
        """Return once nothing is queued, held or in flight (wrap in a timeout)."""
        while True:
            if not (self._pending or self._held or self._tasks):
                return
            await asyncio.sleep(0.02)

    def reset(self) -> None:
        """Forget the log and the fault switches."""
        self.log.clear()
        self.faults = Faults()

    async def _run(self) -> None:
        while True:
            delivery = await self._next()
            try:
                await self._route(delivery)
            finally:
                self._pending -= 1

    async def _next(self) -> Delivery:
        if self._held is None:
            return await self._queue.get()
        try:
            return await asyncio.wait_for(self._queue.get(), REORDER_WAIT)
        except TimeoutError:
            held, self._held = self._held, None
            await self._send(held)
            return await self._queue.get()

    async def _route(self, delivery: Delivery) -> None:
        faults = self.faults
        if faults.drop:
            faults.drop -= 1
            self._record(delivery, "dropped", None)
        elif faults.reorder and self._held is None:
            faults.reorder -= 1
            self._held = delivery
        elif faults.delay:
            faults.delay -= 1
            self._spawn(self._send_later(delivery, faults.delay_seconds))
        else:
            copies = 2 if faults.duplicate else 1
            faults.duplicate = max(0, faults.duplicate - 1)
            for _ in range(copies):
                await self._send(delivery)
            await self._release_held()

    async def _release_held(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            await self._send(held)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send_later(self, delivery: Delivery, seconds: float) -> None:
        await asyncio.sleep(seconds)
        await self._send(delivery)

    async def _send(self, delivery: Delivery) -> None:
        assert self._http is not None
        headers = sign_delivery(
            delivery.secret, int(self.clock()), delivery.body, delivery.url
        )
        headers["content-type"] = "application/json"
        try:
            response = await self._http.post(
                delivery.url, content=delivery.body, headers=headers
            )
        except httpx.HTTPError as exc:
            self._record(delivery, "failed", None, type(exc).__name__)
            return
        self._record(delivery, "sent", response.status_code)

    def _record(
        self, delivery: Delivery, outcome: str, status: int | None, error: str = ""
    ) -> None:
        self.log.append(
            {
                "subscriptionId": delivery.subscription_id,
                "url": delivery.url,
                "eventType": delivery.event_type,
                "outcome": outcome,
                "responseStatus": status,
                "error": error or None,
                "body": json.loads(delivery.body),
            }
        )
