"""Deliveries the sandbox posts: signed, shaped like MaintainX's, and faultable."""

from __future__ import annotations

import time

import httpx
import pytest
from click.testing import CliRunner

from conftest import Receiver, RunningSandbox
from mxbridge._sandbox.cli import sandbox_group
from mxbridge._signing import verify_maintainx


def subscribe(sb: RunningSandbox, rc: Receiver, event: str, **extra: object) -> dict:  # type: ignore[type-arg]
    body = {"type": event, "url": f"{rc.url}/hooks/{event.lower()}", **extra}
    return httpx.post(sb.api_url + "/subscriptions", json=body, headers=sb.auth).json()


def api(sb: RunningSandbox, method: str, path: str, body: object = None) -> dict:  # type: ignore[type-arg]
    r = httpx.request(method, sb.api_url + path, json=body, headers=sb.auth)
    r.raise_for_status()
    return r.json() if r.content else {}


def settle(sb: RunningSandbox) -> None:
    assert httpx.post(sb.url + "/_sandbox/idle", timeout=20).json() == {"idle": True}


def test_deliveries_verify_with_the_subscription_secret(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    """Each delivery's body and URI signatures verify with its secret and URL."""
    sub = subscribe(sandbox, receiver, "NEW_WORK_ORDER")

    api(sandbox, "POST", "/workorders", {"title": "Pump noisy"})
    settle(sandbox)

    [got] = receiver.received
    url = f"{receiver.url}/hooks/new_work_order"
    verify_maintainx(
        got.headers, got.body, [sub["secret"]], public_url=url, now=time.time()
    )
    assert receiver.bodies()[0]["eventType"] == "NEW_WORK_ORDER"
    assert "newWorkOrder" not in receiver.bodies()[0]


def test_serialize_entity_carries_the_record(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    """With options.serializeEntity the delivery carries newWorkOrder."""
    subscribe(sandbox, receiver, "NEW_WORK_ORDER", options={"serializeEntity": True})

    api(sandbox, "POST", "/workorders", {"title": "Belt worn", "priority": "HIGH"})
    settle(sandbox)

    assert receiver.bodies()[0]["newWorkOrder"]["priority"] == "HIGH"


def test_status_change_carries_old_new_and_sub_status(
    sandbox: RunningSandbox, receiver: Receiver
) -> None:
    """CANCELED is delivered as DONE with newSubStatus CANCELED."""
    subscribe(sandbox, receiver, "WORK_ORDER_STATUS_CHANGE")
    wo = api(sandbox, "POST", "/workorders", {"title": "t"})

    api(sandbox, "PATCH", f"/workorders/{wo['id']}/status", {"status": "IN_PROGRESS"})
    api(sandbox, "PATCH", f"/workorders/{wo['id']}/status", {"status": "CANCELED"})
    settle(sandbox)

    moves = [
        (b["oldStatus"], b["newStatus"], b.get("newSubStatus"))
        for b in receiver.bodies()
    ]
    assert moves == [("OPEN", "IN_PROGRESS", None), ("IN_PROGRESS", "DONE", "CANCELED")]
    assert (
        api(sandbox, "GET", f"/workorders/{wo['id']}")["workOrder"]["status"]
        == "CANCELED"
    )


def test_comments_and_time_do_not_move_updated_at(sandbox: RunningSandbox) -> None:
    """Comments and time entries leave updatedAt alone; a field change moves it."""
    wo = api(sandbox, "POST", "/workorders", {"title": "t"})
    before = api(sandbox, "GET", f"/workorders/{wo['id']}")["workOrder"]["updatedAt"]
    time.sleep(0.01)

    api(sandbox, "POST", f"/workorders/{wo['id']}/comments", {"content": "c"})
    api(
        sandbox,
        "POST",
        f"/workorders/{wo['id']}/costs",
        {"type": "TIME", "costType": "WORK", "durationTotal": 60},
    )
    after_notes = api(sandbox, "GET", f"/workorders/{wo['id']}")["workOrder"]
    api(sandbox, "PATCH", f"/workorders/{wo['id']}", {"priority": "LOW"})
    after_edit = api(sandbox, "GET", f"/workorders/{wo['id']}")["workOrder"]

    assert after_notes["updatedAt"] == before
    assert after_notes["lastMessageSentAt"]
    assert after_edit["updatedAt"] > before


@pytest.mark.parametrize(
    ("faults", "expected"),
    [
        pytest.param({"duplicate": 1}, ["A", "A", "B"], id="duplicate"),
        pytest.param({"drop": 1}, ["B"], id="drop"),
        pytest.param({"reorder": 1}, ["B", "A"], id="reorder"),
        pytest.param({"delay": 1, "delay_seconds": 0.5}, ["B", "A"], id="delay"),
    ],
)
def test_fault_switches(
    sandbox: RunningSandbox,
    receiver: Receiver,
    faults: dict,
    expected: list[str],  # type: ignore[type-arg]
) -> None:
    """Each fault switch bends the next deliveries as it says."""
    subscribe(sandbox, receiver, "NEW_WORK_ORDER", options={"serializeEntity": True})
    httpx.post(sandbox.url + "/_sandbox/faults", json=faults)

    api(sandbox, "POST", "/workorders", {"title": "A"})
    api(sandbox, "POST", "/workorders", {"title": "B"})
    settle(sandbox)

    assert [b["newWorkOrder"]["title"] for b in receiver.bodies()] == expected


def test_rate_limit_answers_429_with_headers(sandbox: RunningSandbox) -> None:
    """Over the limit the sandbox answers 429 with X-Rate-Limit-* headers."""
    httpx.post(sandbox.url + "/_sandbox/rate-limit", json={"limit": 2, "window": 60})

    answers = [
        httpx.get(sandbox.api_url + "/assets", headers=sandbox.auth) for _ in range(3)
    ]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["x-rate-limit-remaining"] == "0"
    assert 0 < int(answers[2].headers["x-rate-limit-reset"]) <= 60


def test_scenario_plays_plant_life(sandbox: RunningSandbox, receiver: Receiver) -> None:
    """The plant-day scenario fires the deliveries a real plant would."""
    for event in (
        "NEW_WORK_ORDER",
        "WORK_ORDER_STATUS_CHANGE",
        "NEW_WORK_REQUEST",
        "WORK_REQUEST_STATUS_CHANGE",
        "PART_QUANTITY_CHANGE",
        "ASSET_STATUS_CHANGE",
    ):
        subscribe(sandbox, receiver, event)

    result = CliRunner().invoke(
        sandbox_group,
        [
            "scenario",
            "plant-day",
            "--url",
            sandbox.api_url,
            "--api-key",
            sandbox.api_key,
        ],
    )
    settle(sandbox)

    assert result.exit_code == 0, result.output
    types = [b["eventType"] for b in receiver.bodies()]
    assert types.count("NEW_WORK_ORDER") == 4
    assert {
        "NEW_WORK_REQUEST",
        "WORK_REQUEST_STATUS_CHANGE",
        "PART_QUANTITY_CHANGE",
        "ASSET_STATUS_CHANGE",
    } <= set(types)
    skipped = [b for b in receiver.bodies() if b.get("newSubStatus") == "SKIPPED"]
    assert len(skipped) == 1


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["scenario", "nope"], id="unknown-scenario"),
        pytest.param(
            ["scenario", "breakdown", "--url", "http://127.0.0.1:9/v1"],
            id="unreachable",
        ),
    ],
)
def test_cli_errors_are_one_line(args: list[str]) -> None:
    """CLI errors are a single line on stderr and a non-zero exit, no traceback."""
    result = CliRunner().invoke(sandbox_group, args)

    assert result.exit_code != 0
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
