"""Structured logging with structlog: JSON when not on a terminal.

One logger for the package. Parts bind their context (event id, names, source,
handler) and log one line per delivery received and per handler attempt. A last
processor removes any value whose key looks like a secret or a signature, so a
careless ``log.info(..., secret=...)`` still prints nothing sensitive.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "get_logger", "redact"]

_SENSITIVE = ("secret", "signature", "authorization", "api_key", "password", "token")
_REDACTED = "[redacted]"


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """A structlog processor that hides values of secret-looking keys."""
    for key in list(event):
        if any(word in key.lower() for word in _SENSITIVE):
            event[key] = _REDACTED
    return event


def configure_logging(
    level: str = "info", fmt: str = "auto", stream: TextIO | None = None
) -> None:
    """Configure structlog and the standard library's root logger once."""
    out = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if as_json
        else structlog.dev.ConsoleRenderer(colors=out.isatty())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(out),
        cache_logger_on_first_use=False,
    )
    # Libraries (uvicorn, SQLAlchemy) log through the standard library; send their
    # lines through the same renderer.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def get_logger(name: str = "mxbridge") -> Any:
    """The package's structlog logger."""
    return structlog.get_logger(name)
