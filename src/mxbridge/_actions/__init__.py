"""Built-in actions that rules in ``mxbridge.toml`` run: no Python needed.

Each action is built once from a rule's ``settings`` (a mistake is a
`ConfigError` naming the key) and then run for every event the rule lets by.
Failures steer the worker like a handler's: `RetryableError` retries (after
``retry_after`` when the far end said so), `PermanentError` goes dead at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from mxbridge._actions._base import Action
from mxbridge._actions._context import (
    DEFAULT_APP_URL,
    ActionContext,
    Templates,
    record_of,
)
from mxbridge._actions._http import build_http
from mxbridge._actions._log import build_log
from mxbridge._actions._mirror import build_mirror
from mxbridge._actions._mirror_db import MirrorDatabase
from mxbridge._actions._report import build_report, render_report, report_data
from mxbridge._actions._slack import build_slack

__all__ = [
    "ACTIONS",
    "DEFAULT_APP_URL",
    "Action",
    "ActionBuilder",
    "ActionContext",
    "MirrorDatabase",
    "Templates",
    "record_of",
    "render_report",
    "report_data",
]

ActionBuilder = Callable[[Mapping[str, Any], Mapping[str, str], Templates], Action]

ACTIONS: dict[str, ActionBuilder] = {
    "http": build_http,
    "log": build_log,
    "mirror": build_mirror,
    "report": build_report,
    "slack": build_slack,
}
"""Every built-in action by the name a rule gives in ``action``."""
