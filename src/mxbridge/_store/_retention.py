"""Retention: removing old events whose handlers are all done.

An event goes once it was received before the cut-off and every one of its
deliveries has succeeded (or it had none): its deliveries, their attempts and
the record fetched for it go with it. An event with a delivery still pending,
failing, running or dead stays, whatever its age, so nothing that still needs
work or a person's attention is lost.

Each batch is a transaction of its own, short enough that the edge's appends
wait for it no longer than for any other write. Events are walked in the order
they were stored (``seq``), and the walk stops at the first one received after
the cut-off: stored order is received order, so no index on ``received_at`` is
needed, and a prune reads only what it removes and what it keeps.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mxbridge._store._schema import attempts, deliveries, event_records, events

__all__ = ["PruneStep", "prune_step"]


@dataclass(frozen=True, slots=True)
class PruneStep:
    """What one batch did, and where the next one starts."""

    removed: int
    kept: int
    last_seq: int
    finished: bool


def prune_step(
    conn: Connection, after_seq: int, before: float, limit: int, dry_run: bool
) -> PruneStep:
    """Remove the done events among the next `limit` stored after `after_seq`."""
    e = events.c
    rows = conn.execute(
        sa.select(e.seq, e.id, e.received_at)
        .where(e.seq > after_seq)
        .order_by(e.seq)
        .limit(limit)
    ).all()
    old = []
    for row in rows:
        if row.received_at >= before:
            break
        old.append(row)
    finished = len(old) < limit
    if not old:
        return PruneStep(0, 0, after_seq, finished)

    ids = [row.id for row in old]
    # Locked (on PostgreSQL) until the commit: a replay of one of these events
    # waits, then finds it gone, instead of re-arming a delivery deleted under it.
    d = deliveries.c
    unfinished = {
        row.event_id
        for row in conn.execute(
            sa.select(d.event_id, d.status).where(d.event_id.in_(ids)).with_for_update()
        )
        if row.status != "succeeded"
    }
    done = [event_id for event_id in ids if event_id not in unfinished]
    if done and not dry_run:
        _delete(conn, done)
    return PruneStep(len(done), len(unfinished), old[-1].seq, finished)


def _delete(conn: Connection, ids: Sequence[str]) -> None:
    d = deliveries.c
    of_events = sa.select(d.id).where(d.event_id.in_(ids)).scalar_subquery()
    conn.execute(attempts.delete().where(attempts.c.delivery_id.in_(of_events)))
    conn.execute(deliveries.delete().where(d.event_id.in_(ids)))
    conn.execute(event_records.delete().where(event_records.c.event_id.in_(ids)))
    conn.execute(events.delete().where(events.c.id.in_(ids)))
