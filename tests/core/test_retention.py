"""Retention: old events whose handlers are done go; everything else stays."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest

from conftest import read_store, wait_for
from mxbridge import Bridge
from mxbridge._events import Event, parse_event
from mxbridge._store import Outcome, SqlStore

DAY = 86400.0


def event_at(n: int, days_ago: float) -> Event:
    """Work order event `n`, received `days_ago` days ago."""
    raw = f'{{"eventType":"NEW_WORK_ORDER","workOrderId":{n}}}'.encode()
    received = datetime.now(UTC) - timedelta(days=days_ago)
    return parse_event(raw, source="default", received_at=received)


Status = Literal["succeeded", "failed", "dead"]
# What each old or new event's one delivery ends as; None: pending again.
ENDS: dict[str, Status | None] = {
    "old succeeded": "succeeded",
    "old dead": "dead",
    "old failed": "failed",
    "old pending": None,
    "old succeeded later": "succeeded",
    "new succeeded": "succeeded",
}


async def fill(store: SqlStore) -> dict[str, Event]:
    """Old events in every state, one no handler wanted, a new one that succeeded."""
    events = {
        "old succeeded": event_at(1, 40),
        "old unrouted": event_at(2, 39),
        "old dead": event_at(3, 38),
        "old failed": event_at(4, 37),
        "old pending": event_at(5, 36),
        "old succeeded later": event_at(6, 35),
        "new succeeded": event_at(7, 1),
    }
    for label, event in events.items():
        await store.append(event, [] if label == "old unrouted" else ["h"])
    labels = {event.id: label for label, event in events.items()}
    claims = await store.claim("w", 100, 60)
    assert len(claims) == len(ENDS)
    for claim in claims:
        status = ENDS[labels[claim.event.id]]
        if status is None:
            await store.release([claim], "given back")
            continue
        now = time.time()
        retry_at = now + 3600 if status == "failed" else None
        outcome = Outcome(status, now, now, error="boom", retry_at=retry_at)
        assert await store.complete(claim, outcome)
    await store.save_event_records([], {events["old succeeded"].id: {"id": 1}})
    return events


async def present(store: SqlStore, events: dict[str, Event]) -> set[str]:
    """The labels of `events` still in the store."""
    return {
        label for label, e in events.items() if await store.get_event(e.id) is not None
    }


async def test_old_done_events_go_with_their_history(store: SqlStore) -> None:
    """Events past the cut-off whose deliveries all succeeded go; the rest stay."""
    events = await fill(store)

    result = await store.prune(time.time() - 30 * DAY, batch=2)

    assert (result.removed, result.kept) == (3, 3)
    assert await present(store, events) == {
        "old dead",
        "old failed",
        "old pending",
        "new succeeded",
    }
    for label in ("old succeeded", "old unrouted", "old succeeded later"):
        assert await store.deliveries(events[label].id) == []
        assert await store.attempts(events[label].id) == []
    assert await store.get_event_record(events["old succeeded"].id) is None
    assert await store.counts() == {
        "dead": 1,
        "failed": 1,
        "pending": 1,
        "succeeded": 1,
    }


async def test_a_dry_run_counts_and_removes_nothing(store: SqlStore) -> None:
    """--dry-run's numbers are those of the real prune, and nothing goes."""
    events = await fill(store)

    dry = await store.prune(time.time() - 30 * DAY, dry_run=True)

    assert (dry.removed, dry.kept) == (3, 3)
    assert await present(store, events) == set(events)


async def test_a_replayed_old_event_stays(store: SqlStore) -> None:
    """Replaying an old event makes it work again, so it is kept."""
    events = await fill(store)
    await store.replay(events["old succeeded"].id)

    await store.prune(time.time() - 30 * DAY)

    assert "old succeeded" in await present(store, events)


def run_cli(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``mxbridge ARGS --config CONFIG``."""
    return subprocess.run(
        [sys.executable, "-m", "mxbridge", *args, "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def with_filled_store(url: str) -> dict[str, Event]:
    """Fill the store at `url` as `fill` does, from outside an event loop."""
    action: Callable[[SqlStore], Awaitable[dict[str, Event]]] = fill
    result: dict[str, Event] = read_store(url, action)
    return result


def test_prune_command(tmp_path: Path) -> None:
    """``events prune`` says what it removed and kept; with no age, asks for one."""
    url = f"sqlite:///{tmp_path / 'mxbridge.db'}"
    config = tmp_path / "mxbridge.toml"
    config.write_text(f'[store]\nurl = "{url}"\n')
    events = with_filled_store(url)

    dry = run_cli(config, "events", "prune", "--older-than", "30", "--dry-run")
    done = run_cli(config, "events", "prune", "--older-than", "30")
    again = run_cli(config, "events", "prune", "--older-than", "30")
    missing = run_cli(config, "events", "prune")

    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith("would remove 3 event(s) received before ")
    assert dry.stdout.rstrip().endswith(
        "kept 3 of that age with deliveries not yet succeeded"
    )
    assert done.stdout.startswith("removed 3 event(s)")
    assert again.stdout.startswith("removed 0 event(s)")
    assert missing.returncode == 2
    assert missing.stderr.strip().splitlines() == [
        "mxbridge: error: give --older-than DAYS, or set [store] keep_days "
        "(see: mxbridge events prune --help)"
    ]
    remaining = read_store(url, lambda store: present(store, events))
    assert remaining == {"old dead", "old failed", "old pending", "new succeeded"}


@pytest.mark.parametrize("days", ["nan", "inf", "0", "-1"])
def test_prune_refuses_an_age_that_is_no_age(tmp_path: Path, days: str) -> None:
    """NaN compares false with everything: taken as an age, it removed every event."""
    url = f"sqlite:///{tmp_path / 'mxbridge.db'}"
    config = tmp_path / "mxbridge.toml"
    config.write_text(f'[store]\nurl = "{url}"\n')
    events = with_filled_store(url)

    refused = run_cli(config, "events", "prune", "--older-than", days)
    ancient = run_cli(config, "events", "prune", "--older-than", "1e300")

    assert refused.returncode == 2
    assert refused.stderr.startswith("mxbridge: error: --older-than: a number of days")
    assert ancient.stdout.startswith("removed 0 event(s) received before 1970-01-01")
    assert read_store(url, lambda store: present(store, events)) == set(events)


def test_serve_prunes_by_itself_with_keep_days(tmp_path: Path, run_edge: Any) -> None:
    """With [store] keep_days, the service removes old done events as it starts."""
    url = f"sqlite:///{tmp_path / 'mxbridge.db'}"
    events = with_filled_store(url)

    with run_edge(Bridge(), store={"keep_days": 30}) as edge:
        assert httpx.get(edge.url + "/readyz").status_code == 200
        wait_for(
            lambda: (
                "old succeeded"
                not in read_store(url, lambda store: present(store, events))
            )
        )
        remaining = read_store(url, lambda store: present(store, events))

    assert remaining == {"old dead", "old failed", "old pending", "new succeeded"}
