"""The sandbox's plant: records, the rules that change them, and what fires.

Every change returns the `Change`s MaintainX would announce, so the app can
deliver them. The rules follow MaintainX's API description and live behaviour:

- a work order's status is OPEN, IN_PROGRESS, ON_HOLD or DONE; DONE may carry a
  sub-status CANCELED or SKIPPED, which reads show as the status itself and
  deliveries as ``newStatus: DONE, newSubStatus: ...``;
- ``updatedAt`` moves with field and status changes, never with comments, time
  entries or costs; comments fire NEW_COMMENT_ON_WORK_ORDER, costs fire nothing;
- creating a work order with ``workRequestId`` approves that request, and
  finishing the work order marks the request DONE;
- ``partsUsed`` takes parts out of stock (PART_QUANTITY_CHANGE).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from mxbridge._sandbox._errors import field_error, not_found
from mxbridge._sandbox._events import EVENT_TYPES
from mxbridge._sandbox._seed import ORG_ID, USER_ID, seed_records

__all__ = ["Change", "Plant", "iso"]

Record = dict[str, Any]
COLLECTIONS = (
    "subscriptions",
    "workOrders",
    "workRequests",
    "assets",
    "parts",
    "locations",
)
STATUSES = ("OPEN", "IN_PROGRESS", "ON_HOLD", "DONE")
SETTABLE_STATUSES = (*STATUSES, "CANCELED")
PRIORITIES = ("NONE", "LOW", "MEDIUM", "HIGH")
WO_TYPES = ("OTHER", "REACTIVE", "PREVENTIVE")
MAX_URL = 512
WO_FIELDS = (
    "title",
    "description",
    "priority",
    "type",
    "assetId",
    "locationId",
    "dueDate",
    "startDate",
    "estimatedTime",
    "categories",
    "assignees",
    "vendorIds",
    "extraFields",
    "requesterId",
)


@dataclass
class Change:
    """One event MaintainX would deliver: thin payload plus the optional record."""

    event_type: str
    payload: Record
    entity_key: str | None = None
    entity: Record | None = None
    filter_values: tuple[str, ...] = field(default_factory=tuple)


def iso(moment: datetime) -> str:
    """Format like MaintainX: UTC with milliseconds, ``2026-09-21T13:19:58.412Z``."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def _require(record: Mapping[str, Record], key: int, kind: str) -> Record:
    found = record.get(str(key))
    if found is None:
        raise not_found(kind)
    return found


class Plant:
    """All records of one sandbox organisation, and the rules that change them."""

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        self._now = now or (lambda: datetime.now(UTC))
        self.data: dict[str, dict[str, Record]] = {}
        self.next_id = 1000
        self.reset()

    def reset(self, *, seed: bool = True) -> None:
        """Forget everything; start again from the seed plant unless told not to."""
        self.data = {name: {} for name in COLLECTIONS}
        if seed:
            self.data.update(seed_records())
        self.next_id = 118000100

    def dump(self) -> Record:
        """Return the whole state as JSON-ready data."""
        return {"nextId": self.next_id, **self.data}

    def load(self, state: Mapping[str, Any]) -> None:
        """Replace the state with one produced by `dump`."""
        self.next_id = int(state["nextId"])
        self.data = {name: dict(state.get(name, {})) for name in COLLECTIONS}

    def stamp(self) -> str:
        """Return the current time in MaintainX's format."""
        return iso(self._now())

    def _new_id(self) -> int:
        self.next_id += 1
        return self.next_id

    def _base(self, **ids: Any) -> Record:
        return {**ids, "orgId": ORG_ID, "occurredAt": self.stamp(), "userId": USER_ID}

    # -- subscriptions -----------------------------------------------------------

    def create_subscription(self, body: Mapping[str, Any]) -> Record:
        """Validate and store a subscription; it answers with its own secret."""
        event_type, url = body.get("type"), body.get("url")
        if event_type not in EVENT_TYPES:
            raise field_error("type", "Invalid subscription type", event_type)
        _check_url(url)
        sub = {
            "id": self._new_id() % 1_000_000,
            "type": event_type,
            "url": url,
            "status": "VALID",
            "secret": secrets.token_hex(24),
            "options": dict(body.get("options") or {}),
            "filters": dict(body.get("filters") or {}),
        }
        self.data["subscriptions"][str(sub["id"])] = sub
        return sub

    def subscription(self, sub_id: int) -> Record:
        """Return a subscription or raise 404."""
        return _require(self.data["subscriptions"], sub_id, "subscription")

    def update_subscription(self, sub_id: int, body: Mapping[str, Any]) -> Record:
        """Change a subscription's ``type`` or ``url``."""
        sub = self.subscription(sub_id)
        if "type" in body and body["type"] not in EVENT_TYPES:
            raise field_error("type", "Invalid subscription type", body["type"])
        if "url" in body:
            _check_url(body["url"])
        sub.update({k: body[k] for k in ("type", "url") if k in body})
        return sub

    def delete_subscription(self, sub_id: int) -> None:
        """Remove a subscription or raise 404."""
        self.subscription(sub_id)
        del self.data["subscriptions"][str(sub_id)]

    # -- work orders -------------------------------------------------------------

    def work_order(self, wo_id: int) -> Record:
        """Return a work order or raise 404."""
        return _require(self.data["workOrders"], wo_id, "Work Order")

    def create_work_order(self, body: Mapping[str, Any]) -> tuple[Record, list[Change]]:
        """Create a work order; approve its work request when one is named."""
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise field_error("title", "title is required", title)
        self._check_wo_fields(body)
        request = self._approvable_request(body.get("workRequestId"))
        now = self.stamp()
        wo_id = self._new_id()
        wo: Record = {
            "id": wo_id,
            "sequentialId": len(self.data["workOrders"]) + 1,
            "organizationId": ORG_ID,
            "title": title,
            "description": None,
            "priority": "NONE",
            "type": "OTHER",
            "status": "OPEN",
            "subStatus": None,
            "createdAt": now,
            "updatedAt": now,
            "creatorId": USER_ID,
            "completedAt": None,
            "completerId": None,
            "assetId": None,
            "locationId": None,
            "dueDate": None,
            "startDate": None,
            "estimatedTime": None,
            "categories": [],
            "assignees": [],
            "vendorIds": [],
            "extraFields": {},
            "requesterId": None,
            "lastMessageSentAt": None,
            "workRequestId": None,
            "partsUsed": [],
            "comments": [],
            "costs": [],
            "progress": {"inProgressCount": 0, "onHoldCount": 0, "doneCount": 0},
        }
        wo.update({k: body[k] for k in WO_FIELDS if k in body})
        self.data["workOrders"][str(wo_id)] = wo
        changes = [self._wo_change("NEW_WORK_ORDER", wo, customerId=None)]
        changes += self._use_parts(wo, body.get("partsUsed"))
        if request is not None:
            wo["workRequestId"] = request["id"]
            request["workOrderId"] = wo_id
            changes.append(self._request_status(request, "APPROVED"))
        return wo, changes

    def _approvable_request(self, request_id: Any) -> Record | None:
        if request_id is None:
            return None
        request = self.data["workRequests"].get(str(request_id))
        if request is None or request["requestStatus"] != "PENDING":
            raise field_error(
                "workRequestId", "Work request not found or not pending", request_id
            )
        return request

    def _check_wo_fields(self, body: Mapping[str, Any]) -> None:
        if "priority" in body and body["priority"] not in PRIORITIES:
            raise field_error("priority", "Invalid priority", body["priority"])
        if "type" in body and body["type"] not in WO_TYPES:
            raise field_error("type", "Invalid work order type", body["type"])
        for key in ("assetId", "locationId"):
            kind = "assets" if key == "assetId" else "locations"
            if body.get(key) is not None and str(body[key]) not in self.data[kind]:
                raise field_error(key, f"{key} does not exist", body[key])

    def update_work_order(
        self, wo_id: int, body: Mapping[str, Any]
    ) -> tuple[Record, list[Change]]:
        """Change fields of a work order; ``partsUsed`` takes parts from stock."""
        wo = self.work_order(wo_id)
        if "title" in body and not str(body["title"] or "").strip():
            raise field_error("title", "title cannot be empty", body["title"])
        self._check_wo_fields(body)
        diff = _assignee_diff(wo["assignees"], body.get("assignees"))
        parts = self._use_parts(wo, body.get("partsUsed"))
        wo.update({k: body[k] for k in WO_FIELDS if k in body})
        wo["updatedAt"] = self.stamp()
        return wo, [self._wo_change("WORK_ORDER_CHANGE", wo, **diff), *parts]

    def set_status(self, wo_id: int, status: Any) -> tuple[Record, list[Change]]:
        """Move a work order to a status; CANCELED is DONE with a sub-status."""
        wo = self.work_order(wo_id)
        if status not in SETTABLE_STATUSES:
            raise field_error("status", "Invalid status", status)
        if status == "CANCELED":
            return wo, self._move(wo, "DONE", "CANCELED")
        return wo, self._move(wo, status, None)

    def skip(self, wo_id: int) -> tuple[Record, list[Change]]:
        """Skip a (preventive) work order: DONE with the sub-status SKIPPED."""
        wo = self.work_order(wo_id)
        return wo, self._move(wo, "DONE", "SKIPPED")

    def _move(self, wo: Record, status: str, sub: str | None) -> list[Change]:
        old_status, old_sub = wo["status"], wo["subStatus"]
        if (old_status, old_sub) == (status, sub):
            return []
        wo["status"], wo["subStatus"] = status, sub
        wo["updatedAt"] = self.stamp()
        _count_progress(wo["progress"], status)
        if status == "DONE" and sub is None:
            wo["completedAt"], wo["completerId"] = wo["updatedAt"], USER_ID
        extra: Record = {"oldStatus": old_status, "newStatus": status}
        extra.update({"oldSubStatus": old_sub} if old_sub else {})
        extra.update({"newSubStatus": sub} if sub else {})
        change = self._wo_change(
            "WORK_ORDER_STATUS_CHANGE", wo, **extra, progress=dict(wo["progress"])
        )
        change.filter_values = (sub or status,)
        changes = [change]
        request = self.data["workRequests"].get(str(wo.get("workRequestId")))
        if status == "DONE" and request and request["requestStatus"] == "APPROVED":
            changes.append(self._request_status(request, "DONE"))
        return changes

    def delete_work_order(self, wo_id: int) -> list[Change]:
        """Delete a work order."""
        wo = self.work_order(wo_id)
        del self.data["workOrders"][str(wo_id)]
        change = self._wo_change("WORK_ORDER_DELETE", wo)
        change.entity_key = "WorkOrder"
        return [change]

    def add_comment(self, wo_id: int, content: Any) -> tuple[Record, list[Change]]:
        """Comment on a work order; ``updatedAt`` does not move."""
        wo = self.work_order(wo_id)
        if not isinstance(content, str) or not content.strip():
            raise field_error("content", "content is required", content)
        now = self.stamp()
        comment = {
            "id": self._new_id(),
            "authorId": USER_ID,
            "content": content,
            "createdAt": now,
        }
        wo["comments"].append(comment)
        wo["lastMessageSentAt"] = now
        payload = self._base(workOrderId=wo_id) | {"type": "TEXT", "comment": content}
        return comment, [Change("NEW_COMMENT_ON_WORK_ORDER", payload)]

    def add_cost(self, wo_id: int, body: Mapping[str, Any]) -> Record:
        """Log a time entry or an expense; no webhook, ``updatedAt`` stays."""
        wo = self.work_order(wo_id)
        kind = body.get("type")
        if kind not in ("TIME", "EXPENSE"):
            raise field_error("type", "Invalid cost type", kind)
        entry = _cost_entry(self._new_id(), kind, body)
        wo["costs"].append(entry)
        return entry | {"total": sum(c["rowTotal"] for c in wo["costs"])}

    def _wo_change(self, event_type: str, wo: Record, **extra: Any) -> Change:
        payload = self._base(workOrderId=wo["id"]) | extra
        return Change(event_type, payload, "newWorkOrder", wo)

    # -- parts -------------------------------------------------------------------

    def _use_parts(self, wo: Record, used: Any) -> list[Change]:
        if used is None:
            return []
        if not isinstance(used, list):
            raise field_error("partsUsed", "partsUsed must be a list")
        before = {p["partId"]: p["quantityUsed"] for p in wo["partsUsed"]}
        after = {}
        for index, item in enumerate(used):
            part_id, quantity = _part_use(item, index)
            if str(part_id) not in self.data["parts"]:
                raise field_error(
                    f"partsUsed[{index}].partId", "Part not found", part_id
                )
            after[part_id] = quantity
        wo["partsUsed"] = [{"partId": k, "quantityUsed": v} for k, v in after.items()]
        ids = sorted(set(before) | set(after))
        diffs = [(pid, before.get(pid, 0) - after.get(pid, 0)) for pid in ids]
        return [self._stock(pid, diff) for pid, diff in diffs if diff]

    def _stock(self, part_id: int, diff: int) -> Change:
        part = self.data["parts"][str(part_id)]
        old = part["availableQuantity"]
        part["availableQuantity"] = old + diff
        part["updatedAt"] = self.stamp()
        where = {
            "locationId": part["locationId"],
            "quantityDiff": diff,
            "oldQuantity": old,
            "newQuantity": old + diff,
        }
        payload = self._base(partId=part_id) | {
            "quantityDiff": diff,
            "oldQuantity": old,
            "newQuantity": old + diff,
            "triggeredFrom": "WORK_ORDER",
            "locations": [where],
        }
        return Change("PART_QUANTITY_CHANGE", payload, "newPart", part)

    def part(self, part_id: int) -> Record:
        """Return a part or raise 404."""
        return _require(self.data["parts"], part_id, "Part")

    # -- work requests -----------------------------------------------------------

    def work_request(self, request_id: int) -> Record:
        """Return a work request or raise 404."""
        return _require(self.data["workRequests"], request_id, "Work Request")

    def create_work_request(
        self, body: Mapping[str, Any]
    ) -> tuple[Record, list[Change]]:
        """File a work request (PENDING until a work order approves it)."""
        title = body.get("title")
        if not isinstance(title, str) or not title.strip():
            raise field_error("title", "title is required", title)
        if "priority" in body and body["priority"] not in PRIORITIES:
            raise field_error("priority", "Invalid priority", body["priority"])
        now = self.stamp()
        request: Record = {
            "id": self._new_id(),
            "title": title,
            "priority": "NONE",
            "description": None,
            "requestStatus": "PENDING",
            "assetId": None,
            "locationId": None,
            "workOrderId": None,
            "extraFields": {},
            "approverTeamId": None,
            "creatorContactInfo": None,
            "createdAt": now,
            "updatedAt": now,
        }
        request.update(
            {
                k: body[k]
                for k in (
                    "priority",
                    "description",
                    "assetId",
                    "locationId",
                    "extraFields",
                )
                if k in body
            }
        )
        self.data["workRequests"][str(request["id"])] = request
        payload = self._base(workRequestId=request["id"])
        payload.pop("userId")
        return request, [Change("NEW_WORK_REQUEST", payload)]

    def _request_status(self, request: Record, status: str) -> Change:
        old = request["requestStatus"]
        request["requestStatus"] = status
        request["updatedAt"] = self.stamp()
        payload = self._base(requestId=request["id"])
        payload.update(oldStatus=old, newStatus=status)
        payload.pop("userId")
        return Change("WORK_REQUEST_STATUS_CHANGE", payload, filter_values=(status,))

    # -- assets ------------------------------------------------------------------

    def asset(self, asset_id: int) -> Record:
        """Return an asset or raise 404."""
        return _require(self.data["assets"], asset_id, "Asset")

    def create_asset(self, body: Mapping[str, Any]) -> tuple[Record, list[Change]]:
        """Register an asset."""
        name = body.get("name")
        if not isinstance(name, str) or not name.strip():
            raise field_error("name", "name is required", name)
        now = self.stamp()
        asset: Record = {
            "id": self._new_id(),
            "name": name,
            "description": None,
            "barcode": None,
            "criticalityId": None,
            "parentId": None,
            "locationId": None,
            "serialNumber": None,
            "teamIds": [],
            "assetTypes": [],
            "vendorIds": [],
            "extraFields": {},
            "manufacturer": None,
            "model": None,
            "createdAt": now,
            "updatedAt": now,
            "deletedAt": None,
            "creatorId": USER_ID,
            "status": None,
        }
        asset.update(
            {
                k: body[k]
                for k in (
                    "description",
                    "locationId",
                    "serialNumber",
                    "barcode",
                    "manufacturer",
                    "model",
                )
                if k in body
            }
        )
        self.data["assets"][str(asset["id"])] = asset
        payload = self._base(assetId=asset["id"])
        return asset, [Change("NEW_ASSET", payload, "newAsset", asset)]

    def set_asset_status(
        self, asset_id: int, body: Mapping[str, Any]
    ) -> tuple[Record, list[Change]]:
        """Record an asset going ONLINE, OFFLINE or IGNORE."""
        asset = self.asset(asset_id)
        status = body.get("status")
        if status not in ("IGNORE", "OFFLINE", "ONLINE"):
            raise field_error("status", "Invalid asset status", status)
        now = self.stamp()
        new = {
            "id": self._new_id(),
            "status": status,
            "downtimeType": body.get("downtimeType"),
            "startedAt": body.get("startedAt") or now,
            "endedAt": None,
            "description": body.get("description"),
        }
        old = asset.get("status")
        if old is not None:
            old["endedAt"] = new["startedAt"]
        asset["status"] = new
        asset["updatedAt"] = now
        payload = self._base(assetId=asset_id) | {"oldStatus": old, "newStatus": new}
        payload.pop("userId")
        change = Change("ASSET_STATUS_CHANGE", payload, filter_values=(status,))
        return new | {"updatedAt": now}, [change]


def _check_url(url: Any) -> None:
    if not isinstance(url, str) or not url.strip():
        raise field_error("url", "url is required", url)
    if len(url) > MAX_URL:
        raise field_error("url", f"url must be at most {MAX_URL} characters")
    if not url.startswith(("http://", "https://")):
        raise field_error("url", "url must be an http(s) URL", url)


def _user_ids(items: list[Record]) -> set[int]:
    return {a["id"] for a in items if isinstance(a, dict) and a.get("type") == "USER"}


def _assignee_diff(old: list[Record], new: Any) -> Record:
    if not isinstance(new, list):
        return {}
    before, after = _user_ids(old), _user_ids(new)
    if before == after:
        return {}
    return {
        "addedAssigneeIds": sorted(after - before),
        "removedAssigneeIds": sorted(before - after),
    }


def _count_progress(progress: Record, status: str) -> None:
    key = {
        "IN_PROGRESS": "inProgressCount",
        "ON_HOLD": "onHoldCount",
        "DONE": "doneCount",
    }.get(status)
    if key:
        progress[key] += 1


def _part_use(item: Any, index: int) -> tuple[int, int]:
    if not isinstance(item, dict):
        raise field_error(f"partsUsed[{index}]", "must be an object")
    part_id, quantity = item.get("partId"), item.get("quantityUsed")
    if not isinstance(part_id, int) or not isinstance(quantity, int) or quantity < 0:
        raise field_error(f"partsUsed[{index}]", "partId and quantityUsed are required")
    return part_id, quantity


def _cost_entry(cost_id: int, kind: str, body: Mapping[str, Any]) -> Record:
    if kind == "TIME":
        seconds = float(body.get("durationTotal") or 0)
        rate = float(body.get("hourlyRate") or 0)
        return {
            "id": cost_id,
            "type": "TIME",
            "durationTotal": seconds,
            "costPerUnit": rate,
            "quantity": seconds / 3600,
            "rowTotal": round(rate * seconds / 3600),
            "userId": USER_ID,
            "description": body.get("description"),
        }
    cost = float(body.get("costPerUnit") or 0)
    return {
        "id": cost_id,
        "type": "EXPENSE",
        "costPerUnit": cost,
        "quantity": 1,
        "rowTotal": cost,
        "userId": USER_ID,
        "description": body.get("description"),
    }
