"""How records look in API answers and in serialised deliveries."""

from __future__ import annotations

from collections.abc import Callable, Collection

from mxbridge._sandbox._errors import query_error
from mxbridge._sandbox._state import Plant, Record

__all__ = [
    "WO_EXPANDS",
    "WR_EXPANDS",
    "asset_view",
    "check_expand",
    "entity_view",
    "subscription_view",
    "work_order_view",
    "work_request_view",
]

WO_EXPANDS = frozenset(
    {
        "thumbnail",
        "assignees",
        "categories",
        "parts",
        "asset",
        "location",
        "procedure",
        "vendor_ids",
        "times",
        "time_items",
        "expenditures",
        "extra_fields",
        "part_extra_fields",
        "asset_extra_fields",
        "location_extra_fields",
        "estimated_time",
    }
)
WR_EXPANDS = frozenset({"asset", "location", "work_order", "extra_fields"})
_WO_PLAIN = (
    "id",
    "sequentialId",
    "organizationId",
    "title",
    "description",
    "priority",
    "type",
    "createdAt",
    "updatedAt",
    "creatorId",
    "completedAt",
    "completerId",
    "assetId",
    "locationId",
    "dueDate",
    "startDate",
    "requesterId",
    "lastMessageSentAt",
    "vendorIds",
)
_ASSET_PLAIN = (
    "id",
    "name",
    "description",
    "barcode",
    "criticalityId",
    "parentId",
    "locationId",
    "serialNumber",
    "teamIds",
    "assetTypes",
    "vendorIds",
    "extraFields",
    "manufacturer",
    "model",
    "createdAt",
    "updatedAt",
    "deletedAt",
    "creatorId",
    "status",
)


def check_expand(values: Collection[str], allowed: Collection[str]) -> set[str]:
    """Return the requested expansions, or raise 400 for one MaintainX lacks."""
    for value in values:
        if value not in allowed:
            raise query_error(f"Invalid expand value: {value}")
    return set(values)


def subscription_view(sub: Record) -> Record:
    """A subscription as ``GET /subscriptions/{id}`` shows it (no secret)."""
    return {k: sub[k] for k in ("id", "type", "url", "status")}


def _display_status(wo: Record) -> str:
    return str(wo["subStatus"] or wo["status"])


def _part_view(plant: Plant, use: Record) -> Record:
    part = plant.data["parts"][str(use["partId"])]
    keys = (
        "id",
        "name",
        "description",
        "area",
        "unitCost",
        "availableQuantity",
        "minimumQuantity",
        "barcode",
    )
    return {k: part[k] for k in keys} | {
        "quantityUsed": use["quantityUsed"],
        "copyOnRecurring": "Default",
    }


def _entries(wo: Record, kind: str | None) -> list[Record]:
    return [c for c in wo["costs"] if kind is None or c["type"] == kind]


def work_order_view(wo: Record, expand: Collection[str], plant: Plant) -> Record:
    """A work order as the REST API shows it, with the asked expansions."""
    view = {k: wo[k] for k in _WO_PLAIN} | {"status": _display_status(wo)}
    extras: dict[str, Callable[[], object]] = {
        "assignees": lambda: list(wo["assignees"]),
        "categories": lambda: list(wo["categories"]),
        "extra_fields": lambda: dict(wo["extraFields"]),
        "estimated_time": lambda: wo["estimatedTime"],
        "parts": lambda: [_part_view(plant, u) for u in wo["partsUsed"]],
        "times": lambda: _entries(wo, "TIME"),
        "time_items": lambda: _entries(wo, "TIME"),
        "expenditures": lambda: _entries(wo, None),
    }
    names = {
        "extra_fields": "extraFields",
        "estimated_time": "estimatedTime",
        "time_items": "timeItems",
    }
    for key in expand:
        if key in extras:
            view[names.get(key, key)] = extras[key]()
    _linked(view, wo, expand, plant)
    return view


def _linked(
    view: Record, record: Record, expand: Collection[str], plant: Plant
) -> None:
    asset = plant.data["assets"].get(str(record.get("assetId")))
    location = plant.data["locations"].get(str(record.get("locationId")))
    if "asset" in expand and asset is not None:
        view["asset"] = asset_view(asset, with_status=False)
    if "location" in expand and location is not None:
        view["location"] = dict(location)


def work_request_view(request: Record, expand: Collection[str], plant: Plant) -> Record:
    """A work request as the REST API shows it."""
    view = {k: v for k, v in request.items() if k != "extraFields"}
    if "extra_fields" in expand:
        view["extraFields"] = dict(request["extraFields"])
    wo = plant.data["workOrders"].get(str(request.get("workOrderId")))
    if "work_order" in expand and wo is not None:
        view["workOrder"] = work_order_view(wo, (), plant)
    _linked(view, request, expand, plant)
    return view


_ASSET_REQUIRED = frozenset(
    {
        "id",
        "name",
        "description",
        "parentId",
        "criticalityId",
        "locationId",
        "serialNumber",
        "createdAt",
        "updatedAt",
        "creatorId",
    }
)


def asset_view(asset: Record, *, with_status: bool = True) -> Record:
    """An asset as the REST API shows it; unset optional fields are left out.

    MaintainX omits what is unset rather than sending null for several fields the
    description does not mark nullable, and lists show the status only on request.
    """
    view = {k: asset[k] for k in _ASSET_PLAIN if k != "status"}
    view = {k: v for k, v in view.items() if v is not None or k in _ASSET_REQUIRED}
    status = asset.get("status")
    if with_status and status is not None:
        view["status"] = {k: v for k, v in status.items() if v is not None}
    return view


def entity_view(key: str, record: Record) -> Record:
    """The record as a delivery of a ``serializeEntity`` subscription carries it."""
    if key in ("newWorkOrder", "WorkOrder"):
        return _work_order_entity(record)
    return {k: v for k, v in record.items() if k not in ("id", "status")}


def _work_order_entity(wo: Record) -> Record:
    users = [a["id"] for a in wo["assignees"] if a.get("type") == "USER"]
    teams = [a["id"] for a in wo["assignees"] if a.get("type") == "TEAM"]
    keys = (
        "title",
        "description",
        "priority",
        "assetId",
        "locationId",
        "vendorIds",
        "dueDate",
        "startDate",
        "estimatedTime",
        "extraFields",
    )
    return {k: wo[k] for k in keys} | {
        "status": wo["status"],
        "assigneeIds": users,
        "teamIds": teams,
        "categories": [
            {"id": i + 1, "name": n} for i, n in enumerate(wo["categories"])
        ],
        "parts": [dict(p, copyOnRecurring="Default") for p in wo["partsUsed"]],
    }
