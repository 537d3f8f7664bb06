"""Pieces every ``mxbridge`` command group shares: options and formatting."""

from __future__ import annotations

from datetime import UTC, datetime

import click

__all__ = ["app_option", "config_option", "when"]

config_option = click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False),
    envvar="MXBRIDGE_CONFIG",
    help="Configuration file (default: ./mxbridge.toml when present).",
)
app_option = click.option(
    "--app",
    "app_spec",
    metavar="MODULE:BRIDGE",
    help="Handlers to load: module:attribute or path/to/file.py:attribute.",
)


def when(timestamp: float | None, never: str = "-") -> str:
    """A unix time as a UTC date and time, or `never` when there is none."""
    if timestamp is None:
        return never
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d %H:%M:%S")
