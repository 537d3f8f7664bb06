"""The plant the sandbox starts with: one site, a few assets, parts and people.

Every name and id is invented.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ORG_ID", "USER_ID", "seed_records"]

ORG_ID = 48213
USER_ID = 520017
START = "2026-09-01T08:00:00.000Z"


def _asset(asset_id: int, name: str, location_id: int, serial: str) -> dict[str, Any]:
    return {
        "id": asset_id,
        "name": name,
        "description": None,
        "barcode": None,
        "criticalityId": None,
        "parentId": None,
        "locationId": location_id,
        "serialNumber": serial,
        "teamIds": [],
        "assetTypes": [],
        "vendorIds": [],
        "extraFields": {},
        "manufacturer": None,
        "model": None,
        "createdAt": START,
        "updatedAt": START,
        "deletedAt": None,
        "creatorId": USER_ID,
        "status": {
            "id": asset_id * 10,
            "status": "ONLINE",
            "downtimeType": None,
            "startedAt": START,
            "endedAt": None,
            "description": None,
        },
    }


def _part(part_id: int, name: str, quantity: int, unit_cost: int) -> dict[str, Any]:
    return {
        "id": part_id,
        "name": name,
        "description": None,
        "area": "Stores cage B",
        "unitCost": unit_cost,
        "availableQuantity": quantity,
        "minimumQuantity": 2,
        "barcode": None,
        "locationId": 7001,
        "createdAt": START,
        "updatedAt": START,
    }


def seed_records() -> dict[str, dict[str, dict[str, Any]]]:
    """Return fresh seed records by collection, each keyed by the id as text."""
    locations = [
        {
            "id": 7001,
            "name": "Plant 1 - Compressor room",
            "description": None,
            "address": None,
            "parentId": None,
            "createdAt": START,
            "updatedAt": START,
        },
        {
            "id": 7002,
            "name": "Plant 1 - Packing line",
            "description": None,
            "address": None,
            "parentId": None,
            "createdAt": START,
            "updatedAt": START,
        },
    ]
    assets = [
        _asset(90211, "Compressor #2", 7001, "CMP-2-0042"),
        _asset(90212, "Compressor #3", 7001, "CMP-3-0043"),
        _asset(90301, "Case packer", 7002, "CPK-1-0007"),
    ]
    parts = [
        _part(66012, "Inlet flange gasket", 7, 1450),
        _part(66013, "Compressor oil, 5 L", 12, 6200),
    ]
    return {
        "locations": {str(r["id"]): r for r in locations},
        "assets": {str(r["id"]): r for r in assets},
        "parts": {str(r["id"]): r for r in parts},
    }
