"""The ``poll``, ``reconcile`` and ``backfill`` commands; the main CLI adds them."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click

from mxbridge._bridge import Bridge
from mxbridge._cli_options import app_option, config_option
from mxbridge._config import Config, load_config
from mxbridge._errors import ApiError
from mxbridge._logging import configure_logging
from mxbridge._maintainx import MaintainXClient
from mxbridge._sources._poll import PageReport, Poller
from mxbridge._sources._reconcile import Reconciler
from mxbridge._sources._runtime import every as run_every
from mxbridge._sources._runtime import make_client, make_poller, poll_rounds
from mxbridge._store import Store

__all__ = ["backfill", "poll", "reconcile"]

T = TypeVar("T")
Job = Callable[[Store, MaintainXClient, Bridge], Awaitable[T]]


def _run(config: Config, app_spec: str | None, job: Job[T]) -> T:
    from mxbridge._service import load_bridge, make_store

    bridge = load_bridge(app_spec or config.app)
    store = make_store(config)

    async def run() -> T:
        client = make_client(config)
        await store.open()
        try:
            return await job(store, client, bridge)
        except ApiError as exc:
            raise click.ClickException(str(exc)) from exc
        finally:
            await client.aclose()
            await store.close()

    return asyncio.run(run())


def _setup(config_path: str | None) -> Config:
    config = load_config(config_path)
    configure_logging(config.logging.level, config.logging.format)
    return config


@click.command()
@config_option
@app_option
@click.option(
    "--every",
    type=click.FloatRange(min=1),
    help="Poll every SECONDS until stopped (default: once).",
)
@click.option("--walk/--no-walk", default=True, help="Also read requests and assets.")
def poll(
    config_path: str | None, app_spec: str | None, every: float | None, walk: bool
) -> None:
    """Turn work orders (requests, assets) changed since the watermark into events."""
    config = _setup(config_path)

    async def job(store: Store, client: MaintainXClient, bridge: Bridge) -> None:
        poller = make_poller(config, store, client, bridge)
        one_round = poll_rounds(poller, config, walk=walk)
        if every is None:
            click.echo(f"poll: {await one_round()} new event(s) stored")
            return
        # Until stopped: a failed round is logged and tried again, not fatal.
        await run_every(every, one_round, "poll")

    _run(config, app_spec, job)


@click.command()
@config_option
@app_option
@click.option(
    "--hours",
    type=click.FloatRange(min=0, min_open=True),
    help="Also refetch work orders changed in the last HOURS (default: config).",
)
def reconcile(
    config_path: str | None, app_spec: str | None, hours: float | None
) -> None:
    """Refetch likely-changed work orders; emit those whose digest moved."""
    config = _setup(config_path)

    async def job(store: Store, client: MaintainXClient, bridge: Bridge) -> int:
        span = hours if hours is not None else config.reconcile.hours
        return await Reconciler(store, client, bridge, hours=span).run_once()

    emitted = _run(config, app_spec, job)
    click.echo(f"reconcile: {emitted} changed work order(s) stored as events")


@click.command()
@click.option(
    "--since",
    required=True,
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]),
    help="Walk work orders changed at or after DATE (UTC).",
)
@click.option(
    "--dispatch", is_flag=True, help="Also run the handlers (default: store)."
)
@config_option
@app_option
def backfill(
    since: datetime, dispatch: bool, config_path: str | None, app_spec: str | None
) -> None:
    """Walk work order history into the store; resumes where it stopped."""
    config = _setup(config_path)
    start = since.replace(tzinfo=UTC)
    name = f"backfill:{start.strftime('%Y-%m-%dT%H:%M:%SZ')}"
    span = max(1, int(datetime.now(UTC).timestamp() - start.timestamp()))

    async def job(store: Store, client: MaintainXClient, bridge: Bridge) -> int:
        with click.progressbar(length=span, label="backfill", file=None) as bar:
            poller = Poller(
                store,
                client,
                bridge,
                source="backfill",
                name=name,
                overlap=0.0,
                start=start,
                page_size=config.poll.page_size,
                dispatch=dispatch,
                on_page=_advance(bar, start.timestamp()),
            )
            return await poller.run_once()

    emitted = _run(config, app_spec, job)
    quiet = "" if dispatch else " (no handlers run; --dispatch runs them)"
    click.echo(f"backfill: {emitted} event(s) stored{quiet}")


def _advance(bar: Any, start: float) -> Callable[[PageReport], None]:
    done = 0

    def on_page(report: PageReport) -> None:
        nonlocal done
        if report.last_updated_at is None:
            return
        moment = datetime.fromisoformat(report.last_updated_at.replace("Z", "+00:00"))
        reached = int(moment.timestamp() - start)
        if reached > done:
            bar.update(reached - done)
            done = reached

    return on_page
