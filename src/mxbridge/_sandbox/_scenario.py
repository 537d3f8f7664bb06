"""Stretches of plant life, played against a running sandbox over HTTP.

Each scenario is a list of steps; a step makes real API calls (and, where the
real MaintainX would act on its own, an admin call) and says what it did.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx

__all__ = ["SCENARIOS", "play_scenario"]

COMPRESSOR, GASKET, TECHNICIAN = 90211, 66012, 520044
Step = Callable[["Player"], Awaitable[str]]


class Player:
    """Calls the sandbox's API (``/v1``) and its admin paths (``/_sandbox``)."""

    def __init__(self, http: httpx.AsyncClient, api_url: str) -> None:
        self.http = http
        self.api_url = api_url.rstrip("/")
        self.root = self.api_url.removesuffix("/v1")

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """Call the API; raise `httpx.HTTPStatusError` on an error answer."""
        response = await self.http.request(method, self.api_url + path, json=body)
        response.raise_for_status()
        return response.json() if response.content else None

    async def admin(self, path: str) -> Any:
        """Call an admin path of the sandbox."""
        response = await self.http.post(self.root + "/_sandbox" + path)
        response.raise_for_status()
        return response.json()


async def _breakdown(p: Player) -> str:
    offline = {
        "status": "OFFLINE",
        "downtimeType": "UNPLANNED",
        "description": "Oil leak at the inlet flange",
    }
    await p.call("POST", f"/assets/{COMPRESSOR}/status", offline)
    wo = await p.call(
        "POST",
        "/workorders",
        {
            "title": "Compressor #2 leaking oil at the inlet flange",
            "priority": "HIGH",
            "type": "REACTIVE",
            "assetId": COMPRESSOR,
            "locationId": 7001,
            "categories": ["Safety"],
        },
    )
    wo_id = wo["id"]
    assign = {"assignees": [{"type": "USER", "id": TECHNICIAN}]}
    await p.call("PATCH", f"/workorders/{wo_id}", assign)
    await p.call("PATCH", f"/workorders/{wo_id}/status", {"status": "IN_PROGRESS"})
    await p.call(
        "POST",
        f"/workorders/{wo_id}/comments",
        {"content": "Gasket blown, replacing it now."},
    )
    await p.call(
        "POST",
        f"/workorders/{wo_id}/costs",
        {"type": "TIME", "costType": "WORK", "durationTotal": 5400},
    )
    await p.call("PATCH", f"/workorders/{wo_id}/status", {"status": "DONE"})
    await p.call("POST", f"/assets/{COMPRESSOR}/status", {"status": "ONLINE"})
    return f"breakdown: work order {wo_id} reported HIGH, fixed and closed"


async def _skipped_pm(p: Player) -> str:
    wo = await p.call(
        "POST",
        "/workorders",
        {
            "title": "Monthly lubrication - Case packer",
            "priority": "LOW",
            "type": "PREVENTIVE",
            "assetId": 90301,
        },
    )
    await p.admin(f"/workorders/{wo['id']}/skip")
    return f"preventive: work order {wo['id']} skipped"


async def _request(p: Player) -> str:
    request = await p.call(
        "POST",
        "/workrequests",
        {
            "title": "Light flickering over the packing line",
            "priority": "MEDIUM",
            "locationId": 7002,
        },
    )
    wo = await p.call(
        "POST",
        "/workorders",
        {
            "title": "Replace ballast over the packing line",
            "priority": "MEDIUM",
            "workRequestId": request["id"],
            "locationId": 7002,
        },
    )
    return f"request: {request['id']} approved into work order {wo['id']}"


async def _part(p: Player) -> str:
    wo = await p.call(
        "POST",
        "/workorders",
        {
            "title": "Replace inlet gasket on Compressor #3",
            "priority": "MEDIUM",
            "assetId": 90212,
        },
    )
    used = {"partsUsed": [{"partId": GASKET, "quantityUsed": 2}]}
    await p.call("PATCH", f"/workorders/{wo['id']}", used)
    part = await p.call("GET", f"/parts/{GASKET}")
    left = part["part"]["availableQuantity"]
    return f"part: 2 x {GASKET} used on work order {wo['id']}, {left} left"


SCENARIOS: dict[str, list[Step]] = {
    "plant-day": [_breakdown, _skipped_pm, _request, _part],
    "breakdown": [_breakdown],
    "skipped-pm": [_skipped_pm],
    "request": [_request],
    "part": [_part],
}


async def play_scenario(name: str, api_url: str, api_key: str) -> list[str]:
    """Play scenario `name` against the sandbox at `api_url` (ending in /v1).

    Returns one line per step. Raises KeyError for an unknown name and
    `httpx.HTTPError` when the sandbox cannot be reached or refuses a call.
    """
    steps = SCENARIOS[name]
    headers = {"Authorization": f"Bearer {api_key}"}
    async with httpx.AsyncClient(headers=headers, timeout=15.0) as http:
        player = Player(http, api_url)
        return [await step(player) for step in steps]
