"""The edge: the ASGI app that receives MaintainX deliveries.

For each delivery, in order: find the source, read the body once with a size
limit, verify its signature, parse it into an `Event`, route it to the handlers
that want it, append it to the store, and answer only after the commit. Every
side effect happens later, in the worker.

    401  the signature does not prove the delivery (reason logged, never a secret)
    400  the body is not a JSON object naming its event
    404  no such source
    413  the body is over the limit (by Content-Length, or while reading)
    503  the store could not commit: the sender may send it again
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from mxbridge._bridge import Bridge
from mxbridge._config import DEFAULT_SOURCE, SourceConfig
from mxbridge._errors import PayloadError, StoreError, VerificationError
from mxbridge._events import Event, parse_event
from mxbridge._logging import get_logger
from mxbridge._metrics import Metrics
from mxbridge._signing import (
    BODY_SIGNATURE_HEADER,
    EVENT_ID_HEADER,
    SIMPLE_SIGNATURE_HEADER,
    URI_SIGNATURE_HEADER,
    verify_maintainx,
    verify_simple,
)
from mxbridge._store import Store

__all__ = ["SourceLookup", "create_app"]

SourceLookup = Callable[[str], Awaitable[SourceConfig | None]]
_SIGNATURE_HEADERS = frozenset(
    (
        BODY_SIGNATURE_HEADER,
        URI_SIGNATURE_HEADER,
        SIMPLE_SIGNATURE_HEADER,
        EVENT_ID_HEADER,
    )
)

log = get_logger("mxbridge.edge")
_DIGITS = re.compile(r"[0-9]+")


class _Rejected(Exception):
    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason


def create_app(
    *,
    store: Store,
    bridge: Bridge,
    sources: SourceLookup,
    max_body_bytes: int = 1024 * 1024,
    read_timeout: float = 10.0,
    commit_timeout: float = 8.0,
    metrics: Metrics | None = None,
    clock: Callable[[], float] = time.time,
    lifespan: Any = None,
    on_received: Callable[[str], None] | None = None,
) -> Starlette:
    """Build the edge's Starlette app around a store, a bridge and its sources.

    A body not read within `read_timeout` seconds is answered 408. An event not
    committed within `commit_timeout` seconds is answered 503 (MaintainX gives
    up at 10 s); its commit may still finish, and a copy sent again is then a
    duplicate. `on_received` is told the source of each delivery stored.
    """
    stats = metrics or Metrics()

    async def receive(request: Request) -> Response:
        started = time.perf_counter()
        source = request.path_params.get("source", DEFAULT_SOURCE)
        try:
            event, result_status = await _accept(request, source)
        except _Rejected as rejected:
            return _reject(rejected, source, started, stats)
        if on_received is not None:
            on_received(source)
        elapsed = time.perf_counter() - started
        stats.deliveries.labels(source, result_status).inc()
        stats.ack_seconds.observe(elapsed)
        log.info(
            "delivery received",
            event_id=event.id,
            names=list(event.names),
            source=source,
            outcome=result_status,
            ms=round(elapsed * 1000, 2),
        )
        answer = {"status": result_status, "event_id": event.id}
        return Response(orjson.dumps(answer), media_type="application/json")

    async def _accept(request: Request, source: str) -> tuple[Event, str]:
        try:
            config = await sources(source)
        except StoreError as exc:
            raise _unavailable(exc) from exc
        if config is None:
            raise _Rejected(404, "unknown_source", "no such source")
        # One deadline, moved once: the body must arrive within read_timeout,
        # then the commit within commit_timeout.
        committing = False
        try:
            async with asyncio.timeout(read_timeout) as deadline:
                event, handlers = await _receive_event(request, config, source)
                committing = True
                deadline.reschedule(asyncio.get_running_loop().time() + commit_timeout)
                result = await store.append(event, handlers)
        except StoreError as exc:
            raise _unavailable(exc) from exc
        except TimeoutError as exc:
            if committing:
                message = f"the store did not commit within {commit_timeout} s"
                raise _Rejected(503, "store_unavailable", message) from exc
            message = f"body not received within {read_timeout} s"
            raise _Rejected(408, "read_timeout", message) from exc
        if not handlers and not result.duplicate:
            log.info(
                "no handler wants this event",
                event_id=event.id,
                names=list(event.names),
            )
        return event, "duplicate" if result.duplicate else "accepted"

    async def _receive_event(
        request: Request, config: SourceConfig, source: str
    ) -> tuple[Event, list[str]]:
        """Read, verify and parse a delivery, and name the handlers that want it."""
        length, headers = _wanted_headers(request)
        raw = await _read_body(request, length, max_body_bytes)
        _verify(config, headers, raw, clock())

        # The event id header is signed by nothing: only the guide's simple
        # scheme defines it, and only there does it name the event.
        header_id = headers.get(EVENT_ID_HEADER) if config.scheme == "simple" else None
        try:
            event = parse_event(
                raw,
                source=source,
                received_at=datetime.fromtimestamp(clock(), UTC),
                header_event_id=header_id,
            )
        except PayloadError as exc:
            raise _Rejected(400, "bad_payload", str(exc)) from exc
        return event, bridge.route(event)

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_request: Request) -> Response:
        try:
            await store.ping()
        except StoreError as exc:
            return JSONResponse({"status": "unavailable", "reason": str(exc)}, 503)
        return JSONResponse({"status": "ready"})

    async def metrics_endpoint(_request: Request) -> Response:
        # The backlog is the store's, shared by every process: read it now.
        try:
            backlog = await store.backlog()
        except StoreError as exc:
            # Absent, not stale: an alert on the backlog sees the gap.
            log.error("could not read the backlog for /metrics", error=str(exc))
            stats.backlog.clear()
            stats.oldest_due_age.set(float("nan"))
        else:
            for status, count in backlog.counts.items():
                stats.backlog.labels(status).set(count)
            due = backlog.oldest_due_at
            stats.oldest_due_age.set(0 if due is None else max(0.0, clock() - due))
        return Response(generate_latest(stats.registry), media_type=CONTENT_TYPE_LATEST)

    # With or without a trailing slash: a redirect would send MaintainX to a
    # URL built from the Host header, which behind a proxy is not ours.
    routes = [
        Route("/webhooks/maintainx", receive, methods=["POST"]),
        Route("/webhooks/maintainx/", receive, methods=["POST"]),
        Route("/webhooks/maintainx/{source}", receive, methods=["POST"]),
        Route("/webhooks/maintainx/{source}/", receive, methods=["POST"]),
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.router.redirect_slashes = False
    return app


def _unavailable(exc: StoreError) -> _Rejected:
    # The database's own words go to the log, not to whoever sent the delivery.
    log.error("store unavailable", error=str(exc))
    return _Rejected(503, "store_unavailable", "the store could not commit")


async def _read_body(request: Request, declared: str | None, limit: int) -> bytes:
    try:
        return await _read_bounded(request, declared, limit)
    except ClientDisconnect as exc:
        raise _Rejected(400, "client_disconnected", "the sender hung up") from exc


async def _read_bounded(request: Request, declared: str | None, limit: int) -> bytes:
    if declared is not None:
        digits = declared.strip()
        # ASCII digits only ("²" is a digit to str.isdigit), and no int() of
        # thousands of them: Python refuses those, and leading zeros are legal.
        if not _DIGITS.fullmatch(digits):
            raise _Rejected(400, "bad_length", "Content-Length is not a number")
        significant = digits.lstrip("0") or "0"
        if len(significant) > len(str(limit)) or int(significant) > limit:
            raise _Rejected(413, "too_large", f"declared body is over {limit} bytes")
    # Count while reading too: a chunked body has no Content-Length to trust.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _Rejected(413, "too_large", f"body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _wanted_headers(request: Request) -> tuple[str | None, dict[str, str]]:
    """The Content-Length and the signature headers, in one pass over the headers.

    A signature header sent twice counts with all its values, so every v1 in
    either is tried.
    """
    length = None
    found: dict[str, str] = {}
    for raw_name, raw_value in request.scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        if name == "content-length" and length is None:
            length = raw_value.decode("latin-1")
        elif name in _SIGNATURE_HEADERS:
            value = raw_value.decode("latin-1")
            found[name] = f"{found[name]},{value}" if name in found else value
    return length, found


def _verify(
    config: SourceConfig, headers: Mapping[str, str], raw: bytes, now: float
) -> None:
    try:
        if config.scheme == "simple":
            verify_simple(headers, raw, config.secrets)
        else:
            verify_maintainx(
                headers,
                raw,
                config.secrets,
                public_url=config.public_url,
                now=now,
                tolerance=config.tolerance_seconds,
            )
    except VerificationError as exc:
        raise _Rejected(401, exc.reason, str(exc)) from exc


def _reject(
    rejected: _Rejected, source: str, started: float, stats: Metrics
) -> Response:
    elapsed = time.perf_counter() - started
    # Any path segment can name a source: keep made-up ones out of the labels
    # and cut long ones short in the log.
    label = "(unknown)" if rejected.reason == "unknown_source" else source
    source = source if len(source) <= 64 else source[:64] + "..."
    stats.deliveries.labels(label, rejected.reason).inc()
    log.warning(
        "delivery rejected",
        source=source,
        status=rejected.status,
        reason=rejected.reason,
        detail=str(rejected),
        ms=round(elapsed * 1000, 2),
    )
    body = {"status": "rejected", "reason": rejected.reason, "detail": str(rejected)}
    return JSONResponse(body, rejected.status)
