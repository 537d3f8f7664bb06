"""The completion report, rendered from the shared fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fake_endpoints import FIXTURES, fixture_event
from mxbridge._actions import ActionContext, Templates
from mxbridge._actions._context import load_zone
from mxbridge._actions._report import build_report

DOCS = Path(__file__).resolve().parents[2] / "docs"
STORY = (
    "new_work_order_serialized",
    "work_order_status_change_in_progress",
    "work_order_status_change_done",
)


def completed_record() -> dict[str, Any]:
    """The fixture's serialized work order, as enrichment with expand returns it."""
    body = json.loads((FIXTURES / "bodies" / f"{STORY[0]}.json").read_bytes())
    return body["newWorkOrder"] | {
        "id": 118000102,
        "status": "DONE",
        "asset": {"id": 90211, "name": "Compressor #2"},
        "location": {"id": 7001, "name": "Plant 1 - Compressor room"},
        "assignees": [
            {"id": 520044, "type": "USER", "firstName": "Ana", "lastName": "Ruiz"}
        ],
        "timeItems": [
            {
                "id": 1,
                "type": "TIME",
                "durationTotal": 4500,
                "rowTotal": 6250,
                "userId": 520044,
                "description": "Replace inlet flange gasket",
            }
        ],
        "expenditures": [
            {
                "id": 2,
                "type": "EXPENSE",
                "quantity": 1,
                "rowTotal": 1450,
                "userId": 520044,
                "description": "Inlet flange gasket",
            }
        ],
    }


async def write_report(folder: Path, history_url: str) -> tuple[str, str]:
    """Mirror the story, then run the report for its completion."""
    from mxbridge._actions._mirror import build_mirror

    mirror = build_mirror({"url": history_url}, {}, Templates())
    for name in STORY:
        await mirror.run(ActionContext(fixture_event(name), "rule:m"))
    report = build_report(
        {"folder": str(folder), "history": {"url": history_url}}, {}, Templates()
    )
    done = fixture_event(STORY[2], record=completed_record())
    zone = load_zone("Europe/Berlin")
    await report.run(ActionContext(done, "rule:report", zone))
    mirror.database.dispose()
    html = (folder / "work-order-118000102.html").read_text()
    markdown = (folder / "work-order-118000102.md").read_text()
    return html, markdown


async def test_report_holds_facts_timeline_costs_and_events(tmp_path: Path) -> None:
    """Title, asset, location, assignee, timeline with durations, costs, events."""
    html, markdown = await write_report(tmp_path, f"sqlite:///{tmp_path / 'w.db'}")

    for text in (html, markdown):
        assert "Compressor #2 leaking oil at the inlet flange" in text
        assert "Compressor #2" in text
        assert "Plant 1 - Compressor room" in text
        assert "Ana Ruiz" in text
        assert "21 min" in text  # OPEN 13:19:59 -> 13:41:07
        assert "1 h 21 min" in text  # IN_PROGRESS 13:41:07 -> 15:02:44
        assert "Replace inlet flange gasket" in text
        assert "1 h 15 min" in text  # the time entry
        assert "7,700.00" in text  # 6250 + 1450, the total of both entries
        assert "IN_PROGRESS → DONE" in text
        assert "2026-09-21 17:02 CEST" in text
        assert "https://app.getmaintainx.com/workorders/118000102" in text
    assert "<h2>Status timeline</h2>" in html


async def test_report_without_history_shows_the_completing_event(
    tmp_path: Path,
) -> None:
    """With no mirror to read, the report still has the completion."""
    report = build_report({"folder": str(tmp_path)}, {}, Templates())
    done = fixture_event(STORY[2], record=completed_record())

    await report.run(ActionContext(done, "rule:report"))

    markdown = (tmp_path / "work-order-118000102.md").read_text()
    assert "| DONE |" in markdown


def test_rendered_sample_is_kept_in_docs() -> None:
    """docs/ holds a rendered sample of both files, for people to look at."""
    html = (DOCS / "sample-report" / "work-order-118000102.html").read_text()
    markdown = (DOCS / "sample-report" / "work-order-118000102.md").read_text()

    assert "Status timeline" in html
    assert "Status timeline" in markdown
