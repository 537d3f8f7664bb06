"""The guide's four example rules, end to end: signed deliveries through a real
edge, the store and the worker, to a fake Slack, an ERP, a mirror and reports."""

from __future__ import annotations

import json
import time
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from fake_endpoints import ERP_SECRET, FIXTURES, Endpoint, serve_endpoint
from mxbridge._actions import MirrorDatabase
from mxbridge._bridge import Bridge
from mxbridge._config import Config
from mxbridge._sandbox import serve_in_thread
from mxbridge._service import Service
from mxbridge._signing import sign_delivery
from mxbridge._store import SqlStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "rules.toml"
SECRET = json.loads((FIXTURES / "manifest.json").read_text())["secret"]


def _config(tmp_path: Path, slack: Endpoint, erp: Endpoint) -> Config:
    """examples/rules.toml, pointed at loopback endpoints and tmp_path."""
    data = tomllib.loads(EXAMPLES.read_text())
    warehouse = f"sqlite:///{tmp_path / 'warehouse.db'}"
    rules = {rule["name"]: rule for rule in data["rules"]}
    rules["erp-sync"]["settings"]["url"] = erp.url
    rules["warehouse"]["settings"]["url"] = warehouse
    rules["completion-report"]["settings"].update(
        folder=str(tmp_path / "reports"), history={"url": warehouse}
    )
    for rule in data["rules"]:
        rule["enrich"] = False  # no MaintainX API here: records come in payloads
    data["sources"] = {"default": {"secrets": [SECRET]}}
    data["worker"] = {"poll_interval": 0.05}
    return Config.model_validate(data)


def _post(url: str, name: str) -> None:
    body = (FIXTURES / "bodies" / f"{name}.json").read_bytes()
    headers = sign_delivery(SECRET, int(time.time()), body, url)
    answer = httpx.post(url, content=body, headers=headers, timeout=10)
    assert answer.status_code < 300, answer.text


def _wait(condition: Callable[[], Any], limit: float = 20.0) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("the worker did not get there in time")
        time.sleep(0.05)


@pytest.mark.slow
def test_four_example_rules_from_signed_deliveries(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack for the HIGH new work order only; on completion the ERP gets a
    verified request, the mirror holds DONE with three history rows, and the
    report is written with the timeline the mirror kept."""
    with serve_endpoint() as slack, serve_endpoint(verify_secret=ERP_SECRET) as erp:
        monkeypatch.setenv("SLACK_WEBHOOK_URL", slack.url)
        monkeypatch.setenv("ERP_WEBHOOK_SECRET", ERP_SECRET)
        monkeypatch.setenv("ERP_TOKEN", "Bearer erp")
        config = _config(tmp_path, slack, erp)
        store = SqlStore(f"sqlite:///{tmp_path / 'store.db'}")
        service = Service(config, Bridge(), store=store, with_worker=True)
        mirror = MirrorDatabase(f"sqlite:///{tmp_path / 'warehouse.db'}")
        report = tmp_path / "reports" / "work-order-118000102.md"

        with serve_in_thread(service.app()) as base:
            edge = base + "/webhooks/maintainx"
            for name in ("new_work_order", "new_work_order_serialized"):
                _post(edge, name)
            _post(edge, "work_order_status_change_in_progress")
            _wait(lambda: len(mirror.history("workorder", "118000102")) == 2)
            _post(edge, "work_order_status_change_done")
            _wait(lambda: report.exists() and erp.verified)

        state = mirror.state("workorder", "118000102")
        mirror.dispose()

    assert len(slack.requests) == 1
    assert "Compressor #2 leaking oil" in slack.requests[0][1].decode()
    assert [body["type"] for body in erp.verified] == ["WORK_ORDER_STATUS_CHANGE"]
    assert erp.requests[0][0]["authorization"] == "Bearer erp"
    assert state is not None
    assert state["status"] == "DONE"
    text = report.read_text()
    assert "| IN_PROGRESS |" in text
    assert "OPEN → IN_PROGRESS" in text
