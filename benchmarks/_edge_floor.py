"""The floor: the least an edge can do and keep mxbridge's promise, by hand.

Verifies MaintainX's two signatures (with mxbridge's own pure function),
parses the body, derives the event id from a digest, and answers only once the
event is committed to an SQLite file (WAL, ``synchronous = FULL``). Events that
arrive together share a transaction: they are inserted on the event loop
itself, and only the commit, which waits for the disk, runs on a thread, one
at a time. Of the designs tried this one spent the least CPU per event; it
blocks the event loop while SQLite inserts, which a service sharing its file
with other processes cannot afford. No configuration, no store interface, no
deliveries, no worker, no log line, no metrics: the cost of the server stack
plus the unavoidable work, so the benchmark can say how much of mxbridge's gap
to the baseline is the design and how much is this stack. Run as
``python _edge_floor.py PORT DB SECRET URL``.
"""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import orjson
from _edge_baseline import serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from mxbridge._signing import VerificationError, verify_maintainx

_Pending = tuple[str, bytes, asyncio.Future[bool]]


class Writer:
    """Batches of events inserted on the loop, each committed on a thread."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS events (id TEXT PRIMARY KEY, raw BLOB)"
        )
        self._committer = ThreadPoolExecutor(1)
        self._pending: list[_Pending] = []
        self._committing = False
        self._scheduled = False

    def submit(self, event_id: str, raw: bytes) -> asyncio.Future[bool]:
        """Queue an event; the future says True (new) or False (already stored)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._pending.append((event_id, raw, future))
        if not self._scheduled and not self._committing:
            self._scheduled = True
            loop.call_soon(self._flush)
        return future

    def _flush(self) -> None:
        self._scheduled = False
        if self._committing or not self._pending:
            return
        batch, self._pending = self._pending, []
        try:
            self._db.execute("BEGIN IMMEDIATE")
            fresh = [
                self._db.execute(
                    "INSERT OR IGNORE INTO events (id, raw) VALUES (?, ?)",
                    (event_id, raw),
                ).rowcount
                == 1
                for event_id, raw, _ in batch
            ]
        except sqlite3.Error as exc:
            self._fail(batch, exc)
            return
        self._committing = True
        commit = asyncio.get_running_loop().run_in_executor(
            self._committer, self._db.execute, "COMMIT"
        )
        commit.add_done_callback(lambda done: self._committed(batch, fresh, done))

    def _committed(
        self, batch: list[_Pending], fresh: list[bool], done: asyncio.Future[object]
    ) -> None:
        self._committing = False
        error = done.exception()
        if error is not None:
            self._fail(batch, error)
        else:
            for (_, _, future), new in zip(batch, fresh, strict=True):
                if not future.done():
                    future.set_result(new)
        if self._pending:
            self._flush()

    def _fail(self, batch: list[_Pending], error: BaseException) -> None:
        if self._db.in_transaction:
            self._db.execute("ROLLBACK")
        for _, _, future in batch:
            if not future.done():
                future.set_exception(error)


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
