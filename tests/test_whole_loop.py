"""The whole loop on one machine: MaintainX (the sandbox) to Slack (a fake).

A thin NEW_WORK_ORDER delivery carries no priority. The rule "alert on HIGH
priority" can only decide after enrichment fetches the work order from the API,
so this test crosses every part: sandbox deliveries, a managed subscription's
secret, the edge, the store, the worker, enrichment and the slack action.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import API_KEY, Receiver, RunningSandbox, read_store, wait_for
from mxbridge import Bridge, Event
from mxbridge._cli import main
from mxbridge._config import load_config
from mxbridge._sandbox import serve_in_thread
from mxbridge._service import Service
from mxkit import api

CONFIG = """
[store]
url = "sqlite:///{db}"

[worker]
poll_interval = 0.05

[maintainx]
base_url = "{api}"

[[rules]]
name = "urgent"
events = ["workorder.created"]
when = [{{ path = "record.priority", equals = "HIGH" }}]
action = "slack"
settings = {{ webhook_url_env = "SLACK_URL" }}
"""


def delivered(store_url: str) -> dict[str, int]:
    """Delivery counts by status in the store."""
    counts: dict[str, int] = read_store(store_url, lambda store: store.counts())
    return counts


def test_high_priority_breakdown_reaches_slack_after_enrichment(
    tmp_path: Path,
    sandbox: RunningSandbox,
    receiver: Receiver,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only the HIGH work order is posted to Slack, with its fetched title."""
    monkeypatch.setenv("MAINTAINX_API_KEY", API_KEY)
    monkeypatch.setenv("SLACK_URL", receiver.url + "/slack")
    path = tmp_path / "mxbridge.toml"
    path.write_text(CONFIG.format(db=tmp_path / "mx.db", api=sandbox.api_url))
    config = load_config(path)
    service = Service(config, Bridge())

    with serve_in_thread(service.app()) as url:
        hook = url + "/webhooks/maintainx/plant"
        answer = api(
            sandbox, "POST", "/subscriptions", {"type": "NEW_WORK_ORDER", "url": hook}
        )
        with pytest.raises(SystemExit) as imported:
            main(["subscriptions", "import", str(answer["id"]), "--config", str(path)])
        api(
            sandbox,
            "POST",
            "/workorders",
            {"title": "Compressor #2 leaking oil", "priority": "HIGH"},
        )
        api(
            sandbox,
            "POST",
            "/workorders",
            {"title": "Repaint railings", "priority": "LOW"},
        )
        wait_for(lambda: delivered(config.store.url).get("succeeded") == 2, timeout=20)

    assert imported.value.code == 0
    assert len(receiver.received) == 1
    message = receiver.received[0].body.decode()
    assert "Compressor #2 leaking oil" in message
    assert "Repaint railings" not in message


def test_serve_polls_by_itself_when_configured(
    tmp_path: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With [poll] interval set and no webhook at all, serve's own poller turns a
    new work order into an event that reaches a handler, with source poll."""
    monkeypatch.setenv("MAINTAINX_API_KEY", API_KEY)
    path = tmp_path / "mxbridge.toml"
    path.write_text(
        f'[store]\nurl = "sqlite:///{tmp_path / "mx.db"}"\n'
        "[worker]\npoll_interval = 0.05\n"
        f'[maintainx]\nbase_url = "{sandbox.api_url}"\n'
        "[poll]\ninterval = 0.3\nwalk = []\n"
    )
    bridge = Bridge()
    seen: list[Event] = []
    bridge.add(seen.append, "workorder.created", name="created")
    service = Service(load_config(path), bridge)
    title = "Hydraulic press: pressure drop"

    with serve_in_thread(service.app()):
        created = api(sandbox, "POST", "/workorders", {"title": title})
        wanted = str(created["id"])
        wait_for(lambda: wanted in {e.resource_id for e in seen}, timeout=20)

    [event] = [e for e in seen if e.resource_id == wanted]
    assert event.source == "poll"
    assert event.event_type == "NEW_WORK_ORDER"
