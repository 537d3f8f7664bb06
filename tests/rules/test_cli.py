"""`mxbridge rules check` and `mxbridge rules test` on good and bad configurations."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_endpoints import FIXTURES
from mxbridge._bridge import Bridge
from mxbridge._cli import main
from mxbridge._config import load_config
from mxbridge._errors import ConfigError
from mxbridge._service import Service

GOOD = """
[[rules]]
name = "urgent"
events = ["workorder.created"]
when = [{ path = "record.priority", equals = "HIGH" }]
action = "slack"
settings = { webhook_url_env = "SLACK_URL" }

[[rules]]
name = "erp"
events = ["workorder.completed"]
action = "http"
[rules.settings]
url = "https://erp.example.net/in"
headers_env = { Authorization = "TOKEN" }
"""


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as caught:
        main(args)
    out, err = capsys.readouterr()
    return int(caught.value.code or 0), out, err


@pytest.fixture
def good(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A configuration with two rules, and their environment."""
    monkeypatch.setenv("SLACK_URL", "https://hooks.slack.com/services/T/B/x")
    monkeypatch.setenv("TOKEN", "Bearer secret-token")
    path = tmp_path / "mxbridge.toml"
    path.write_text(GOOD)
    return path


def test_check_lists_the_rules(good: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A good configuration: one line per rule, then OK."""
    code, out, _ = _run(["rules", "check", "--config", str(good)], capsys)

    assert code == 0
    assert "rule 1 (urgent): slack on workorder.created when record.priority" in out
    assert "2 rule(s) OK" in out


@pytest.mark.parametrize(
    ("replace", "by", "message"),
    [
        pytest.param('"slack"', '"sms"', "rule 1 (urgent): action: unknown", id="act"),
        pytest.param(
            "record.priority", "priority", "rule 1 (urgent): when.0: path", id="p"
        ),
        pytest.param(
            'webhook_url_env = "SLACK_URL" }',
            'webhook_url_env = "SLACK_URL", template = "{{ record.title" }',
            "rule 1 (urgent): settings.template: template does not compile",
            id="template",
        ),
    ],
)
def test_check_refuses_a_mistake_in_one_line(
    good: Path,
    capsys: pytest.CaptureFixture[str],
    replace: str,
    by: str,
    message: str,
) -> None:
    """A bad rule: one line on stderr naming the rule, and exit 1."""
    good.write_text(GOOD.replace(replace, by, 1))

    code, _, err = _run(["rules", "check", "--config", str(good)], capsys)

    assert code == 1
    assert message in err
    assert err.count("\n") == 1


def test_serve_refuses_to_start_with_a_broken_rule(
    good: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The service serve builds stops at start, naming the rule's position."""
    monkeypatch.delenv("SLACK_URL")
    config = load_config(good)

    with pytest.raises(ConfigError, match=r"rule 1 \(urgent\): settings.webhook"):
        Service(config, Bridge(), with_worker=False)


def test_test_shows_what_fires_and_what_it_would_send(
    good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """For a completion from a file: the ERP rule fires, Slack's does not."""
    done = FIXTURES / "bodies" / "work_order_status_change_done.json"

    code, out, _ = _run(["rules", "test", str(done), "--config", str(good)], capsys)

    assert code == 0
    assert "rule 1 (urgent): events ['workorder.created'] do not match" in out
    assert "rule 2 (erp): fires: http" in out
    assert "POST https://erp.example.net/in" in out
    assert "Authorization: <redacted>" in out
    assert "secret-token" not in out
    assert '"newStatus": "DONE"' in out
    assert "1 of 2 rule(s) would fire" in out


def test_test_explains_a_false_condition(
    good: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A thin new work order has no record: the condition says what it found."""
    new = FIXTURES / "bodies" / "new_work_order.json"

    _, out, _ = _run(["rules", "test", str(new), "--config", str(good)], capsys)

    assert "condition false: record.priority is missing, wanted equals 'HIGH'" in out


def test_test_of_an_unknown_event_is_one_line(
    good: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Neither a file nor a stored event: one line, exit 1."""
    good.write_text(GOOD + f'\n[store]\nurl = "sqlite:///{tmp_path / "s.db"}"\n')

    code, _, err = _run(["rules", "test", "evt_nope", "--config", str(good)], capsys)

    assert code == 1
    assert "evt_nope: no such file, nor stored event" in err
