"""The sandbox's HTTP face: MaintainX's REST paths under /v1, admin under /_sandbox.

Every /v1 call goes through the same gate, as on the real server: the bearer
key, then any injected fault answer, then the per-key rate limit, then the
handler; the ``X-Rate-Limit-*`` headers ride on every answer. Changes are
announced through the `Dispatcher`, after the answer is decided.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mxbridge._sandbox._deliver import Delivery, Dispatcher, encode_body
from mxbridge._sandbox._errors import SandboxError, field_error
from mxbridge._sandbox._paging import (
    list_values,
    next_page_url,
    page,
    parse_limit,
    parse_time,
    sort_spec,
)
from mxbridge._sandbox._ratelimit import WindowLimiter
from mxbridge._sandbox._state import Change, Plant, Record
from mxbridge._sandbox._views import (
    WO_EXPANDS,
    WR_EXPANDS,
    asset_view,
    check_expand,
    entity_view,
    subscription_view,
    work_order_view,
    work_request_view,
)

__all__ = ["Sandbox", "SandboxConfig", "create_app"]

Answer = tuple[int, Any]
Handler = Callable[[Request], Awaitable[Answer]]
TRUTHY = ("true", "1", "yes")


@dataclass
class SandboxConfig:
    """How a sandbox behaves; `rate_limit` None turns limiting off."""

    api_key: str = "sandbox-key"
    rate_limit: int | None = 100
    rate_window: float = 60.0
    state_file: Path | None = None
    seed: bool = True


@dataclass
class InjectedAnswer:
    """A fault switch for the API itself: answer the next `count` calls so."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    count: int = 1


class Sandbox:
    """One sandbox: the plant, its deliveries, its limits and its fault switches."""

    def __init__(self, config: SandboxConfig) -> None:
        self.config = config
        self.plant = Plant()
        self.plant.reset(seed=config.seed)
        self.dispatcher = Dispatcher()
        self.limiter = WindowLimiter(config.rate_limit, config.rate_window)
        self.injected: list[InjectedAnswer] = []
        self.counts = {"requests": 0, "limited": 0}
        if config.state_file is not None and config.state_file.exists():
            self.plant.load(json.loads(config.state_file.read_text("utf-8")))

    def save(self) -> None:
        """Write the state file, when one is configured."""
        if self.config.state_file is not None:
            text = json.dumps(self.plant.dump(), indent=1)
            self.config.state_file.write_text(text, "utf-8")

    def emit(self, changes: Sequence[Change], request: Request) -> None:
        """Queue the deliveries of `changes`, unless the call said skipWebhook."""
        self.save()
        if request.query_params.get("skipWebhook", "").lower() in TRUTHY:
            return
        subscriptions = list(self.plant.data["subscriptions"].values())
        for change in changes:
            for sub in subscriptions:
                if _wants(sub, change):
                    self.dispatcher.enqueue(_delivery(sub, change))

    def reset(self, *, seed: bool = True) -> None:
        """Back to a fresh plant: records, faults, limits and the delivery log."""
        self.plant.reset(seed=seed)
        self.dispatcher.reset()
        self.injected.clear()
        self.limiter.configure(self.config.rate_limit, self.config.rate_window)
        self.counts = {"requests": 0, "limited": 0}
        self.save()


def _wants(sub: Record, change: Change) -> bool:
    if sub["type"] != change.event_type or sub["status"] != "VALID":
        return False
    filters = sub.get("filters") or {}
    wanted = filters.get("oneOfStatuses") or filters.get("oneOfAssetStatusTypes")
    if wanted and change.filter_values:
        return any(value in wanted for value in change.filter_values)
    return True


def _delivery(sub: Record, change: Change) -> Delivery:
    body: Record = {"eventType": change.event_type, **change.payload}
    serialize = (sub.get("options") or {}).get("serializeEntity")
    if serialize and change.entity_key and change.entity is not None:
        body[change.entity_key] = entity_view(change.entity_key, change.entity)
    return Delivery(
        sub["id"], sub["url"], sub["secret"], change.event_type, encode_body(body)
    )


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        raise field_error(None, "Request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise field_error(None, "Request body must be a JSON object")
    return body


def _answer(status: int, body: Any, headers: dict[str, str]) -> Response:
    if body is None:
        return Response(status_code=status, headers=headers)
    return JSONResponse(body, status_code=status, headers=headers)


def _ident(request: Request) -> int:
    return int(request.path_params["id"])


class Api:
    """The /v1 endpoints, bound to one `Sandbox`."""

    def __init__(self, sandbox: Sandbox) -> None:
        self.sb = sandbox

    def gate(self, handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        """Wrap a handler in the key check, fault answers and rate limit."""

        async def endpoint(request: Request) -> Response:
            if not self._authorised(request):
                return JSONResponse({"errors": [{"error": "Invalid token"}]}, 401)
            self.sb.counts["requests"] += 1
            injected = self._injected()
            if injected is not None:
                return _answer(injected.status, injected.body, injected.headers)
            allowed, headers = self.sb.limiter.hit(self.sb.config.api_key)
            if not allowed:
                self.sb.counts["limited"] += 1
                body = {"errors": [{"error": "Too many requests"}]}
                return _answer(429, body, headers)
            try:
                status, body = await handler(request)
            except SandboxError as exc:
                status, body = exc.status, exc.body
            return _answer(status, body, headers)

        return endpoint

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        return scheme.lower() == "bearer" and token.strip() == self.sb.config.api_key

    def _injected(self) -> InjectedAnswer | None:
        if not self.sb.injected:
            return None
        first = self.sb.injected[0]
        first.count -= 1
        if first.count <= 0:
            self.sb.injected.pop(0)
        return first

    # -- subscriptions -----------------------------------------------------------

    async def create_subscription(self, request: Request) -> Answer:
        sub = self.sb.plant.create_subscription(await _json_body(request))
        self.sb.save()
        return 201, {"id": sub["id"], "status": sub["status"], "secret": sub["secret"]}

    async def subscription(self, request: Request) -> Answer:
        plant = self.sb.plant
        if request.method == "GET":
            return 200, {
                "subscription": subscription_view(plant.subscription(_ident(request)))
            }
        if request.method == "DELETE":
            plant.delete_subscription(_ident(request))
            self.sb.save()
            return 204, None
        sub = plant.update_subscription(_ident(request), await _json_body(request))
        self.sb.save()
        return 200, {"subscription": subscription_view(sub)}

    async def secret(self, request: Request) -> Answer:
        return 200, {"secret": self.sb.plant.subscription(_ident(request))["secret"]}

    # -- work orders -------------------------------------------------------------

    async def work_orders(self, request: Request) -> Answer:
        plant = self.sb.plant
        if request.method == "POST":
            wo, changes = plant.create_work_order(await _json_body(request))
            self.sb.emit(changes, request)
            return 200, {"id": wo["id"]}
        query = request.query_params
        expand = check_expand(list_values(query, "expand"), WO_EXPANDS)
        records = _filter_work_orders(list(plant.data["workOrders"].values()), query)
        items, cursor = _page(records, query)
        return 200, {
            "workOrders": [work_order_view(r, expand, plant) for r in items],
            "nextCursor": cursor,
            "nextPageUrl": next_page_url("/workorders", query, cursor),
        }

    async def work_order(self, request: Request) -> Answer:
        plant, wo_id = self.sb.plant, _ident(request)
        expand = check_expand(list_values(request.query_params, "expand"), WO_EXPANDS)
        if request.method == "DELETE":
            self.sb.emit(plant.delete_work_order(wo_id), request)
            return 204, None
        if request.method == "PATCH":
            wo, changes = plant.update_work_order(wo_id, await _json_body(request))
            self.sb.emit(changes, request)
        else:
            wo = plant.work_order(wo_id)
        return 200, {"workOrder": work_order_view(wo, expand, plant)}

    async def status(self, request: Request) -> Answer:
        body = await _json_body(request)
        wo, changes = self.sb.plant.set_status(_ident(request), body.get("status"))
        self.sb.emit(changes, request)
        return 200, {"workOrder": work_order_view(wo, (), self.sb.plant)}

    async def comments(self, request: Request) -> Answer:
        plant, wo_id = self.sb.plant, _ident(request)
        if request.method == "POST":
            body = await _json_body(request)
            comment, changes = plant.add_comment(wo_id, body.get("content"))
            self.sb.emit(changes, request)
            return 201, {"id": comment["id"]}
        items, cursor = _page(plant.work_order(wo_id)["comments"], request.query_params)
        path = f"/workorders/{wo_id}/comments"
        return 200, {
            "comments": items,
            "nextCursor": cursor,
            "nextPageUrl": next_page_url(path, request.query_params, cursor),
        }

    async def costs(self, request: Request) -> Answer:
        plant, wo_id = self.sb.plant, _ident(request)
        if request.method == "POST":
            entry = plant.add_cost(wo_id, await _json_body(request))
            self.sb.save()
            return 201, entry
        return 200, {"costs": list(plant.work_order(wo_id)["costs"])}

    # -- work requests, assets, parts --------------------------------------------

    async def work_requests(self, request: Request) -> Answer:
        plant = self.sb.plant
        if request.method == "POST":
            record, changes = plant.create_work_request(await _json_body(request))
            self.sb.emit(changes, request)
            return 200, {"id": record["id"]}
        query = request.query_params
        expand = check_expand(list_values(query, "expand"), WR_EXPANDS)
        records = list(plant.data["workRequests"].values())
        statuses = list_values(query, "statuses")
        if statuses:
            records = [r for r in records if r["requestStatus"] in statuses]
        items, cursor = _page(records, query)
        return 200, {
            "workRequests": [work_request_view(r, expand, plant) for r in items],
            "nextCursor": cursor,
            "nextPageUrl": next_page_url("/workrequests", query, cursor),
        }

    async def work_request(self, request: Request) -> Answer:
        query = request.query_params
        expand = check_expand(list_values(query, "expand"), WR_EXPANDS)
        record = self.sb.plant.work_request(_ident(request))
        return 200, {"workRequest": work_request_view(record, expand, self.sb.plant)}

    async def assets(self, request: Request) -> Answer:
        plant = self.sb.plant
        if request.method == "POST":
            asset, changes = plant.create_asset(await _json_body(request))
            self.sb.emit(changes, request)
            return 201, {"id": asset["id"]}
        query = request.query_params
        with_status = "status" in list_values(query, "expand")
        records = _filter_times(list(plant.data["assets"].values()), query)
        items, cursor = _page(records, query)
        return 200, {
            "assets": [asset_view(r, with_status=with_status) for r in items],
            "nextCursor": cursor,
            "nextPageUrl": next_page_url("/assets", query, cursor),
        }

    async def asset(self, request: Request) -> Answer:
        return 200, {"asset": asset_view(self.sb.plant.asset(_ident(request)))}

    async def asset_status(self, request: Request) -> Answer:
        asset_id = int(request.path_params["assetId"])
        body = await _json_body(request)
        status, changes = self.sb.plant.set_asset_status(asset_id, body)
        self.sb.emit(changes, request)
        return 201, {"assetStatus": status}

    async def part(self, request: Request) -> Answer:
        return 200, {"part": dict(self.sb.plant.part(_ident(request)))}


def _page(records: list[Record], query: Any) -> tuple[list[Record], str | None]:
    return page(
        records,
        sort=sort_spec(query.get("sort")),
        cursor=query.get("cursor"),
        limit=parse_limit(query.get("limit")),
    )


def _filter_times(records: list[Record], query: Any) -> list[Record]:
    for name in ("updatedAt", "createdAt"):
        for op in ("gte", "lte"):
            raw = query.get(f"{name}[{op}]")
            if raw is not None:
                bound = parse_time(raw, f"{name}[{op}]")
                records = [r for r in records if _compare(r[name], op, bound)]
    return records


def _compare(value: str, op: str, bound: datetime) -> bool:
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment >= bound if op == "gte" else moment <= bound


def _filter_work_orders(records: list[Record], query: Any) -> list[Record]:
    records = _filter_times(records, query)
    statuses = list_values(query, "statuses")
    if statuses:
        records = [r for r in records if (r["subStatus"] or r["status"]) in statuses]
    priorities = list_values(query, "priorities")
    if priorities:
        records = [r for r in records if r["priority"] in priorities]
    assets = {int(a) for a in list_values(query, "assets") if a.isdigit()}
    if assets:
        records = [r for r in records if r["assetId"] in assets]
    title = query.get("title")
    if title:
        records = [r for r in records if title.lower() in r["title"].lower()]
    return records


def _api_routes(api: Api) -> list[Route]:
    table: list[tuple[str, Handler, list[str]]] = [
        ("/subscriptions", api.create_subscription, ["POST"]),
        ("/subscriptions/{id:int}", api.subscription, ["GET", "PATCH", "DELETE"]),
        ("/subscriptions/{id:int}/secret", api.secret, ["GET"]),
        ("/workorders", api.work_orders, ["GET", "POST"]),
        ("/workorders/{id:int}", api.work_order, ["GET", "PATCH", "DELETE"]),
        ("/workorders/{id:int}/status", api.status, ["PATCH"]),
        ("/workorders/{id:int}/comments", api.comments, ["GET", "POST"]),
        ("/workorders/{id:int}/costs", api.costs, ["GET", "POST"]),
        ("/workrequests", api.work_requests, ["GET", "POST"]),
        ("/workrequests/{id:int}", api.work_request, ["GET"]),
        ("/assets", api.assets, ["GET", "POST"]),
        ("/assets/{id:int}", api.asset, ["GET"]),
        ("/assets/{assetId:int}/status", api.asset_status, ["POST"]),
        ("/parts/{id:int}", api.part, ["GET"]),
    ]
    return [Route("/v1" + path, api.gate(fn), methods=m) for path, fn, m in table]


def create_app(config: SandboxConfig | None = None) -> Starlette:
    """Build the sandbox's ASGI app; ``app.state.sandbox`` is its `Sandbox`."""
    from mxbridge._sandbox._admin import admin_routes

    sandbox = Sandbox(config or SandboxConfig())

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        await sandbox.dispatcher.start()
        try:
            yield
        finally:
            await sandbox.dispatcher.stop()

    routes = _api_routes(Api(sandbox)) + admin_routes(sandbox)
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = sandbox
    return app
