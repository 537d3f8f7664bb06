"""Parsing verified bodies into events: names, resources, ids and times."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from conftest import FIXTURES
from mxbridge._errors import PayloadError
from mxbridge._events import (
    KNOWN_EVENT_TYPES,
    event_names,
    make_event_id,
    parse_event,
    resolve_event_type,
)

RECEIVED = datetime(2026, 9, 21, 16, 0, tzinfo=UTC)

EXPECTED = [
    pytest.param(
        "new_work_order",
        ("NEW_WORK_ORDER", "workorder.created"),
        ("workorder", "118000101"),
        id="new-work-order",
    ),
    pytest.param(
        "new_work_order_serialized",
        ("NEW_WORK_ORDER", "workorder.created"),
        ("workorder", "118000102"),
        id="new-work-order-serialized",
    ),
    pytest.param(
        "work_order_status_change_in_progress",
        ("WORK_ORDER_STATUS_CHANGE", "workorder.status_changed"),
        ("workorder", "118000102"),
        id="status-in-progress",
    ),
    pytest.param(
        "work_order_status_change_done",
        ("WORK_ORDER_STATUS_CHANGE", "workorder.status_changed", "workorder.completed"),
        ("workorder", "118000102"),
        id="status-done",
    ),
    pytest.param(
        "work_order_change_assignees",
        ("WORK_ORDER_CHANGE", "workorder.updated"),
        ("workorder", "118000101"),
        id="change-assignees",
    ),
    pytest.param(
        "work_order_change_bare",
        ("WORK_ORDER_CHANGE", "workorder.updated"),
        ("workorder", "118000101"),
        id="change-bare",
    ),
    pytest.param(
        "work_order_delete",
        ("WORK_ORDER_DELETE", "workorder.deleted"),
        ("workorder", "118000099"),
        id="delete",
    ),
    pytest.param(
        "new_work_request",
        ("NEW_WORK_REQUEST", "request.created"),
        ("request", "5300871"),
        id="new-request",
    ),
    pytest.param(
        "asset_status_change",
        ("ASSET_STATUS_CHANGE", "asset.status_changed", "asset.updated"),
        ("asset", "90211"),
        id="asset-status",
    ),
    pytest.param(
        "part_quantity_change",
        ("PART_QUANTITY_CHANGE", "part.quantity_changed"),
        ("part", "66012"),
        id="part-quantity",
    ),
]


@pytest.mark.parametrize(("name", "names", "resource"), EXPECTED)
def test_fixtures_parse_to_their_names_and_resources(
    name: str, names: tuple[str, ...], resource: tuple[str, str]
) -> None:
    """Every fixture parses to the names of DESIGN.md's table and its record."""
    raw = (FIXTURES / "bodies" / f"{name}.json").read_bytes()

    event = parse_event(raw, source="default", received_at=RECEIVED)

    assert event.names == names
    assert (event.resource_kind, event.resource_id) == resource
    assert event.raw == raw
    assert event.payload == json.loads(raw)


def test_every_fixture_is_covered() -> None:
    """The table above names every body in the shared fixtures."""
    bodies = {p.stem for p in (FIXTURES / "bodies").glob("*.json")}

    assert bodies == {p.values[0] for p in EXPECTED}


def test_event_facts_come_from_the_payload() -> None:
    """Org, actor and occurred-at come from the delivery itself."""
    raw = (FIXTURES / "bodies" / "work_order_status_change_done.json").read_bytes()

    event = parse_event(raw, source="default", received_at=RECEIVED)

    assert event.event_type == "WORK_ORDER_STATUS_CHANGE"
    assert event.org_id == 48213
    assert event.actor_id == 520044
    assert event.occurred_at == datetime(2026, 9, 21, 15, 2, 44, 918000, tzinfo=UTC)
    assert event.received_at == RECEIVED


@pytest.mark.parametrize(
    "org_id",
    [
        pytest.param(2**63, id="over-64-bits"),
        pytest.param(-(2**63) - 1, id="under-64-bits"),
        pytest.param(True, id="boolean"),
    ],
)
def test_an_org_id_no_64_bit_column_holds_is_none(org_id: object) -> None:
    """An org id outside a signed 64-bit integer is no id: None, not a store error."""
    raw = json.dumps({"eventType": "NEW_WORK_ORDER", "orgId": org_id}).encode()

    event = parse_event(raw, source="default", received_at=RECEIVED)

    assert event.org_id is None


def test_delete_without_org_still_parses() -> None:
    """A payload missing optional facts gets None, not an error."""
    raw = (FIXTURES / "bodies" / "work_order_delete.json").read_bytes()

    event = parse_event(raw, source="default", received_at=RECEIVED)

    assert event.org_id is None
    assert event.actor_id == 520017


@pytest.mark.parametrize(
    ("sub_status", "outcome"),
    [
        pytest.param("CANCELED", "workorder.canceled", id="canceled"),
        pytest.param("SKIPPED", "workorder.skipped", id="skipped"),
    ],
)
def test_sub_status_names(sub_status: str, outcome: str) -> None:
    """A DONE with a sub-status is canceled or skipped, not completed."""
    payload = {"newStatus": "DONE", "newSubStatus": sub_status}

    names = event_names("WORK_ORDER_STATUS_CHANGE", payload)

    assert outcome in names
    assert "workorder.completed" not in names


def test_every_spec_type_has_a_dotted_alias() -> None:
    """Each of the spec's webhook types answers to at least one alias."""
    for event_type in KNOWN_EVENT_TYPES:
        names = event_names(event_type, {})
        assert names[0] == event_type
        assert any("." in name for name in names[1:]), event_type


def test_request_ids_are_found_under_either_name() -> None:
    """MaintainX names a request's id workRequestId or requestId."""
    raw = b'{"eventType":"WORK_REQUEST_STATUS_CHANGE","requestId":77,"newStatus":"X"}'

    event = parse_event(raw, source="s", received_at=RECEIVED)

    assert (event.resource_kind, event.resource_id) == ("request", "77")


def test_an_unknown_type_keeps_its_name_and_guesses_its_record() -> None:
    """A type nobody has seen is stored like any other, under its own name."""
    raw = b'{"eventType":"NEW_SPARE_TANK","spareTankId":3,"occurredAt":"bad"}'

    event = parse_event(raw, source="s", received_at=RECEIVED)

    assert event.names == ("NEW_SPARE_TANK",)
    assert (event.resource_kind, event.resource_id) == ("sparetank", "3")
    assert event.occurred_at == RECEIVED


def test_occurred_at_falls_back_to_other_timestamps() -> None:
    """PART_TRANSFER carries triggeredAt instead of occurredAt."""
    raw = b'{"eventType":"PART_TRANSFER","triggeredAt":"2026-09-21T10:00:00.000Z"}'

    event = parse_event(raw, source="s", received_at=RECEIVED)

    assert event.occurred_at == datetime(2026, 9, 21, 10, 0, tzinfo=UTC)


def test_simple_format_from_the_guide() -> None:
    """{"event", "data", "timestamp"} parses with its alias and the record's id."""
    raw = (
        b'{"event":"workorder.created","timestamp":"2026-09-21T09:00:00Z",'
        b'"data":{"id":4242,"title":"Belt slipping","orgId":9}}'
    )

    event = parse_event(raw, source="s", received_at=RECEIVED)

    assert event.event_type == "workorder.created"
    assert event.names == ("NEW_WORK_ORDER", "workorder.created")
    assert event.resource_id == "4242"
    assert event.org_id == 9
    assert event.occurred_at == datetime(2026, 9, 21, 9, 0, tzinfo=UTC)
    assert event.data["title"] == "Belt slipping"


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(b"[1, 2]", id="array"),
        pytest.param(b'"text"', id="string"),
        pytest.param(b"not json", id="not-json"),
        pytest.param(b"", id="empty"),
        pytest.param(b"\xff\xfe", id="not-utf8"),
        pytest.param(b'{"orgId": 1}', id="no-event-type"),
        pytest.param(b'{"eventType": 7}', id="event-type-not-string"),
        pytest.param(b"[" * 100000, id="deep-nesting"),
    ],
)
def test_bodies_that_are_not_events_are_payload_errors(raw: bytes) -> None:
    """Anything but a JSON object naming its event is a PayloadError."""
    with pytest.raises(PayloadError):
        parse_event(raw, source="s", received_at=RECEIVED)


def test_event_id_is_a_digest_of_source_and_body() -> None:
    """The same delivery twice has one id; another source or body another."""
    first = make_event_id("a", b"{}")

    assert make_event_id("a", b"{}") == first
    assert make_event_id("b", b"{}") != first
    assert make_event_id("a", b"{} ") != first


def test_event_id_header_wins_and_is_checked() -> None:
    """x-maintainx-event-id is used as is when present and sane."""
    assert make_event_id("a", b"{}", " evt-123 ") == "evt-123"
    with pytest.raises(PayloadError):
        make_event_id("a", b"{}", "has space")
    with pytest.raises(PayloadError):
        make_event_id("a", b"{}", "x" * 201)


def test_resolve_event_type() -> None:
    """A type resolves to itself, a primary alias to its type, others to None."""
    assert resolve_event_type("NEW_WORK_ORDER") == "NEW_WORK_ORDER"
    assert resolve_event_type("workorder.created") == "NEW_WORK_ORDER"
    assert resolve_event_type("workorder.nothing") is None
