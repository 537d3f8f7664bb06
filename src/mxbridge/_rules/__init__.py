"""Rules: ``[[rules]]`` tables in ``mxbridge.toml`` that run built-in actions.

::

    [[rules]]
    name = "urgent-to-slack"
    events = ["workorder.created"]
    when = [{ path = "record.priority", equals = "HIGH" }]
    action = "slack"
    settings = { webhook_url_env = "SLACK_WEBHOOK_URL" }

Each rule is its own handler (``rule:<name>``), with the worker's retries,
dead-letter and replay; see docs/rules.md.
"""

from __future__ import annotations

from mxbridge._rules._build import (
    Rule,
    RuleConfig,
    Verdict,
    build_rules,
    install_rules,
    with_rules,
)

__all__ = [
    "Rule",
    "RuleConfig",
    "Verdict",
    "build_rules",
    "install_rules",
    "with_rules",
]
