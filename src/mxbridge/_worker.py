"""The worker: claim due deliveries, run their handlers, record what happened.

Each claim holds a lease a little longer than the handler's timeout. A worker
that dies mid-attempt leaves its lease to run out, and any worker then claims
the delivery again. Failures are retried on the `RetryPolicy`'s schedule, then
the delivery goes ``dead``: visible in ``mxbridge dead list``, replayable.

Stopping lets running handlers finish for up to a grace period; those still
running then are cancelled and their deliveries given back, due at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import time
import traceback
import uuid
from asyncio import FIRST_COMPLETED
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any, Protocol

from mxbridge._bridge import Bridge, Handler
from mxbridge._errors import PermanentError, RetryableError, StoreError
from mxbridge._events import INTERNAL_SOURCE, Event, dead_delivery_event
from mxbridge._logging import get_logger
from mxbridge._metrics import Metrics
from mxbridge._retry import RetryPolicy
from mxbridge._store import Claim, Outcome, Store

__all__ = ["Enricher", "Worker"]

log = get_logger("mxbridge.worker")

# Extra lease beyond the handler's timeout, for recording the outcome.
_LEASE_MARGIN = 30.0
_MAX_ERROR_CHARS = 4000
_COALESCE_SECONDS = 0.005
# How long a sync handler may wait for a thread: well inside the lease margin.
_THREAD_WAIT = _LEASE_MARGIN / 2


class _NoThread(Exception):
    """A sync handler could not start: no thread was free."""


class _Escaped(Exception):
    """An async handler raised what ends a process or cancels a task.

    Out of a task, SystemExit and KeyboardInterrupt stop the event loop, and
    with it the service; one handler must not. Its attempt fails instead.
    """


class Enricher(Protocol):
    """Prepares an event for one handler before it runs (``mxbridge._sources``)."""

    async def prepare(self, event: Event, handler: Handler) -> Event | None:
        """The event as `handler` should see it, or None to skip it (stale)."""
        ...


class Worker:
    """Runs the handlers of a `Bridge` for the deliveries of a `Store`."""

    def __init__(
        self,
        store: Store,
        bridge: Bridge,
        *,
        retry: RetryPolicy | None = None,
        concurrency: int = 32,
        poll_interval: float = 1.0,
        handler_timeout: float = 30.0,
        grace_seconds: float = 20.0,
        metrics: Metrics | None = None,
        clock: Callable[[], float] = time.time,
        enricher: Enricher | None = None,
    ) -> None:
        self.store = store
        self.enricher = enricher
        self.bridge = bridge
        self.retry = retry or RetryPolicy()
        self.concurrency = concurrency
        self.poll_interval = poll_interval
        self.handler_timeout = handler_timeout
        self.grace_seconds = grace_seconds
        self.metrics = metrics or Metrics()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._clock = clock
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        self._running: dict[asyncio.Task[None], Claim] = {}
        # Sync handlers' threads: room for every delivery running at once, and
        # as many again left running past their timeout.
        self._threads = ThreadPoolExecutor(
            max_workers=2 * concurrency, thread_name_prefix="mxbridge-handler"
        )
        self._loop_task: asyncio.Task[None] | None = None

    # -- life cycle ---------------------------------------------------------

    def wake(self) -> None:
        """Look for due deliveries now instead of at the next poll."""
        self._wake.set()

    def start(self) -> None:
        """Run the claim loop in the background of the current event loop."""
        self._loop_task = asyncio.get_running_loop().create_task(self.run())

    async def stop(self) -> None:
        """Stop claiming; let running handlers finish within the grace period."""
        self._stopping.set()
        self._wake.set()
        if self._loop_task is not None:
            await self._loop_task
            self._loop_task = None

    async def run(self) -> None:
        """Claim and run deliveries until `stop` is called."""
        log.info("worker started", worker=self.owner, concurrency=self.concurrency)
        while not self._stopping.is_set():
            free = self.concurrency - len(self._running)
            claimed = await self._claim_some()
            # Fewer than asked for: nothing more is due now. (None: the claim
            # failed, and the pause after it is over.)
            if claimed is not None and claimed < free:
                await self._idle()
        await self._drain()
        log.info("worker stopped", worker=self.owner)

    async def run_until_idle(self, limit: float = 30.0) -> None:
        """Run due deliveries until none is due or running (for tools and tests)."""
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            claimed = await self._claim_some()
            if claimed == 0 and not self._running:
                return
            if self._running:
                await asyncio.wait(
                    list(self._running), return_when=asyncio.FIRST_COMPLETED
                )
        raise TimeoutError(f"deliveries still due after {limit} s")

    async def _claim_some(self) -> int | None:
        """Claim what is due, as much as there is room for; how many.

        None when the claim failed: it is logged, and the worker has paused
        for `poll_interval` (or until a stop).
        """
        free = self.concurrency - len(self._running)
        if free <= 0:
            # Full: wait for a handler to finish, or for a stop, whose grace
            # period starts now, not when some handler happens to finish.
            stop = asyncio.ensure_future(self._stopping.wait())
            await asyncio.wait([*self._running, stop], return_when=FIRST_COMPLETED)
            stop.cancel()
            return 1
        try:
            claims = await self.store.claim(self.owner, free, self._lease_seconds())
        except Exception as exc:
            # Whatever went wrong, the loop goes on: the edge keeps acknowledging,
            # and a claim loop that ended would leave every delivery unhandled.
            known = isinstance(exc, StoreError)
            error = str(exc) if known else _describe(exc, with_trace=True)
            log.error("claim failed", error=error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), self.poll_interval)
            return None
        for claim in claims:
            task = asyncio.get_running_loop().create_task(self._execute(claim))
            self._running[task] = claim
            task.add_done_callback(self._running.pop)
        return len(claims)

    async def _idle(self) -> None:
        # Woken by a commit of new deliveries, or every poll_interval for
        # retries falling due and deliveries other processes stored.
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll_interval)
        if self._wake.is_set() and not self._stopping.is_set():
            # A moment more gathers the deliveries committed right behind into
            # the same claim: one transaction instead of several.
            await asyncio.sleep(_COALESCE_SECONDS)

    async def _drain(self) -> None:
        if not self._running:
            return
        _, pending = await asyncio.wait(list(self._running), timeout=self.grace_seconds)
        if not pending:
            return
        claims = [self._running[task] for task in pending]
        for task in pending:
            task.cancel()
        await asyncio.wait(pending)
        await self.store.release(claims, "interrupted: the worker stopped")
        log.warning("handlers interrupted at stop", count=len(claims))

    def _lease_seconds(self) -> float:
        longest = max(
            [self.handler_timeout, *(h.timeout or 0 for h in self.bridge)], default=0
        )
        return longest + _LEASE_MARGIN

    # -- one attempt --------------------------------------------------------

    async def _execute(self, claim: Claim) -> None:
        started = self._clock()
        handler = self.bridge.get(claim.handler)
        outcome = await self._attempt(handler, claim, started)
        try:
            kept = await self.store.complete(claim, outcome)
        except StoreError as exc:
            # The lease will run out and the delivery will be tried again.
            log.error(
                "could not record outcome", delivery=claim.delivery_id, error=str(exc)
            )
            return
        # A delivery that succeeded without running (a false condition, a
        # stale record) is counted as skipped, apart from the handler's runs.
        counted = "skipped" if outcome.note else outcome.status
        self.metrics.attempts.labels(claim.handler, counted).inc()
        fields: dict[str, Any] = {
            "event_id": claim.event.id,
            "names": list(claim.event.names),
            "handler": claim.handler,
            "delivery": claim.delivery_id,
            "attempt": claim.attempt,
            "outcome": counted,
            "ms": round((outcome.finished_at - started) * 1000, 2),
        }
        if outcome.error:
            fields["error"] = outcome.error.splitlines()[0]
        if outcome.note:
            fields["note"] = outcome.note
        if not kept:
            log.warning("lease lost before the outcome was recorded", **fields)
        elif outcome.status == "dead":
            log.error("handler attempt", **fields)
            await self._announce_dead(claim, outcome)
        elif outcome.status == "failed":
            retry_in = round((outcome.retry_at or started) - outcome.finished_at)
            log.warning("handler attempt", retry_in_s=retry_in, **fields)
        else:
            log.info("handler attempt", **fields)

    async def _announce_dead(self, claim: Claim, outcome: Outcome) -> None:
        # A dead delivery of the dead-delivery event itself is not announced
        # again: that could loop forever.
        if claim.event.source == INTERNAL_SOURCE:
            return
        event = dead_delivery_event(
            delivery_id=claim.delivery_id,
            handler=claim.handler,
            attempts=claim.attempt,
            error=outcome.error,
            failed=claim.event,
            now=datetime.fromtimestamp(self._clock(), UTC),
        )
        try:
            await self.store.append(event, self.bridge.route(event))
        except StoreError as exc:
            log.error("could not record the dead delivery event", error=str(exc))

    async def _attempt(
        self, handler: Handler | None, claim: Claim, started: float
    ) -> Outcome:
        if handler is None:
            error = f"no handler named {claim.handler!r} is registered in this worker"
            return self._failure(claim, started, error, None, permanent=False)
        last = self._policy(handler).max_attempts
        if claim.attempt > last:
            # Only a lease that ran out brings an attempt past the last: its
            # worker stopped mid-attempt, perhaps because the handler ended
            # the process. Running it again could end this one too.
            error = (
                f"gave up after {last} attempt(s), the last with no outcome: its "
                "worker stopped mid-attempt (a handler that ends its process? "
                "this one, or one that ran beside it)"
            )
            return Outcome("dead", started, self._clock(), error=error)
        event = claim.event
        try:
            # Enrichment and the ordering guard come before the condition, so
            # `when` may look at the record.
            if self.enricher is not None:
                prepared = await self.enricher.prepare(event, handler)
                if prepared is None:
                    return Outcome(
                        "succeeded", started, self._clock(), note="stale: skipped"
                    )
                event = prepared
            if handler.when is not None and not handler.when(event):
                return Outcome(
                    "succeeded", started, self._clock(), note="condition false"
                )
            await self._call(handler, event)
        except PermanentError as exc:
            return self._failure(claim, started, _describe(exc), None, permanent=True)
        except (_NoThread, _Escaped) as exc:
            return self._failure(claim, started, str(exc), None)
        except RetryableError as exc:
            return self._failure(claim, started, _describe(exc), exc.retry_after)
        except TimeoutError:
            timeout = handler.timeout or self.handler_timeout
            return self._failure(claim, started, f"timed out after {timeout} s", None)
        except asyncio.CancelledError as exc:
            if _being_cancelled():
                raise  # a stop
            # Raised by the handler itself (a sync one, from its thread).
            return self._failure(claim, started, _describe(exc, with_trace=True), None)
        except BaseException as exc:
            # SystemExit, KeyboardInterrupt and the like from a handler (or
            # its condition) end its attempt, not the worker.
            return self._failure(claim, started, _describe(exc, with_trace=True), None)
        return Outcome("succeeded", started, self._clock())

    async def _call(self, handler: Handler, event: Event) -> None:
        timeout = handler.timeout or self.handler_timeout
        if handler.is_async:
            await _run_task(_contained(handler.func(event)), timeout)
            return
        # A thread cannot be killed: on timeout it is left to finish alone, and
        # the attempt is recorded as failed. The timeout runs from the moment
        # the handler starts: waiting for a free thread is not its time.
        loop = asyncio.get_running_loop()
        started: asyncio.Future[None] = loop.create_future()

        def run() -> None:
            loop.call_soon_threadsafe(_settle, started)
            handler.func(event)

        call = self._threads.submit(run)
        finished = asyncio.wrap_future(call)
        try:
            await asyncio.wait(
                (started, finished), timeout=_THREAD_WAIT, return_when=FIRST_COMPLETED
            )
        except asyncio.CancelledError:
            finished.cancel()  # not started yet: it never will be
            raise
        if not started.done() and call.cancel():
            # Every thread is held by handlers that overran their timeout.
            # Waiting on could outlast the lease and let another worker run
            # this delivery at the same time; it has not run, so try later.
            raise _NoThread(
                f"no thread free within {_THREAD_WAIT:.0f} s: sync handlers "
                "that overran their timeout hold them all"
            )
        await asyncio.wait_for(finished, timeout)

    def _policy(self, handler: Handler | None) -> RetryPolicy:
        """The retry policy, with the handler's own `max_attempts` if it has one."""
        if handler is None or handler.max_attempts is None:
            return self.retry
        return dataclasses.replace(self.retry, max_attempts=handler.max_attempts)

    def _failure(
        self,
        claim: Claim,
        started: float,
        error: str,
        retry_after: float | None,
        *,
        permanent: bool = False,
    ) -> Outcome:
        finished = self._clock()
        policy = self._policy(self.bridge.get(claim.handler))
        delay = (
            None
            if permanent
            else policy.next_delay(claim.attempt, retry_after=retry_after)
        )
        if delay is None:
            return Outcome("dead", started, finished, error=error)
        return Outcome(
            "failed", started, finished, error=error, retry_at=finished + delay
        )


async def _contained(handler_call: Awaitable[None]) -> None:
    """Await an async handler in its task; see `_Escaped`."""
    try:
        await handler_call
    except asyncio.CancelledError as exc:
        if _being_cancelled():
            raise  # a stop or the timeout
        raise _Escaped(_describe(exc, with_trace=True)) from None
    except Exception:
        raise
    except BaseException as exc:
        raise _Escaped(_describe(exc, with_trace=True)) from None


async def _run_task(handler_call: Awaitable[None], seconds: float) -> None:
    """Run an async handler in a task of its own, for at most `seconds`.

    Not `asyncio.wait_for`, which waits for a cancelled task to end: a handler
    that swallows its cancellation would outlive its timeout and its lease,
    and run beside its own retry. Here the attempt ends on time (or at a
    stop) whatever the handler does; a task that will not stop is left to
    finish alone, as a sync handler's thread is.
    """
    task = asyncio.ensure_future(handler_call)
    try:
        done, _ = await asyncio.wait((task,), timeout=seconds)
    except asyncio.CancelledError:
        task.cancel()
        task.add_done_callback(_forget)
        raise
    if not done:
        task.cancel()
        task.add_done_callback(_forget)
        raise TimeoutError
    task.result()


def _forget(task: asyncio.Future[None]) -> None:
    # Retrieved, so that an abandoned task's error is not logged as never seen.
    if not task.cancelled():
        task.exception()


def _being_cancelled() -> bool:
    """Whether the current task has been asked to stop (not merely seen a
    CancelledError that some code raised on its own)."""
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _describe(exc: BaseException, *, with_trace: bool = False) -> str:
    text = f"{type(exc).__name__}: {exc}"
    if with_trace:
        trace = "".join(traceback.format_exception(exc))
        text = f"{text}\n{trace}"
    # A lone surrogate (a file name read with surrogateescape, say) is no text
    # a database or a JSON log line takes, nor is NUL to PostgreSQL: spell
    # them out instead.
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    text = text.replace("\x00", "\\x00")
    return text[:_MAX_ERROR_CHARS]
