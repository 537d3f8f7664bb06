"""Structured logging with structlog: JSON when not on a terminal.

One logger for the package. Parts bind their context (event id, names, source,
handler) and log one line per delivery received and per handler attempt. A last
processor removes any value whose key looks like a secret or a signature, so a
careless ``log.info(..., secret=...)`` still prints nothing sensitive.

Writing a log line never raises: a full disk under the log file or a closed
pipe loses the line, not the delivery being acknowledged or the worker's claim
loop. Lines lost that way are counted (`log_lines_lost`).
"""

from __future__ import annotations

import functools
import logging
import sys
import threading
from collections.abc import Callable, MutableMapping
from typing import IO, Any, TextIO

import orjson
import structlog

__all__ = ["configure_logging", "get_logger", "log_lines_lost", "redact"]

_SENSITIVE = ("secret", "signature", "authorization", "api_key", "password", "token")
_REDACTED = "[redacted]"


@functools.lru_cache(maxsize=1024)
def _is_sensitive(key: str) -> bool:
    lowered = key.lower()
    return any(word in lowered for word in _SENSITIVE)


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> Any:
    """A structlog processor that hides values of secret-looking keys."""
    for key in event:
        if _is_sensitive(key):
            event[key] = _REDACTED
    return event


class _Sink:
    """A stream whose writes never raise; the lines it could not write are counted.

    Each line ends with a flush (structlog's loggers and the standard library's
    handler flush after every line), so a line is lost at most once per flush.
    """

    dropped = 0
    _count_lock = threading.Lock()

    def __init__(self, stream: IO[Any]) -> None:
        self._write: Callable[[Any], int] = stream.write
        self._flush: Callable[[], None] = stream.flush
        self._failed = False

    def write(self, data: Any) -> int:
        try:
            return self._write(data)
        except (OSError, ValueError):  # full disk, closed pipe, closed file
            self._failed = True
            return 0

    def flush(self) -> None:
        try:
            self._flush()
        except (OSError, ValueError):
            self._failed = True
        if self._failed:
            self._failed = False
            with _Sink._count_lock:
                _Sink.dropped += 1


def log_lines_lost() -> int:
    """Log lines lost since the process started (full disk, closed stream)."""
    return _Sink.dropped


def configure_logging(
    level: str = "info", fmt: str = "auto", stream: TextIO | None = None
) -> None:
    """Configure structlog and the standard library's root logger once."""
    out = stream or sys.stderr
    as_json = fmt == "json" or (fmt == "auto" and not out.isatty())
    renderer, text_renderer, factory = _output(out, as_json)
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
        logger_factory=factory,
        cache_logger_on_first_use=False,
    )
    # Libraries (uvicorn, SQLAlchemy) log through the standard library; send their
    # lines through the same renderer.
    handler = logging.StreamHandler(_Sink(out))
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                text_renderer,
            ],
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _output(out: TextIO, as_json: bool) -> tuple[Any, Any, Any]:
    """Renderers (ours, the standard library's) and a logger factory for `out`.

    JSON goes through orjson, and as bytes straight to the stream's buffer when
    it has one: the edge logs a line per delivery, so this is on its hot path.
    """
    text_sink: Any = _Sink(out)
    if not as_json:
        console = structlog.dev.ConsoleRenderer(colors=out.isatty())
        return console, console, structlog.PrintLoggerFactory(text_sink)
    text = structlog.processors.JSONRenderer(serializer=_dumps_text)
    buffer = getattr(out, "buffer", None)
    if buffer is None:
        return text, text, structlog.PrintLoggerFactory(text_sink)
    as_bytes = structlog.processors.JSONRenderer(serializer=orjson.dumps)
    bytes_sink: Any = _Sink(buffer)
    return as_bytes, text, structlog.BytesLoggerFactory(bytes_sink)


def _dumps_text(value: Any, **options: Any) -> str:
    return orjson.dumps(value, **options).decode("utf-8")


def get_logger(name: str = "mxbridge") -> Any:
    """The package's structlog logger."""
    return structlog.get_logger(name)
