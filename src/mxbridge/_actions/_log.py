"""``log``: append the event as one JSON line to a file, for piping anywhere.

Delivery is at least once, so a retried or replayed event can appear twice;
readers deduplicate on ``id``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from mxbridge._actions._base import Settings, parse_settings
from mxbridge._actions._context import ActionContext, Templates, to_json
from mxbridge._errors import RetryableError

__all__ = ["LogAction", "build_log"]

_LOCK = threading.Lock()


class LogSettings(Settings):
    """Settings of the ``log`` action."""

    path: Path


class LogAction:
    """Appends one JSON line per event."""

    def __init__(self, settings: LogSettings) -> None:
        self.path = settings.path

    def line(self, ctx: ActionContext) -> str:
        """The line written for `ctx`, without its newline."""
        return to_json(ctx.as_json())

    async def run(self, ctx: ActionContext) -> None:
        """Append the line; a failing disk is retried."""
        await asyncio.to_thread(self._append, self.line(ctx))

    def _append(self, line: str) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with _LOCK, self.path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
        except OSError as exc:
            raise RetryableError(f"cannot append to {self.path}: {exc}") from exc

    def preview(self, ctx: ActionContext) -> str:
        """The line, and the file it would go to."""
        return f"append to {self.path}\n{self.line(ctx)}"


def build_log(
    settings: Mapping[str, Any], env: Mapping[str, str], templates: Templates
) -> LogAction:
    """Validate the settings."""
    return LogAction(parse_settings(LogSettings, settings))
