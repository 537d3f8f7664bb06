"""Registering handlers and routing events to them."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from mxbridge import Bridge, Event
from mxbridge._errors import ConfigError
from mxbridge._events import dead_delivery_event, parse_event
from mxbridge._service import load_bridge

NOW = datetime(2026, 9, 21, tzinfo=UTC)
STATUS_DONE = (
    b'{"eventType":"WORK_ORDER_STATUS_CHANGE","workOrderId":1,'
    b'"oldStatus":"IN_PROGRESS","newStatus":"DONE"}'
)


def event(raw: bytes = STATUS_DONE) -> Event:
    """An event parsed from `raw`."""
    return parse_event(raw, source="default", received_at=NOW)


@pytest.mark.parametrize(
    "pattern",
    [
        pytest.param("WORK_ORDER_STATUS_CHANGE", id="maintainx-name"),
        pytest.param("workorder.status_changed", id="alias"),
        pytest.param("workorder.completed", id="derived-alias"),
        pytest.param("workorder.*", id="glob"),
        pytest.param("WORK_ORDER_*", id="maintainx-glob"),
        pytest.param("*", id="star"),
    ],
)
def test_a_status_change_matches_every_way_of_naming_it(pattern: str) -> None:
    """Handlers subscribe by MaintainX name, alias or glob."""
    bridge = Bridge()
    bridge.add(lambda e: None, pattern, name="h")

    assert bridge.route(event()) == ["h"]


def test_routing_keeps_registration_order_and_skips_others() -> None:
    """Only matching handlers are routed, in the order they were registered."""
    bridge = Bridge()

    @bridge.on("workorder.created")
    def created(e: Event) -> None: ...

    @bridge.on("workorder.*")
    async def anything(e: Event) -> None: ...

    @bridge.on("request.*", "asset.*")
    def other(e: Event) -> None: ...

    assert [h.split(".")[-1] for h in bridge.route(event())] == ["anything"]
    assert bridge.get(bridge.route(event())[0]) is not None
    assert bridge.get(bridge.route(event())[0]).is_async  # type: ignore[union-attr]


def test_unknown_types_reach_star_handlers() -> None:
    """A type nobody has seen is routed to `*` like any other."""
    bridge = Bridge()
    bridge.add(lambda e: None, "*", name="all")
    bridge.add(lambda e: None, "workorder.*", name="wo")

    assert bridge.route(event(b'{"eventType":"BRAND_NEW"}')) == ["all"]


def test_internal_events_go_only_to_handlers_that_name_them() -> None:
    """mxbridge.delivery.dead reaches `mxbridge.*` handlers, not `*` ones."""
    bridge = Bridge()
    bridge.add(lambda e: None, "*", name="all")
    bridge.add(lambda e: None, "mxbridge.delivery.dead", name="alarm")
    dead = dead_delivery_event(
        delivery_id=1, handler="h", attempts=3, error="boom", failed=event(), now=NOW
    )

    assert bridge.route(dead) == ["alarm"]
    assert dead.payload["event"]["id"] == event().id


def test_handler_names_are_unique_and_patterns_required() -> None:
    """Two handlers under one name, or a handler with no pattern, are refused."""
    bridge = Bridge()
    bridge.add(lambda e: None, "*", name="h")

    with pytest.raises(ValueError, match="already registered"):
        bridge.add(lambda e: None, "*", name="h")
    with pytest.raises(ValueError, match="at least one"):
        bridge.add(lambda e: None, name="other")


def test_default_handler_name_is_module_and_qualname() -> None:
    """The stored handler name is stable: module plus qualified name."""
    bridge = Bridge()

    @bridge.on("*")
    def mine(e: Event) -> None: ...

    assert bridge.names() == [f"{__name__}.{mine.__qualname__}"]


@pytest.mark.parametrize(
    ("source", "spec", "message"),
    [
        pytest.param(
            "x = (\n", "app.py", "failed while loading: SyntaxError", id="syntax"
        ),
        pytest.param(
            'raise RuntimeError("no ERP url")\n',
            "app.py",
            "failed while loading: RuntimeError: no ERP url",
            id="raises",
        ),
        pytest.param("thing = 3\n", "app.py:nothere", "has no 'nothere'", id="missing"),
        pytest.param(
            "thing = 3\n",
            "app.py:thing",
            "'thing' is a int, not a Bridge",
            id="not-a-bridge",
        ),
        pytest.param("", "nope.py", "/nope.py does not exist", id="no-file"),
    ],
)
def test_an_app_that_does_not_load_says_why(
    tmp_path: Path, source: str, spec: str, message: str
) -> None:
    """Whatever is wrong with the app file, a ConfigError saying what."""
    (tmp_path / "app.py").write_text(source)

    with pytest.raises(ConfigError, match=re.escape(message)):
        load_bridge(f"{tmp_path}/{spec}")


def test_patterns_no_known_event_matches_are_named() -> None:
    """A typo in an event name is found before any event arrives."""
    bridge = Bridge()
    for pattern in (
        "workorder.craeted",
        "NOT_A_TYPE",
        "workorder.*",
        "*",
        "WORK_ORDER_CHANGE",
        "workorder.completed",
        "mxbridge.delivery.dead",
    ):
        bridge.add(lambda event: None, pattern, name=pattern)

    assert bridge.unknown_patterns() == [
        ("workorder.craeted", "workorder.craeted"),
        ("NOT_A_TYPE", "NOT_A_TYPE"),
    ]


def test_an_async_condition_is_refused() -> None:
    """Its coroutine would count as true: the handler would always run."""
    bridge = Bridge()

    async def never(event: Event) -> bool:
        return False

    with pytest.raises(TypeError, match="not an async one"):
        bridge.add(lambda event: None, "*", when=never)


def test_an_object_with_an_async_call_is_an_async_handler() -> None:
    """Run on the event loop and awaited, not called in a thread and dropped."""

    class Notifier:
        async def __call__(self, event: Event) -> None:
            return None

    assert Bridge().add(Notifier(), "*", name="n").is_async
