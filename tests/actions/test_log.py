"""The log action: one JSON line per event."""

from __future__ import annotations

import json
from pathlib import Path

from fake_endpoints import ctx, fixture_event
from mxbridge._actions import Templates
from mxbridge._actions._log import build_log


async def test_each_event_is_one_json_line(tmp_path: Path) -> None:
    """Two events, two lines, each the event with its payload."""
    action = build_log(
        {"path": str(tmp_path / "out" / "events.jsonl")}, {}, Templates()
    )

    for name in ("new_work_order", "work_order_status_change_done"):
        await action.run(ctx(fixture_event(name)))

    lines = (tmp_path / "out" / "events.jsonl").read_text().splitlines()
    assert [json.loads(line)["type"] for line in lines] == [
        "NEW_WORK_ORDER",
        "WORK_ORDER_STATUS_CHANGE",
    ]
    assert json.loads(lines[1])["payload"]["newStatus"] == "DONE"
