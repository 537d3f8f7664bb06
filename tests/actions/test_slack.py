"""The slack action against a fake Slack on loopback."""

from __future__ import annotations

import json

import pytest

from fake_endpoints import ctx, fixture_event, serve_endpoint
from mxbridge._actions import Templates
from mxbridge._actions._slack import build_slack
from mxbridge._errors import ConfigError, PermanentError, RetryableError

RECORD = {
    "title": "Compressor #2 leaking oil",
    "priority": "HIGH",
    "asset": {"id": 90211, "name": "Compressor #2"},
    "location": {"id": 7001, "name": "Plant 1 - Compressor room"},
    "assignees": [
        {"id": 520044, "type": "USER", "firstName": "Ana", "lastName": "Ruiz"}
    ],
}


def _action(url: str, **settings: object):  # type: ignore[no-untyped-def]
    env = {"SLACK_URL": url}
    return build_slack({"webhook_url_env": "SLACK_URL", **settings}, env, Templates())


async def test_default_layout_names_title_priority_place_people_and_link() -> None:
    """Slack gets a header, priority, asset and location, who, and a link."""
    event = fixture_event("new_work_order", record=RECORD)
    with serve_endpoint() as slack:
        await _action(slack.url).run(ctx(event))

    body = json.loads(slack.requests[0][1])
    text = json.dumps(body)
    assert body["blocks"][0]["text"]["text"] == "Compressor #2 leaking oil"
    for expected in ("HIGH", "Compressor #2", "Plant 1 - Compressor room", "Ana Ruiz"):
        assert expected in text
    assert "https://app.getmaintainx.com/workorders/118000101" in text


async def test_template_replaces_the_layout() -> None:
    """A template renders with the event, the record and the link."""
    event = fixture_event("new_work_order", record=RECORD)
    template = "{{ record.title }} ({{ record.priority }}) {{ link }}"
    with serve_endpoint() as slack:
        await _action(slack.url, template=template).run(ctx(event))

    assert json.loads(slack.requests[0][1]) == {
        "text": "Compressor #2 leaking oil (HIGH) "
        "https://app.getmaintainx.com/workorders/118000101"
    }


async def test_429_retries_after_slacks_retry_after() -> None:
    """Slack's 429 becomes a retry after its Retry-After seconds."""
    event = fixture_event("new_work_order")
    with serve_endpoint() as slack:
        slack.answer(429, "rate_limited", **{"Retry-After": "7"})
        with pytest.raises(RetryableError) as caught:
            await _action(slack.url).run(ctx(event))

    assert caught.value.retry_after == 7.0


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(500, RetryableError, id="500-retries"),
        pytest.param(503, RetryableError, id="503-retries"),
        pytest.param(404, PermanentError, id="404-no_service-is-permanent"),
        pytest.param(400, PermanentError, id="400-invalid_payload-is-permanent"),
    ],
)
async def test_failures_are_retryable_or_permanent(
    status: int, error: type[Exception]
) -> None:
    """5xx is retried; a 4xx other than 408/429 is permanent, its answer kept."""
    event = fixture_event("new_work_order")
    with serve_endpoint() as slack:
        slack.answer(status, "no_service")
        with pytest.raises(error, match=f"answered {status}: no_service"):
            await _action(slack.url).run(ctx(event))


async def test_unreachable_slack_is_retryable() -> None:
    """A connection refused is retried, not dead."""
    event = fixture_event("new_work_order")
    with pytest.raises(RetryableError, match="unreachable"):
        await _action("http://127.0.0.1:9/hook").run(ctx(event))


def test_missing_environment_variable_is_a_config_error() -> None:
    """The URL must be in the environment at start."""
    with pytest.raises(ConfigError, match="SLACK_URL is not set"):
        build_slack({"webhook_url_env": "SLACK_URL"}, {}, Templates())


def test_dead_delivery_event_has_its_own_message() -> None:
    """mxbridge.delivery.dead reads as a failure notice."""
    from datetime import UTC, datetime

    from mxbridge._events import dead_delivery_event

    failed = fixture_event("new_work_order")
    dead = dead_delivery_event(
        delivery_id=7,
        handler="rule:erp-sync",
        attempts=11,
        error="PermanentError: 400",
        failed=failed,
        now=datetime.now(UTC),
    )

    message = _action("http://127.0.0.1:9/x").message(ctx(dead))

    assert "rule:erp-sync" in message["text"]
    assert failed.id in message["text"]
