"""The worker on a real SQLite store: retries, dead letters, leases, stopping."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from mxbridge import Bridge, Event, PermanentError, RetryableError, RetryPolicy
from mxbridge._events import parse_event
from mxbridge._store import SqlStore
from mxbridge._worker import Worker

FAST = RetryPolicy(max_attempts=3, initial_delay=0.1, multiplier=2, jitter=0)
RAW = b'{"eventType":"WORK_ORDER_STATUS_CHANGE","workOrderId":7,"newStatus":"DONE"}'


def make_event(raw: bytes = RAW) -> Event:
    """An event parsed from `raw`, received now."""
    return parse_event(raw, source="default", received_at=datetime.now(UTC))


def worker_for(store: SqlStore, bridge: Bridge, **options: Any) -> Worker:
    """A worker polling fast, with the FAST retry policy unless told otherwise."""
    settings: dict[str, Any] = {"retry": FAST, "poll_interval": 0.02}
    settings.update(options)
    return Worker(store, bridge, **settings)


async def until(condition: Callable[[], Any], seconds: float = 10.0) -> None:
    """Poll an async condition on the store, failing after `seconds`."""
    for _ in range(int(seconds / 0.02)):
        if await condition():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"condition not met within {seconds} s")


async def statuses(store: SqlStore, event: Event) -> list[str]:
    """The statuses of the event's deliveries."""
    return [d.status for d in await store.deliveries(event.id)]


async def test_failing_handler_is_retried_on_schedule_then_dead(
    store: SqlStore,
) -> None:
    """Three attempts spaced by the schedule, then dead, then announced."""
    bridge = Bridge()
    alarms: list[Event] = []

    @bridge.on("workorder.completed", name="flaky")
    def flaky(event: Event) -> None:
        raise RuntimeError("ERP is down")

    bridge.add(alarms.append, "mxbridge.delivery.dead", name="alarm")
    event = make_event()
    await store.append(event, bridge.route(event))
    worker = worker_for(store, bridge)
    worker.start()

    await until(lambda: _is(store, event, ["dead"]))
    await until(lambda: _true(len(alarms) == 1))
    await worker.stop()

    attempts = await store.attempts(event.id)
    assert [a.outcome for a in attempts] == ["failed", "failed", "dead"]
    gaps = [b.started_at - a.finished_at for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.1 * 0.95
    assert gaps[1] >= 0.2 * 0.95
    assert "ERP is down" in (attempts[-1].error or "")
    assert alarms[0].payload["handler"] == "flaky"
    assert alarms[0].payload["event"]["id"] == event.id


async def test_dead_retry_and_replay_run_the_handler_again(store: SqlStore) -> None:
    """A dead delivery re-armed runs again; replay runs a succeeded one again."""
    bridge = Bridge()
    calls: list[str] = []
    failing = True

    @bridge.on("*", name="h")
    def handler(event: Event) -> None:
        calls.append(event.id)
        if failing:
            raise PermanentError("bad data")

    event = make_event()
    await store.append(event, bridge.route(event))
    worker = worker_for(store, bridge)
    await worker.run_until_idle()
    assert await statuses(store, event) == ["dead"]

    failing = False
    await store.retry_dead(None)
    await worker.run_until_idle()
    assert await statuses(store, event) == ["succeeded"]

    await store.replay(event.id)
    await worker.run_until_idle()
    assert await statuses(store, event) == ["succeeded"]
    assert calls == [event.id] * 3


async def test_permanent_error_is_dead_at_once(store: SqlStore) -> None:
    """PermanentError skips the schedule."""
    bridge = Bridge()
    bridge.add(_raise(PermanentError("400 from ERP")), "*", name="h")
    event = make_event()
    await store.append(event, bridge.route(event))

    await worker_for(store, bridge).run_until_idle()

    [delivery] = await store.deliveries(event.id)
    assert (delivery.status, delivery.attempts) == ("dead", 1)
    assert "400 from ERP" in (delivery.last_error or "")


async def test_retryable_error_sets_its_own_delay(store: SqlStore) -> None:
    """RetryableError(retry_after=...) schedules the next attempt by it."""
    bridge = Bridge()
    bridge.add(_raise(RetryableError("429", retry_after=120)), "*", name="h")
    event = make_event()
    await store.append(event, bridge.route(event))

    await worker_for(store, bridge).run_until_idle()

    [delivery] = await store.deliveries(event.id)
    assert delivery.status == "failed"
    assert delivery.next_attempt_at is not None
    assert 115 < delivery.next_attempt_at - delivery.updated_at <= 121


async def test_a_handler_over_its_timeout_fails(store: SqlStore) -> None:
    """An async handler past its timeout is cancelled and recorded as failed."""
    bridge = Bridge()

    @bridge.on("*", name="slow", timeout=0.1)
    async def slow(event: Event) -> None:
        await asyncio.sleep(5)

    event = make_event()
    await store.append(event, bridge.route(event))

    await worker_for(store, bridge).run_until_idle()

    [delivery] = await store.deliveries(event.id)
    assert delivery.status == "failed"
    assert "timed out after 0.1 s" in (delivery.last_error or "")


async def test_a_false_condition_succeeds_without_running(store: SqlStore) -> None:
    """`when` false: the delivery succeeds, noted, and the handler is not called."""
    bridge = Bridge()
    calls: list[Event] = []
    bridge.add(calls.append, "*", name="h", when=lambda e: e.org_id == 1)
    event = make_event()
    await store.append(event, bridge.route(event))

    worker = worker_for(store, bridge)
    await worker.run_until_idle()

    assert calls == []
    [attempt] = await store.attempts(event.id)
    assert (attempt.outcome, attempt.error) == ("succeeded", "condition false")
    # Counted apart from the attempts that ran.
    counted = {
        outcome: worker.metrics.registry.get_sample_value(
            "mxbridge_handler_attempts_total", {"handler": "h", "outcome": outcome}
        )
        for outcome in ("skipped", "succeeded")
    }
    assert counted == {"skipped": 1.0, "succeeded": None}


async def test_unknown_handler_name_fails_visibly(store: SqlStore) -> None:
    """A delivery for a handler this worker lacks is failed, with the reason."""
    event = make_event()
    await store.append(event, ["gone.handler"])

    await worker_for(store, Bridge()).run_until_idle()

    [delivery] = await store.deliveries(event.id)
    assert delivery.status == "failed"
    assert "no handler named 'gone.handler'" in (delivery.last_error or "")


async def test_stopping_lets_running_handlers_finish(store: SqlStore) -> None:
    """stop() waits for a running handler within the grace period."""
    bridge = Bridge()
    started = asyncio.Event()

    @bridge.on("*", name="h")
    async def handler(event: Event) -> None:
        started.set()
        await asyncio.sleep(0.3)

    event = make_event()
    await store.append(event, bridge.route(event))
    worker = worker_for(store, bridge, grace_seconds=5)
    worker.start()
    await started.wait()

    await worker.stop()

    assert await statuses(store, event) == ["succeeded"]


@pytest.mark.parametrize("swallows", [False, True], ids=["plain", "swallowing"])
async def test_stopping_past_the_grace_gives_deliveries_back(
    store: SqlStore, swallows: bool
) -> None:
    """A handler still running after the grace is cancelled and due again.

    Also when it catches the cancellation and returns: cut off, it has not
    succeeded.
    """
    bridge = Bridge()
    started = asyncio.Event()

    @bridge.on("*", name="h")
    async def handler(event: Event) -> None:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            if not swallows:
                raise

    event = make_event()
    await store.append(event, bridge.route(event))
    worker = worker_for(store, bridge, grace_seconds=0.1)
    worker.start()
    await started.wait()

    await worker.stop()

    [delivery] = await store.deliveries(event.id)
    assert (delivery.status, delivery.attempts) == ("pending", 0)
    assert "interrupted" in (delivery.last_error or "")


async def test_a_crashed_workers_delivery_is_run_by_another(store: SqlStore) -> None:
    """A claim whose lease ran out is picked up and run by a live worker."""
    bridge = Bridge()
    calls: list[Event] = []
    bridge.add(calls.append, "*", name="h")
    event = make_event()
    await store.append(event, bridge.route(event))
    await store.claim("crashed-worker", 10, lease_seconds=0.05)

    await asyncio.sleep(0.1)
    await worker_for(store, bridge).run_until_idle()

    assert len(calls) == 1
    [delivery] = await store.deliveries(event.id)
    assert (delivery.status, delivery.attempts) == ("succeeded", 2)


async def test_the_claim_loop_outlives_an_unforeseen_error(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A claim that raises something no store error covers is logged, and the
    loop claims again: the edge goes on acknowledging, so it must not end."""
    bridge = Bridge()
    calls: list[Event] = []
    bridge.add(calls.append, "*", name="h")
    event = make_event()
    await store.append(event, bridge.route(event))
    faults = [RuntimeError("a fault nobody foresaw")]
    claim = store.claim

    async def faulty_claim(*args: Any) -> Any:
        if faults:
            raise faults.pop()
        return await claim(*args)

    monkeypatch.setattr(store, "claim", faulty_claim)
    worker = worker_for(store, bridge)
    worker.start()
    await until(lambda: _is(store, event, ["succeeded"]))
    await worker.stop()

    assert not faults
    assert len(calls) == 1


def _raises(error: BaseException, *, is_async: bool) -> Callable[[Event], Any]:
    if is_async:

        async def async_handler(event: Event) -> None:
            raise error

        return async_handler
    return _raise(error)


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    "error",
    [
        pytest.param(SystemExit(3), id="sys.exit"),
        pytest.param(KeyboardInterrupt(), id="KeyboardInterrupt"),
        pytest.param(BaseException("bare"), id="BaseException"),
        pytest.param(asyncio.CancelledError(), id="CancelledError"),
    ],
)
async def test_a_handler_cannot_end_the_worker(
    store: SqlStore, error: BaseException, is_async: bool
) -> None:
    """What ends a process or cancels a task, raised by a handler, fails its
    attempt: the worker (and the service around it) goes on."""
    bridge = Bridge()
    bridge.add(_raises(error, is_async=is_async), "*", name="h", max_attempts=1)
    event = make_event()
    await store.append(event, bridge.route(event))

    await worker_for(store, bridge).run_until_idle()

    [delivery] = await store.deliveries(event.id)
    assert delivery.status == "dead"
    assert (delivery.last_error or "").startswith(type(error).__name__)


async def test_a_handler_that_swallows_its_cancellation_still_times_out(
    store: SqlStore,
) -> None:
    """The attempt ends at the timeout, not when such a handler chooses to end:
    waiting would outlast the lease and run it beside its own retry."""
    bridge = Bridge()
    ended: list[bool] = []

    async def stubborn(event: Event) -> None:
        for _ in range(10):
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.sleep(0.1)
        ended.append(True)

    bridge.add(stubborn, "*", name="h", timeout=0.05, max_attempts=1)
    event = make_event()
    await store.append(event, bridge.route(event))

    await worker_for(store, bridge).run_until_idle()
    [delivery] = await store.deliveries(event.id)
    ended_when_recorded = bool(ended)
    await until(lambda: _true(bool(ended)))

    assert (delivery.status, delivery.last_error) == ("dead", "timed out after 0.05 s")
    assert not ended_when_recorded


async def test_a_condition_cannot_end_the_worker(store: SqlStore) -> None:
    """`when` runs on the event loop: a sys.exit there fails the attempt too."""
    bridge = Bridge()

    def leave(event: Event) -> bool:
        raise SystemExit(3)

    bridge.add(lambda event: None, "*", name="h", when=leave, max_attempts=1)
    event = make_event()
    await store.append(event, bridge.route(event))

    await worker_for(store, bridge).run_until_idle()

    [delivery] = await store.deliveries(event.id)
    assert (delivery.status, (delivery.last_error or "")[:13]) == (
        "dead",
        "SystemExit: 3",
    )


async def test_a_claim_past_the_last_attempt_goes_dead_unrun(store: SqlStore) -> None:
    """A worker that died mid-attempt on the last attempt (a handler that ends
    its process, say) is not followed by another run: the delivery is dead."""
    bridge = Bridge()
    calls: list[Event] = []
    bridge.add(calls.append, "*", name="h", max_attempts=1)
    event = make_event()
    await store.append(event, bridge.route(event))
    await store.claim("crashed-worker", 10, lease_seconds=0.05)

    await asyncio.sleep(0.1)
    await worker_for(store, bridge).run_until_idle()

    assert calls == []
    [delivery] = await store.deliveries(event.id)
    assert delivery.status == "dead"
    assert (delivery.last_error or "").startswith("gave up after 1 attempt(s)")


async def _is(store: SqlStore, event: Event, expected: list[str]) -> bool:
    return await statuses(store, event) == expected


async def _true(value: bool) -> bool:
    return value


def _raise(error: BaseException) -> Callable[[Event], None]:
    def handler(event: Event) -> None:
        raise error

    return handler


async def test_sync_handlers_at_full_concurrency_each_run_once_in_time(
    store: SqlStore,
) -> None:
    """As many slow sync handlers as the worker runs at once: none waits its turn.

    Each takes a third of its timeout; waiting for a thread must not count
    against it, or they would time out, be retried and run twice.
    """
    bridge = Bridge()
    runs: list[str] = []

    @bridge.on("*", name="slow_sync", timeout=1.0)
    def slow_sync(event: Event) -> None:
        time.sleep(0.3)
        runs.append(event.id)

    events = [make_event(RAW.replace(b"7", str(n).encode(), 1)) for n in range(64)]
    for event in events:
        await store.append(event, ["slow_sync"])
    worker = worker_for(store, bridge, concurrency=32)

    await worker.run_until_idle(limit=60)

    assert sorted(runs) == sorted(e.id for e in events)
    assert await store.counts() == {"succeeded": 64}


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        # A file name read with surrogateescape: a lone surrogate.
        pytest.param(
            b"/data/r\xe9sum\xe9.pdf".decode("utf-8", "surrogateescape"),
            "/data/r\\udce9sum\\udce9.pdf",
            id="surrogate",
        ),
        # PostgreSQL refuses NUL in any text column.
        pytest.param("/data/a\x00b.pdf", "/data/a\\x00b.pdf", id="nul"),
    ],
)
async def test_an_error_text_that_is_not_storable_text_is_recorded(
    store: SqlStore, name: str, shown: str
) -> None:
    """A message a database would refuse is recorded spelled out, and goes dead."""
    bridge = Bridge()

    @bridge.on("*", name="reader")
    def reader(event: Event) -> None:
        raise PermanentError(f"cannot read {name}")

    event = make_event()
    await store.append(event, ["reader"])

    await worker_for(store, bridge).run_until_idle()

    [delivery] = await store.deliveries(event.id)
    assert delivery.status == "dead"
    assert delivery.last_error == f"PermanentError: cannot read {shown}"


async def test_a_stop_at_full_concurrency_keeps_to_the_grace(store: SqlStore) -> None:
    """Every slot busy with a long handler: the stop still cuts it off in time."""
    bridge = Bridge()
    started = asyncio.Event()

    @bridge.on("*", name="h")
    async def handler(event: Event) -> None:
        started.set()
        await asyncio.sleep(30)

    for n in range(2):
        await store.append(make_event(RAW.replace(b"7", str(n).encode(), 1)), ["h"])
    worker = worker_for(store, bridge, grace_seconds=0.1, concurrency=1)
    worker.start()
    await started.wait()

    await asyncio.wait_for(worker.stop(), 5)

    assert await store.counts() == {"pending": 2}


async def test_a_sync_handler_with_no_thread_free_is_not_run(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Threads all held by overrunning handlers: the next one is tried later.

    Waiting on for a thread could outlast its lease, and another worker would
    run the same delivery at the same time.
    """
    monkeypatch.setattr("mxbridge._worker._THREAD_WAIT", 0.3)
    bridge = Bridge()
    gate = threading.Event()
    runs: list[str] = []
    stuck, waiting = (make_event(RAW.replace(b"7", str(n).encode(), 1)) for n in (1, 2))
    late = make_event(RAW.replace(b"7", b"3", 1))

    @bridge.on("*", name="h", timeout=0.1)
    def handler(event: Event) -> None:
        runs.append(event.id)
        if event.id != late.id:
            gate.wait(10)

    for event in (stuck, waiting, late):
        await store.append(event, ["h"])
    worker = worker_for(store, bridge, concurrency=1, grace_seconds=0.1)
    worker.start()
    try:
        await until(lambda: last_error_of(store, late, "no thread free"))
        ran_late = late.id in runs
    finally:
        gate.set()
        await worker.stop()

    assert not ran_late
    assert sorted(set(runs) - {late.id}) == sorted([stuck.id, waiting.id])


async def last_error_of(store: SqlStore, event: Event, text: str) -> bool:
    """Whether the event's one delivery last failed with `text` in its error."""
    [delivery] = await store.deliveries(event.id)
    return text in (delivery.last_error or "")
