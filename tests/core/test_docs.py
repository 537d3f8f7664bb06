"""The documentation names what the code does."""

from __future__ import annotations

from pathlib import Path

from mxbridge._events import DERIVED_NAMES, KNOWN_EVENT_TYPES, event_names

DOCS = Path(__file__).resolve().parents[2] / "docs"


def test_events_doc_lists_every_type_and_name() -> None:
    """docs/events.md names every known type and every alias it carries."""
    text = (DOCS / "events.md").read_text()

    for event_type in KNOWN_EVENT_TYPES:
        for name in event_names(event_type, {}):
            assert f"`{name}`" in text, name
    for name in DERIVED_NAMES:
        assert f"`{name}`" in text, name
