"""Building rules: every mistake stops the start, naming the rule and the key."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from mxbridge._bridge import Bridge
from mxbridge._errors import ConfigError
from mxbridge._rules import build_rules, install_rules

ENV = {"SLACK_URL": "http://127.0.0.1:9/slack"}
GOOD: dict[str, Any] = {
    "name": "urgent",
    "events": ["workorder.created"],
    "when": [{"path": "record.priority", "equals": "HIGH"}],
    "action": "slack",
    "settings": {"webhook_url_env": "SLACK_URL"},
}


def _second(**changes: Any) -> list[dict[str, Any]]:
    return [GOOD, {**GOOD, "name": "second", **changes}]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        pytest.param({"action": "fax"}, "action: unknown action 'fax'", id="action"),
        pytest.param(
            {"when": [{"path": "record..x", "present": True}]},
            "when.0: path",
            id="path",
        ),
        pytest.param(
            {"when": [{"path": "record.x"}]},
            "when.0: Value error, give exactly one",
            id="test",
        ),
        pytest.param(
            {"settings": {"webhook_url_env": "SLACK_URL", "template": "{% if %}"}},
            "settings.template: template does not compile",
            id="template",
        ),
        pytest.param(
            {"settings": {"webhook_url_env": "NOT_SET"}},
            "environment variable NOT_SET is not set",
            id="env",
        ),
        pytest.param({"colour": "red"}, "colour: unknown key", id="key"),
        pytest.param(
            {"events": ["workorder.complete"]}, "unknown event name", id="typo"
        ),
        pytest.param({"events": []}, "events: List should have at least 1", id="none"),
        pytest.param({"timezone": "Mars/Olympus"}, "unknown time zone", id="zone"),
        pytest.param({"name": "urgent"}, "rule 1 (urgent) has the same name", id="dup"),
    ],
)
def test_mistakes_name_the_rule_and_the_key(
    changes: dict[str, Any], message: str
) -> None:
    """The error starts with the rule's position and name, then key and reason."""
    with pytest.raises(ConfigError, match="rule 2") as caught:
        build_rules(_second(**changes), ENV)

    assert message in str(caught.value)


def test_each_rule_is_its_own_handler() -> None:
    """rule:<name>, or rule:<action>-<digest> for an unnamed rule, whatever its
    position; user handlers stay."""
    user = Bridge()
    user.add(lambda event: None, "*", name="mine")
    unnamed = {k: v for k, v in GOOD.items() if k != "name"}

    bridge = install_rules(user, build_rules([GOOD, unnamed], ENV))
    alone = install_rules(Bridge(), build_rules([unnamed], ENV))

    names = list(bridge.names())
    assert names[:2] == ["mine", "rule:urgent"]
    assert names[2].startswith(f"rule:{GOOD['action']}-")
    assert list(alone.names()) == [names[2]]
    assert len(user) == 1


def test_rules_ask_for_enrichment_by_default() -> None:
    """Rules enrich by default; enrich=false opts out."""
    quiet = {**GOOD, "name": "quiet", "enrich": False}

    bridge = install_rules(Bridge(), build_rules([GOOD, quiet], ENV))

    assert bridge.get("rule:urgent").enrich is True
    assert bridge.get("rule:quiet").enrich is False


def test_the_shipped_example_rules_build(tmp_path: Path) -> None:
    """examples/rules.toml builds with its environment variables set."""
    from mxbridge._config import load_config

    env = {
        "SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x",
        "ERP_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "ERP_TOKEN": "Bearer t",
    }
    config = load_config(Path(__file__).parents[2] / "examples" / "rules.toml", env)

    rules = build_rules(config.rules, env)

    assert [r.handler_name for r in rules] == [
        "rule:urgent-to-slack",
        "rule:erp-sync",
        "rule:warehouse",
        "rule:completion-report",
        "rule:dead-to-slack",
    ]
