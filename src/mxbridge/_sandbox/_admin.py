"""The sandbox's own controls under /_sandbox: reset, limits, faults, inspection.

These paths exist only in the sandbox and need no key.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mxbridge._sandbox._app import InjectedAnswer, Sandbox
from mxbridge._sandbox._errors import SandboxError

__all__ = ["admin_routes"]


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SandboxError(400, {"error": "body must be a JSON object"})
    return body


def _guarded(handler: Any) -> Any:
    async def endpoint(request: Request) -> Response:
        try:
            result: Response = await handler(request)
        except SandboxError as exc:
            return JSONResponse(exc.body, exc.status)
        except (TypeError, ValueError, KeyError) as exc:
            return JSONResponse({"error": f"bad admin request: {exc}"}, 400)
        return result

    return endpoint


def admin_routes(sb: Sandbox) -> list[Route]:
    """Return the /_sandbox routes bound to `sb`."""

    async def reset(request: Request) -> Response:
        body = await _body(request)
        sb.reset(seed=bool(body.get("seed", True)))
        return JSONResponse({"reset": True})

    async def faults(request: Request) -> Response:
        if request.method == "DELETE":
            sb.dispatcher.faults.update(
                {"duplicate": 0, "delay": 0, "reorder": 0, "drop": 0}
            )
            sb.injected.clear()
        elif request.method == "POST":
            body = await _body(request)
            sb.dispatcher.faults.update(body)
            for item in body.get("answers", []):
                sb.injected.append(_injected(item))
        return JSONResponse(_fault_view(sb))

    async def rate_limit(request: Request) -> Response:
        body = await _body(request)
        limit = body.get("limit")
        window = float(body.get("window", sb.config.rate_window))
        sb.config.rate_limit = int(limit) if limit else None
        sb.config.rate_window = window
        sb.limiter.configure(sb.config.rate_limit, window)
        return JSONResponse({"limit": sb.config.rate_limit, "window": window})

    async def deliveries(request: Request) -> Response:
        return JSONResponse({"deliveries": sb.dispatcher.log})

    async def idle(request: Request) -> Response:
        seconds = float(request.query_params.get("timeout", "15"))
        try:
            async with asyncio.timeout(seconds):
                await sb.dispatcher.idle()
        except TimeoutError:
            return JSONResponse({"idle": False}, 504)
        return JSONResponse({"idle": True})

    async def skip(request: Request) -> Response:
        wo, changes = sb.plant.skip(int(request.path_params["id"]))
        sb.emit(changes, request)
        return JSONResponse({"id": wo["id"], "status": "SKIPPED"})

    async def subscription(request: Request) -> Response:
        sub_id = int(request.path_params["id"])
        if request.method == "DELETE":
            sb.plant.delete_subscription(sub_id)
            sb.save()
            return Response(status_code=204)
        body = await _body(request)
        sub = sb.plant.subscription(sub_id)
        sub["status"] = str(body.get("status", sub["status"]))
        sb.save()
        return JSONResponse({"id": sub_id, "status": sub["status"]})

    async def state(request: Request) -> Response:
        return JSONResponse({**sb.plant.dump(), "counts": sb.counts})

    table: list[tuple[str, Any, list[str]]] = [
        ("/reset", reset, ["POST"]),
        ("/faults", faults, ["GET", "POST", "DELETE"]),
        ("/rate-limit", rate_limit, ["POST"]),
        ("/deliveries", deliveries, ["GET"]),
        ("/idle", idle, ["POST"]),
        ("/workorders/{id:int}/skip", skip, ["POST"]),
        ("/subscriptions/{id:int}", subscription, ["PATCH", "DELETE"]),
        ("/state", state, ["GET"]),
    ]
    return [Route("/_sandbox" + p, _guarded(fn), methods=m) for p, fn, m in table]


def _injected(item: dict[str, Any]) -> InjectedAnswer:
    return InjectedAnswer(
        status=int(item["status"]),
        headers={str(k): str(v) for k, v in (item.get("headers") or {}).items()},
        body=item.get("body", {"errors": [{"error": "Injected fault"}]}),
        count=int(item.get("count", 1)),
    )


def _fault_view(sb: Sandbox) -> dict[str, Any]:
    answers = [
        {"status": a.status, "headers": a.headers, "count": a.count}
        for a in sb.injected
    ]
    return {**sb.dispatcher.faults.as_dict(), "answers": answers}
