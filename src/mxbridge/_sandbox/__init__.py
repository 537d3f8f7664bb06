"""A local stand-in for MaintainX: its REST API under /v1, and real deliveries.

`create_app` builds the Starlette app; `serve_in_thread` runs any ASGI app on a
loopback port (for tests); `play_scenario` drives a running sandbox through a
stretch of plant life. The click group lives in `mxbridge._sandbox.cli`.
"""

from __future__ import annotations

from mxbridge._sandbox._app import Sandbox, SandboxConfig, create_app
from mxbridge._sandbox._scenario import SCENARIOS, play_scenario
from mxbridge._sandbox._server import serve_in_thread

__all__ = [
    "SCENARIOS",
    "Sandbox",
    "SandboxConfig",
    "create_app",
    "play_scenario",
    "serve_in_thread",
]
