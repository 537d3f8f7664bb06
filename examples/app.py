"""Example handlers: what a team writes to act on MaintainX events in Python."""

from __future__ import annotations

import structlog

from mxbridge import Bridge, Event

bridge = Bridge()
log = structlog.get_logger("examples.app")


@bridge.on("workorder.created")
async def announce_new_work_order(event: Event) -> None:
    """Log every new work order with who reported it."""
    log.info("new work order", work_order=event.resource_id, reported_by=event.actor_id)


@bridge.on("workorder.completed")
def record_completion(event: Event) -> None:
    """A synchronous handler runs in a thread; this one logs the completion."""
    log.info("work order done", work_order=event.resource_id, at=str(event.occurred_at))
