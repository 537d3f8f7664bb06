"""Structured logging: JSON lines, and secrets blanked by key."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from mxbridge._logging import configure_logging, get_logger, log_lines_lost


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Put structlog and the root logger back as they were after each test."""
    handlers = logging.getLogger().handlers[:]
    level = logging.getLogger().level
    yield
    structlog.reset_defaults()
    logging.getLogger().handlers[:] = handlers
    logging.getLogger().setLevel(level)


def test_json_lines_with_secret_looking_fields_blanked() -> None:
    """Off a terminal each line is JSON; secret-like keys are redacted."""
    out = io.StringIO()
    configure_logging("info", "auto", stream=out)

    get_logger("t").info(
        "hello", event_id="e1", secret="s3cr3t", body_signature="t=1,v1=ab", n=2
    )

    line = json.loads(out.getvalue())
    assert line["event"] == "hello"
    assert line["event_id"] == "e1"
    assert line["secret"] == "[redacted]"
    assert line["body_signature"] == "[redacted]"
    assert "s3cr3t" not in out.getvalue()


def test_level_filters_lines() -> None:
    """Below the configured level nothing is written."""
    out = io.StringIO()
    configure_logging("warning", "json", stream=out)

    get_logger("t").info("quiet")
    get_logger("t").warning("loud")

    assert [json.loads(line)["event"] for line in out.getvalue().splitlines()] == [
        "loud"
    ]


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_a_log_that_cannot_be_written_raises_nothing_and_counts_lines(
    fmt: str,
) -> None:
    """On a full disk (/dev/full) logging goes on; each lost line counts once."""
    full = open("/dev/full", "w")  # noqa: SIM115 - closed below, where it fails
    configure_logging("info", fmt, stream=full)
    before = log_lines_lost()

    for n in range(3):
        get_logger("t").info("lost", n=n)
    logging.getLogger("library").warning("lost too")

    assert log_lines_lost() - before == 4
    # What is still buffered cannot be written either.
    with pytest.raises(OSError, match="No space left"):
        full.close()
