"""The floor: the least an edge can do and keep mxbridge's promise, by hand.

Verifies MaintainX's two signatures (with mxbridge's own pure function),
parses the body, derives the event id from a digest, and answers only once the
event is committed to an SQLite file (WAL, ``synchronous = FULL``), by a
writer thread that commits whatever has queued up as one transaction. No
configuration, no store interface, no deliveries, no worker, no log line, no
metrics: the cost of the server stack plus the unavoidable work, so the
benchmark can say how much of mxbridge's gap to the baseline is the design
and how much is this stack. Run as ``python _edge_floor.py PORT DB SECRET URL``.
"""

from __future__ import annotations

import asyncio
import hashlib
import queue
import sqlite3
import sys
import threading
import time

import orjson
from _edge_baseline import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mxbridge._signing import VerificationError, verify_maintainx

_Pending = tuple[str, bytes, asyncio.Future[bool], asyncio.AbstractEventLoop]


class Writer:
    """One thread that commits queued events in batches, one transaction each."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._queue: queue.SimpleQueue[_Pending] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def submit(self, event_id: str, raw: bytes) -> asyncio.Future[bool]:
        """Queue an event; the future says True (new) or False (already stored)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._queue.put((event_id, raw, future, loop))
        return future

    def _run(self) -> None:
        db = sqlite3.connect(self._path, isolation_level=None)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.execute("CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, raw BLOB)")
        while True:
            batch = [self._queue.get()]
            while not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                db.execute("BEGIN IMMEDIATE")
                fresh = [
                    db.execute(
                        "INSERT OR IGNORE INTO events (id, raw) VALUES (?, ?)",
                        (event_id, raw),
                    ).rowcount
                    == 1
                    for event_id, raw, _, _ in batch
                ]
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                for _, _, future, loop in batch:
                    loop.call_soon_threadsafe(_fail, future, exc)
                continue
            for (_, _, future, loop), new in zip(batch, fresh, strict=True):
                loop.call_soon_threadsafe(_resolve, future, new)


def _resolve(future: asyncio.Future[bool], new: bool) -> None:
    if not future.done():
        future.set_result(new)


def _fail(future: asyncio.Future[bool], exc: BaseException) -> None:
    if not future.done():
        future.set_exception(exc)


def create_app(db_path: str, secret: str, public_url: str) -> Starlette:
    """The floor's app: one webhook route and a readiness probe."""
    writer = Writer(db_path)

    async def receive(request: Request) -> Response:
        body = await request.body()
        try:
            verify_maintainx(
                request.headers,
                body,
                [secret],
                public_url=public_url,
                now=time.time(),
                tolerance=0,
            )
        except VerificationError:
            return Response(b'{"error":"unauthorized"}', 401)
        try:
            payload = orjson.loads(body)
        except orjson.JSONDecodeError:
            return Response(b'{"error":"not JSON"}', 400)
        if not isinstance(payload, dict):
            return Response(b'{"error":"not an object"}', 400)
        event_id = hashlib.sha256(b"default\n" + body).hexdigest()
        try:
            new = await writer.submit(event_id, body)
        except sqlite3.Error:
            return Response(b'{"error":"store unavailable"}', 503)
        status = "accepted" if new else "duplicate"
        answer = orjson.dumps({"status": status, "event_id": event_id})
        return Response(answer, media_type="application/json")

    async def ready(_request: Request) -> Response:
        return Response(b"ready")

    return Starlette(
        routes=[
            Route("/webhooks/maintainx", receive, methods=["POST"]),
            Route("/readyz", ready, methods=["GET"]),
        ]
    )


def main() -> None:
    """Serve the floor on 127.0.0.1 as the baseline is served."""
    port, db_path, secret, public_url = sys.argv[1:5]
    serve(create_app(db_path, secret, public_url), int(port))


if __name__ == "__main__":
    main()
