"""The http action against an ERP endpoint that verifies Standard Webhooks."""

from __future__ import annotations

import json

import pytest

from fake_endpoints import ERP_SECRET, ctx, fixture_event, serve_endpoint
from mxbridge._actions import Templates
from mxbridge._actions._http import build_http
from mxbridge._errors import ConfigError, PermanentError, RetryableError

ENV = {"ERP_SECRET": ERP_SECRET, "ERP_TOKEN": "Bearer erp-token"}


def _action(url: str, **settings: object):  # type: ignore[no-untyped-def]
    base = {"url": url, "secret_env": "ERP_SECRET"}
    return build_http(base | settings, ENV, Templates())


async def test_signed_event_is_verified_by_the_receiver() -> None:
    """The ERP verifies the signature with standardwebhooks and gets the event."""
    event = fixture_event("work_order_status_change_done")
    with serve_endpoint(verify_secret=ERP_SECRET) as erp:
        await _action(erp.url, headers_env={"Authorization": "ERP_TOKEN"}).run(
            ctx(event, "rule:erp")
        )

    headers, body = erp.requests[0]
    sent = json.loads(body)
    assert erp.verified == [sent]
    assert headers["webhook-id"] == f"{event.id}.rule:erp"
    assert headers["authorization"] == "Bearer erp-token"
    assert sent["type"] == "WORK_ORDER_STATUS_CHANGE"
    assert sent["payload"]["newStatus"] == "DONE"
    assert "workorder.completed" in sent["names"]


async def test_template_body_is_sent_as_json() -> None:
    """A template renders the body; it must be JSON."""
    event = fixture_event("work_order_status_change_done")
    template = '{"wo": {{ event.resource_id | json }}, "to": "{{ payload.newStatus }}"}'
    with serve_endpoint(verify_secret=ERP_SECRET) as erp:
        await _action(erp.url, template=template).run(ctx(event))

    assert json.loads(erp.requests[0][1]) == {"wo": "118000102", "to": "DONE"}


async def test_template_that_is_not_json_is_permanent() -> None:
    """A body that does not parse would never parse: dead at once."""
    event = fixture_event("work_order_status_change_done")
    with pytest.raises(PermanentError, match="did not render JSON"):
        await _action("http://127.0.0.1:9/x", template="not json").run(ctx(event))


@pytest.mark.parametrize(
    ("status", "error"),
    [
        pytest.param(400, PermanentError, id="400-permanent"),
        pytest.param(422, PermanentError, id="422-permanent"),
        pytest.param(408, RetryableError, id="408-retries"),
        pytest.param(429, RetryableError, id="429-retries"),
        pytest.param(502, RetryableError, id="502-retries"),
    ],
)
async def test_answers_decide_retry_or_dead(
    status: int, error: type[Exception]
) -> None:
    """4xx other than 408/429 is permanent with the answer recorded; rest retry."""
    event = fixture_event("work_order_status_change_done")
    with serve_endpoint(verify_secret=ERP_SECRET) as erp:
        erp.answer(status, '{"error": "unknown cost center"}')
        with pytest.raises(error, match=f"answered {status}: .*unknown cost center"):
            await _action(erp.url).run(ctx(event))


async def test_same_webhook_id_on_every_retry() -> None:
    """The receiver can deduplicate: a retry carries the same webhook-id."""
    event = fixture_event("work_order_status_change_done")
    action = _action("http://unused")
    with serve_endpoint(verify_secret=ERP_SECRET) as erp:
        action.url = erp.url
        erp.answer(503)
        with pytest.raises(RetryableError):
            await action.run(ctx(event))
        await action.run(ctx(event))

    ids = {headers["webhook-id"] for headers, _ in erp.requests}
    assert len(erp.requests) == 2
    assert len(ids) == 1


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        pytest.param({"url_env": "NOPE"}, "exactly one of url and url_env", id="both"),
        pytest.param({"secret_env": "MISSING"}, "MISSING is not set", id="env"),
        pytest.param({"method": "GET"}, "settings.method", id="method"),
        pytest.param({"colour": "red"}, "settings.colour: unknown key", id="key"),
        pytest.param({"template": "{{ x"}, "does not compile", id="template"),
    ],
)
def test_bad_settings_are_config_errors(
    settings: dict[str, object], message: str
) -> None:
    """Each mistake names its key."""
    with pytest.raises(ConfigError, match=message):
        build_http({"url": "https://erp.example.net"} | settings, ENV, Templates())


def test_preview_redacts_header_values() -> None:
    """rules test shows header names, never values from the environment."""
    event = fixture_event("work_order_status_change_done")
    action = _action(
        "https://erp.example.net", headers_env={"Authorization": "ERP_TOKEN"}
    )

    shown = action.preview(ctx(event))

    assert "Authorization: <redacted>" in shown
    assert "erp-token" not in shown
