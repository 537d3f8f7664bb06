"""What the store and the mirror share about the databases they write to.

Both may be written by several processes at once (``serve`` and ``worker``,
several workers), and both create their tables at first use: two processes
starting together on a fresh database must not both try.
"""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import tenacity
from sqlalchemy.engine import Connection

__all__ = ["READ_ONLY", "sqlite_engine", "sqlite_file", "take_turns"]

# The execution option that marks a transaction as only reading.
READ_ONLY = "mxbridge_read_only"


def sqlite_engine(
    url: sa.URL, *, lock_timeout: float, synchronous: str | None = None
) -> sa.Engine:
    """An engine on an SQLite file in WAL mode, each transaction ``BEGIN IMMEDIATE``.

    Immediate: a transaction holds the write lock from its first statement, so
    a read-then-write (or creating tables where none are) cannot interleave
    with another process's. A write waits `lock_timeout` seconds for the lock.
    """
    if url.database and url.database != ":memory:":
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, connect_args={"timeout": lock_timeout})

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" below own the transactions, not pysqlite.
        dbapi_conn.isolation_level = None
        cursor = dbapi_conn.cursor()
        # Turning a new file to WAL takes a lock SQLite does not wait for: two
        # processes opening a fresh file at once would see "database is locked".
        for attempt in tenacity.Retrying(
            retry=tenacity.retry_if_exception(_is_locked),
            stop=tenacity.stop_after_delay(lock_timeout),
            wait=tenacity.wait_random(0.005, 0.05),
            reraise=True,
        ):
            with attempt:
                cursor.execute("PRAGMA journal_mode=WAL")
        if synchronous is not None:
            cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        # A read-only transaction needs no lock in WAL mode: it sees a snapshot
        # and neither waits for writers nor makes them wait.
        reading = conn.get_execution_options().get(READ_ONLY, False)
        conn.exec_driver_sql("BEGIN" if reading else "BEGIN IMMEDIATE")

    return engine


def sqlite_file(url: str) -> Path | None:
    """The file of an SQLite URL; None for another database, memory or a bad URL."""
    try:
        parsed = sa.engine.make_url(url)
    except sa.exc.ArgumentError:
        return None
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database:
        return None
    if database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _is_locked(exc: BaseException) -> bool:
    return isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)


def take_turns(conn: Connection, *key: str) -> None:
    """Make other transactions on the same `key` wait for this one to end.

    SQLite (with `sqlite_engine`) writes one transaction at a time already;
    PostgreSQL takes an advisory lock on a 64-bit digest of the key, held
    until commit. For a decision no row lock can guard: a row not there yet.
    """
    if conn.dialect.name != "postgresql":
        return
    digest = hashlib.blake2b("\0".join(key).encode(), digest_size=8).digest()
    number = int.from_bytes(digest, "big", signed=True)
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(number)))
