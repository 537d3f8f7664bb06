"""The SQLite store: atomic deduplicating appends and safe claims."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
import sys
import threading
import time
from asyncio.subprocess import PIPE
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mxbridge._errors import StoreError
from mxbridge._events import Event, parse_event
from mxbridge._store import Outcome, SqlStore
from mxbridge._store._versions import KnownRecord, guard, upsert_known

T = TypeVar("T")


def make_event(n: int) -> Event:
    """A distinct work order event numbered `n`."""
    raw = f'{{"eventType":"NEW_WORK_ORDER","workOrderId":{n}}}'.encode()
    return parse_event(raw, source="default", received_at=datetime.now(UTC))


async def test_the_same_event_appended_at_once_is_stored_once(store: SqlStore) -> None:
    """Twenty simultaneous appends of one event: one stored, nineteen duplicates."""
    event = make_event(1)

    results = await asyncio.gather(*[store.append(event, ["h"]) for _ in range(20)])

    assert sum(not r.duplicate for r in results) == 1
    assert [d.handler for d in await store.deliveries(event.id)] == ["h"]


async def test_appends_in_one_batch_are_answered_each(store: SqlStore) -> None:
    """Many different events appended together are all stored and answered."""
    events = [make_event(n) for n in range(300)]

    results = await asyncio.gather(*[store.append(e, ["a", "b"]) for e in events])

    assert all(not r.duplicate and r.deliveries == 2 for r in results)
    assert (await store.counts()) == {"pending": 600}


async def test_a_large_batch_mixing_stored_and_new_events(store: SqlStore) -> None:
    """Appends of stored and new events together: the stored ones are duplicates.

    More appends than one batch or one lookup of stored ids holds, so each is
    answered whichever slice it lands in.
    """
    stored = [make_event(n) for n in range(0, 1200, 3)]
    await asyncio.gather(*[store.append(e, ["h"]) for e in stored])
    stored_ids = {e.id for e in stored}

    events = [make_event(n) for n in range(1200)]
    results = await asyncio.gather(*[store.append(e, ["h"]) for e in events])

    assert [r.duplicate for r in results] == [e.id in stored_ids for e in events]
    assert (await store.counts()) == {"pending": 1200}


async def test_a_stored_event_reads_back_as_appended(store: SqlStore) -> None:
    """Every field of an event survives the store, raw bytes included."""
    raw = (
        b'{"eventType":"WORK_ORDER_STATUS_CHANGE","workOrderId":7,"orgId":41,'
        b'"userId":9,"occurredAt":"2026-11-30T08:15:00.250Z", "note":"caf\\u00e9"}\n'
    )
    event = parse_event(raw, source="plant-2", received_at=datetime.now(UTC))

    await store.append(event, ["h"])

    assert await store.get_event(event.id) == event


async def test_claims_come_back_oldest_due_first(store: SqlStore) -> None:
    """A claim of several deliveries lists them in the order they fell due."""
    events = [make_event(n) for n in range(12)]
    for event in events:
        await store.append(event, ["h"])

    claims = await store.claim("w", 12, 60)

    assert [c.event.id for c in claims] == [e.id for e in events]


async def test_a_claim_takes_the_longest_due_of_every_kind(store: SqlStore) -> None:
    """Retries due, expired leases and new deliveries compete by when they fell due.

    More are due than the claim takes: it takes the longest due, whichever
    kind each is, and leaves the rest.
    """
    events = [make_event(n) for n in range(6)]
    for event in events:
        await store.append(event, ["h"])
    retried, stranded = await store.claim("crashed", 2, lease_seconds=0.05)
    now = time.time()
    failed = Outcome("failed", now, now, error="boom", retry_at=now - 1000)
    assert await store.complete(retried, failed)
    await asyncio.sleep(0.1)

    claims = await store.claim("w", 3, lease_seconds=30)

    assert [c.event.id for c in claims] == [e.id for e in events[:3]]
    assert [c.attempt for c in claims] == [2, 2, 1]
    assert stranded.event.id == events[1].id
    assert await store.counts() == {"pending": 3, "running": 3}


async def test_a_claim_reads_only_the_rows_it_may_take(tmp_path: Path) -> None:
    """Each kind of due delivery is read from an index in order, up to the limit.

    A claim that gathered and sorted every due delivery would make a backlog
    of n deliveries take time in n squared to drain.
    """
    from mxbridge._store._hotpath import CLAIM, _Compiled

    store = SqlStore(f"sqlite:///{tmp_path / 'plan.db'}")
    await store.open()
    await store.close()
    claim = _Compiled(CLAIM["sqlite"])
    values = {"b_owner": "w", "b_lease_until": 2.0, "b_now": 1.0, "b_limit": 32}
    db = sqlite3.connect(tmp_path / "plan.db")
    with contextlib.closing(db):
        plan = [
            row[3]
            for row in db.execute(
                "EXPLAIN QUERY PLAN " + claim.sql, claim.positional(values)
            )
        ]

    reads = [step for step in plan if "deliveries" in step.split(" USING")[0]]
    assert reads == [
        "SEARCH deliveries USING INTEGER PRIMARY KEY (rowid=?)",
        "SEARCH deliveries USING COVERING INDEX ix_deliveries_due "
        "(status=? AND next_attempt_at<?)",
        "SEARCH deliveries USING COVERING INDEX ix_deliveries_due "
        "(status=? AND next_attempt_at<?)",
        "SEARCH deliveries USING INDEX ix_deliveries_lease "
        "(status=? AND lease_until<?)",
    ]
    # One sort, of the at most 3 x limit rows the three reads gave.
    assert plan.count("USE TEMP B-TREE FOR ORDER BY") == 1


async def test_an_unparseable_url_is_a_store_error_at_open() -> None:
    """A store URL SQLAlchemy cannot read is reported by open, in one line."""
    store = SqlStore("nonsense")

    with pytest.raises(StoreError, match="is not usable"):
        await store.open()


async def test_a_failed_batch_loses_nothing_in_memory() -> None:
    """After SQLite refuses a batch, an in-memory store still holds what it had."""
    store = SqlStore("sqlite://")
    await store.open()
    kept = make_event(1)
    await store.append(kept, ["h"])
    refused = parse_event(
        b'{"eventType":"NEW_WORK_ORDER","workOrderId":2}',
        source="refused",
        received_at=datetime.now(UTC),
    )
    await store._run(
        lambda conn: conn.exec_driver_sql(
            "CREATE TRIGGER refuse BEFORE INSERT ON events "
            "WHEN NEW.source = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END"
        )
    )

    with pytest.raises(StoreError, match="refused"):
        await store.append(refused, ["h"])
    later = await store.append(make_event(3), ["h"])
    counts = await store.counts()
    await store.close()

    assert not later.duplicate
    assert counts == {"pending": 2}


async def test_an_event_nobody_wants_is_still_stored(store: SqlStore) -> None:
    """No handler, no delivery, but the event and its raw bytes are kept."""
    event = make_event(2)

    await store.append(event, [])

    stored = await store.get_event(event.id)
    assert stored is not None
    assert stored.raw == event.raw
    assert await store.deliveries(event.id) == []


async def test_a_lease_that_runs_out_is_claimed_again(store: SqlStore) -> None:
    """A crashed worker's claim returns after its lease; its late outcome is refused."""
    event = make_event(3)
    await store.append(event, ["h"])
    [first] = await store.claim("crashed", 10, lease_seconds=0.05)

    await asyncio.sleep(0.1)
    [second] = await store.claim("healthy", 10, lease_seconds=30)
    now = time.time()
    late = await store.complete(first, Outcome("succeeded", now, now))
    kept = await store.complete(second, Outcome("succeeded", now, now))

    assert second.delivery_id == first.delivery_id
    assert second.attempt == 2
    assert (late, kept) == (False, True)
    [attempt_one, attempt_two] = await store.attempts(event.id)
    assert attempt_one.outcome == "lease_lost"
    assert attempt_two.outcome == "succeeded"


async def test_released_claims_are_due_again_without_counting(store: SqlStore) -> None:
    """A worker stopping gives its claims back; the attempt does not count."""
    await store.append(make_event(4), ["h"])
    claims = await store.claim("stopping", 10, lease_seconds=30)

    await store.release(claims, "interrupted")
    [again] = await store.claim("next", 10, lease_seconds=30)

    assert again.attempt == 1


async def test_list_filters_by_status_name_and_resource(store: SqlStore) -> None:
    """events list filters by delivery status, name glob and resource id."""
    for n in range(5):
        await store.append(make_event(n), ["h"] if n % 2 else [])
    done = (await store.claim("w", 1, 30))[0]
    await store.complete(done, Outcome("dead", 0, 0, error="boom"))

    dead = await store.list_events(status="dead")
    by_glob = await store.list_events(name="workorder.*")
    by_resource = await store.list_events(resource_id="3")
    by_other = await store.list_events(name="request.*")

    assert [e.id for e in dead] == [done.event.id]
    assert len(by_glob) == 5
    assert [e.resource_id for e in by_resource] == ["3"]
    assert by_other == []
    assert [d.id for d in await store.list_dead()] == [done.delivery_id]


async def test_replay_and_retry_dead_rearm_deliveries(store: SqlStore) -> None:
    """Replay re-arms an event's deliveries; retry_dead re-arms dead ones."""
    event = make_event(9)
    await store.append(event, ["h"])
    claim = (await store.claim("w", 1, 30))[0]
    await store.complete(claim, Outcome("dead", 0, 0, error="boom"))

    assert await store.retry_dead(None) == 1
    claim = (await store.claim("w", 1, 30))[0]
    await store.complete(claim, Outcome("succeeded", 0, 0))
    assert await store.replay(event.id) == 1
    assert [d.status for d in await store.deliveries(event.id)] == ["pending"]


CLAIMER = """
import asyncio, json, sys
from mxbridge._store import Outcome, SqlStore

async def main(url, owner):
    store = SqlStore(url)
    await store.open()
    # All start claiming at once, not each as soon as it has started up.
    print("ready", flush=True)
    sys.stdin.readline()
    claimed = []
    while True:
        claims = await store.claim(owner, 5, 60)
        if not claims:
            break
        for claim in claims:
            claimed.append(claim.delivery_id)
            await store.complete(claim, Outcome("succeeded", 0, 0))
    await store.close()
    print(json.dumps(claimed))

asyncio.run(main(sys.argv[1], sys.argv[2]))
"""


async def test_workers_in_several_processes_never_share_a_claim(
    store: SqlStore, tmp_path: Path
) -> None:
    """Three processes claim from one SQLite file: each delivery exactly once."""
    events = [make_event(n) for n in range(400)]
    await asyncio.gather(*[store.append(e, ["h"]) for e in events])

    processes = [
        await asyncio.create_subprocess_exec(
            sys.executable, "-c", CLAIMER, store.url, f"p{i}", stdin=PIPE, stdout=PIPE
        )
        for i in range(3)
    ]
    for process in processes:
        assert process.stdout is not None
        assert await process.stdout.readline() == b"ready\n"
    answers = await asyncio.gather(*[p.communicate(b"go\n") for p in processes])
    outputs = [json.loads(stdout) for stdout, _ in answers]

    claimed = [delivery for output in outputs for delivery in output]
    assert len(claimed) == 400
    assert len(set(claimed)) == 400
    assert sum(1 for output in outputs if output) >= 2
    assert await store.counts() == {"succeeded": 400}


async def test_outcomes_recorded_together_are_each_kept(store: SqlStore) -> None:
    """Many outcomes at once share transactions; each is recorded once."""
    await asyncio.gather(*[store.append(make_event(n), ["h"]) for n in range(200)])
    claims = await store.claim("w", 200, lease_seconds=30)

    now = time.time()
    kept = await asyncio.gather(
        *[store.complete(c, Outcome("succeeded", now, now)) for c in claims]
    )

    assert len(claims) == 200
    assert all(kept)
    assert await store.counts() == {"succeeded": 200}
    attempts = await asyncio.gather(*[store.attempts(c.event.id) for c in claims])
    assert all(len(a) == 1 for a in attempts)


async def while_held_open(
    store_url: str, first: Callable[[Connection], None], second: Awaitable[T]
) -> T:
    """Await `second` while `first` ran in a transaction another connection holds.

    The transaction stays open half a second after `first`, then commits.
    """
    engine = sa.create_engine(store_url)
    first_in = threading.Event()

    def hold() -> None:
        with engine.begin() as conn:
            first(conn)
            first_in.set()
            time.sleep(0.5)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert await asyncio.to_thread(first_in.wait, 10)
        return await second
    finally:
        thread.join()
        engine.dispose()


async def test_the_first_two_handlings_of_a_record_take_turns(
    store: SqlStore, store_url: str
) -> None:
    """Two workers on a record no handler has seen: the second waits for the first.

    No row is there yet to lock; still, the older version, checked while the
    newer one's transaction is open, is found stale once that one commits.
    """
    newer = KnownRecord("workorder", "77", updated_at=200.0, occurred_at=200.0)
    older = KnownRecord("workorder", "77", updated_at=100.0, occurred_at=100.0)

    def first(conn: Connection) -> None:
        assert not guard(conn, "h", newer, "evt_new").stale

    second = await while_held_open(
        store_url, first, store.guard_version("h", older, "evt_old")
    )

    assert second.stale
    assert not (await store.guard_version("h", newer, "evt_new")).stale


async def test_two_first_sightings_of_a_record_keep_the_newer(
    store: SqlStore, store_url: str
) -> None:
    """The older state, saved while the newer one's save is open, does not win."""
    newer = KnownRecord("workorder", "78", updated_at=200.0, occurred_at=200.0)
    older = KnownRecord("workorder", "78", updated_at=100.0, occurred_at=100.0)

    await while_held_open(
        store_url,
        lambda conn: upsert_known(conn, [newer], time.time()),
        store.save_known([older]),
    )

    assert (await store.known_records("workorder", ["78"]))["78"].version == (200, 200)


async def test_stores_opened_together_on_a_fresh_database(store_url: str) -> None:
    """serve and workers starting at once on a new database: one creates the tables."""
    stores = [SqlStore(store_url) for _ in range(3)]

    results = await asyncio.gather(
        *(store.open() for store in stores), return_exceptions=True
    )
    for store in stores:
        await store.close()

    assert results == [None, None, None]


async def test_a_lease_that_ran_out_counts_as_due(store: SqlStore) -> None:
    """A worker died mid-attempt: its delivery is due again, and the backlog says so."""
    await store.append(make_event(1), ["h"])
    assert len(await store.claim("crashed", 10, lease_seconds=0.05)) == 1
    held = await store.backlog()
    await asyncio.sleep(0.1)

    expired = await store.backlog()

    assert held.counts["running"] == 1
    assert held.oldest_due_at is None
    assert expired.oldest_due_at is not None
    assert expired.oldest_due_at <= time.time()


async def test_reading_does_not_wait_for_another_writer(tmp_path: Path) -> None:
    """Inspecting the store (events list, /metrics) while another process writes."""
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = SqlStore(url, lock_timeout=0.5)
    await store.open()
    await store.append(make_event(1), ["h"])
    writer = sqlite3.connect(tmp_path / "store.db", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    try:
        listed = await store.list_events()
        backlog = await store.backlog()
        with pytest.raises(StoreError, match="locked"):
            await store.append(make_event(2), ["h"])
    finally:
        writer.execute("ROLLBACK")
        writer.close()
        await store.close()

    assert len(listed) == 1
    assert backlog.counts["pending"] == 1
