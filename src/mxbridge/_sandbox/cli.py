"""The ``sandbox`` click group; the main CLI registers it. No side effects on import.

``mxbridge sandbox`` (or ``sandbox run``) serves the stand-in;
``mxbridge sandbox scenario NAME --url ...`` plays a scenario against one.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import httpx

__all__ = ["sandbox_group"]

DEFAULT_KEY = "sandbox-key"
F = TypeVar("F", bound=Callable[..., Any])


def _serve(
    host: str, port: int, api_key: str, rate_limit: int, state: Path | None, seed: bool
) -> None:
    import uvicorn

    from mxbridge._sandbox._app import SandboxConfig, create_app

    try:
        sock = socket.create_server((host, port))
    except OSError as exc:
        raise click.ClickException(f"cannot listen on {host}:{port}: {exc}") from None
    config = SandboxConfig(
        api_key=api_key, rate_limit=rate_limit or None, state_file=state, seed=seed
    )
    click.echo(
        f"MaintainX sandbox on http://{host}:{port}/v1 (key {api_key!r})", err=True
    )
    server = uvicorn.Server(uvicorn.Config(create_app(config), ws="none"))
    server.run(sockets=[sock])


_run_options = [
    click.option("--host", default="127.0.0.1", show_default=True),
    click.option("--port", default=8700, show_default=True, type=int),
    click.option(
        "--api-key",
        envvar="MXBRIDGE_SANDBOX_API_KEY",
        default=DEFAULT_KEY,
        show_default=True,
        help="The bearer key the sandbox accepts.",
    ),
    click.option(
        "--rate-limit",
        default=100,
        show_default=True,
        type=int,
        help="Requests per 60 s per key; 0 turns limiting off.",
    ),
    click.option(
        "--state",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Keep the state in this JSON file.",
    ),
    click.option("--seed/--no-seed", default=True, help="Start with the seed plant."),
]


def _with_run_options(func: F) -> F:
    for option in reversed(_run_options):
        func = option(func)
    return func


@click.group("sandbox", invoke_without_command=True)
@_with_run_options
@click.pass_context
def sandbox_group(
    ctx: click.Context,
    host: str,
    port: int,
    api_key: str,
    rate_limit: int,
    state: Path | None,
    seed: bool,
) -> None:
    """Run a local stand-in for MaintainX, or drive one."""
    if ctx.invoked_subcommand is None:
        _serve(host, port, api_key, rate_limit, state, seed)


@sandbox_group.command("run")
@_with_run_options
def run_command(
    host: str, port: int, api_key: str, rate_limit: int, state: Path | None, seed: bool
) -> None:
    """Serve the sandbox (the same as plain ``sandbox``)."""
    _serve(host, port, api_key, rate_limit, state, seed)


@sandbox_group.command("scenario")
@click.argument("name")
@click.option(
    "--url",
    default="http://127.0.0.1:8700/v1",
    show_default=True,
    help="The sandbox's API URL, ending in /v1.",
)
@click.option(
    "--api-key",
    envvar="MXBRIDGE_SANDBOX_API_KEY",
    default=DEFAULT_KEY,
    show_default=True,
)
def scenario_command(name: str, url: str, api_key: str) -> None:
    """Play scenario NAME (plant-day, breakdown, skipped-pm, request, part)."""
    from mxbridge._sandbox._scenario import SCENARIOS, play_scenario

    if name not in SCENARIOS:
        known = ", ".join(sorted(SCENARIOS))
        raise click.ClickException(f"unknown scenario {name!r}; known: {known}")
    try:
        lines = asyncio.run(play_scenario(name, url, api_key))
    except httpx.HTTPStatusError as exc:
        raise click.ClickException(
            f"the sandbox refused {exc.request.method} {exc.request.url.path}: "
            f"{exc.response.status_code} {exc.response.text[:200]}"
        ) from None
    except httpx.HTTPError as exc:
        raise click.ClickException(
            f"cannot reach the sandbox at {url}: {exc}"
        ) from None
    for line in lines:
        click.echo(line)
