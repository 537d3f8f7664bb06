"""The baseline: a minimal Starlette app that only answers 200.

Served by uvicorn with the settings ``mxbridge serve`` uses, so the ratio of
the two throughputs measures what mxbridge adds on top of the server stack.
Run as ``python _edge_baseline.py PORT``.
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route


async def ok(request: Request) -> Response:
    """Read the body, as the edge does, and answer 200 with a short JSON body."""
    await request.body()
    return Response(b'{"status":"ok"}', media_type="application/json")


async def ready(_request: Request) -> Response:
    """Answer the readiness probe."""
    return Response(b"ready")


app = Starlette(
    routes=[
        Route("/webhooks/maintainx", ok, methods=["POST"]),
        Route("/readyz", ready, methods=["GET"]),
    ]
)


def serve(served: Starlette, port: int) -> None:
    """Serve `served` on 127.0.0.1:`port` with the settings ``mxbridge serve`` uses."""
    config = uvicorn.Config(
        served,
        host="127.0.0.1",
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        server_header=False,
    )
    uvicorn.Server(config).run()


def main() -> None:
    """Serve `app` on 127.0.0.1 at the port given on the command line."""
    serve(app, int(sys.argv[1]))


if __name__ == "__main__":
    main()
