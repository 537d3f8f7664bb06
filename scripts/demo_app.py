"""The demo's handlers: one line for every MaintainX event the bridge handles."""

from __future__ import annotations

import structlog

from mxbridge import Bridge, Event

bridge = Bridge()
log = structlog.get_logger("demo")


@bridge.on("*")
async def show(event: Event) -> None:
    """Log what happened, to which record, in the plant."""
    log.info(
        "handled",
        type=event.event_type,
        names=list(event.names[1:]),
        resource=f"{event.resource_kind}:{event.resource_id}",
        source=event.source,
    )
