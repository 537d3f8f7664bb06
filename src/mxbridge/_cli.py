"""The ``mxbridge`` command: serve, work, send test deliveries, inspect and replay.

Every error a person can cause (a wrong argument, a broken configuration, an
unreachable service or store) is one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import asyncio
import gc
import json
import math
import os
import re
import socket
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

import click
import httpx

from mxbridge._cli_options import app_option, config_option, when
from mxbridge._config import DEFAULT_SOURCE, STORE_URL_ENV, Config, load_config
from mxbridge._database import sqlite_file
from mxbridge._errors import MxbridgeError
from mxbridge._logging import configure_logging, get_logger
from mxbridge._rules.cli import rules_group
from mxbridge._samples import apply_overrides, sample_body, sample_payload
from mxbridge._sandbox.cli import sandbox_group
from mxbridge._service import (
    Service,
    check_sources,
    load_bridge,
    make_store,
    retention_cutoff,
    with_store,
)
from mxbridge._signing import SIMPLE_SIGNATURE_HEADER, hmac_hex, sign_delivery
from mxbridge._sources import cli as sources_cli
from mxbridge._store import STATUSES, DeliveryRecord, SqlStore
from mxbridge._subscriptions.cli import subscriptions_group, webhooks_group

__all__ = ["cli", "main"]

T = TypeVar("T")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="maintainx-bridge", prog_name="mxbridge")
def cli() -> None:
    """mxbridge: receive, verify, store and act on MaintainX webhooks."""


def _setup(config_path: str | None) -> Config:
    config = load_config(config_path)
    configure_logging(config.logging.level, config.logging.format)
    return config


@cli.command()
@config_option
@app_option
@click.option("--host", help="Address to listen on (default from configuration).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on.")
@click.option("--no-worker", is_flag=True, help="Only receive; run workers apart.")
def serve(
    config_path: str | None,
    app_spec: str | None,
    host: str | None,
    port: int | None,
    no_worker: bool,
) -> None:
    """Receive deliveries and, unless --no-worker, run their handlers."""
    import uvicorn

    config = _setup(config_path)
    check_sources(config)
    bridge = load_bridge(app_spec or config.app)
    service = Service(config, bridge, with_worker=not no_worker)
    settings = service.uvicorn_config(host=host, port=port)
    # Bind and reach the store before starting anything, so that a busy port or
    # an unreachable store is one clear line.
    listening = _listen(settings.host, settings.port)
    with_store(config, lambda store: store.ping())
    bound_host, bound_port = listening.getsockname()[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    get_logger().info(
        "starting",
        listening=f"http://{shown_host}:{bound_port}/webhooks/maintainx",
        store=make_store(config).display_url,
        handlers=list(service.bridge.names()),
        sources=sorted(config.sources),
        worker=service.with_worker,
    )
    _settle_garbage_collector()
    uvicorn.Server(settings).run(sockets=[listening])


def _settle_garbage_collector() -> None:
    """Tune the garbage collector for a long-running service, once loaded.

    Every delivery allocates a few hundred short-lived objects, so with the
    default thresholds a collection runs every few requests, and each older
    one walks everything the imports created (hundreds of thousands of
    objects that live as long as the process). Freezing those and collecting
    the young generation less often took the edge benchmark's p99 time to
    acknowledge from 60-65 ms to 25-34 ms (docs/benchmarks.md).
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as exc:
        listening.close()
        raise click.ClickException(
            f"cannot listen on {host}:{port}: {exc.strerror or exc}"
        ) from exc
    listening.set_inheritable(True)
    return listening


@cli.command()
@config_option
@app_option
def worker(config_path: str | None, app_spec: str | None) -> None:
    """Run handlers for stored deliveries, without receiving any."""
    config = _setup(config_path)
    bridge = load_bridge(app_spec or config.app)
    service = Service(config, bridge, with_worker=True)
    _settle_garbage_collector()
    asyncio.run(service.run_worker())


@cli.command("send-test")
@click.argument("name")
@config_option
@click.option("--url", help="Where to send (default: this configuration's edge).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    help="The edge's port on this machine, when not the configured one.",
)
@click.option("--secret", help="Secret to sign with (default: the source's first).")
@click.option("--source", default=DEFAULT_SOURCE, show_default=True)
@click.option(
    "--set",
    "assignments",
    multiple=True,
    metavar="FIELD=VALUE",
    help="Override a field.",
)
def send_test(
    name: str,
    config_path: str | None,
    url: str | None,
    port: int | None,
    secret: str | None,
    source: str,
    assignments: Sequence[str],
) -> None:
    """Send a realistic, correctly signed delivery of event NAME to a service."""
    config = load_config(config_path)
    source_config = config.sources.get(source)
    if secret is None:
        if source_config is None:
            known = ", ".join(sorted(config.sources)) or "none"
            raise click.UsageError(
                f"source {source!r} is not in the configuration (its sources: "
                f"{known}); for a managed subscription's source, pass --secret"
            )
        if not source_config.secrets:
            where = source_config.secrets_env or "its secrets"
            raise click.UsageError(
                f"source {source!r} has no secret: set {where}, or pass --secret"
            )
        secret = source_config.secrets[0]
    if url is None:
        path = "/webhooks/maintainx" + (
            "" if source == DEFAULT_SOURCE else f"/{source}"
        )
        url = f"http://{config.server.host}:{port or config.server.port}{path}"
    body = sample_body(apply_overrides(sample_payload(name), assignments))
    headers = {"content-type": "application/json"}
    if source_config is not None and source_config.scheme == "simple":
        headers[SIMPLE_SIGNATURE_HEADER] = hmac_hex(secret, body)
    else:
        signed_url = (source_config and source_config.public_url) or url
        headers.update(sign_delivery(secret, int(time.time()), body, signed_url))
    try:
        response = httpx.post(url, content=body, headers=headers, timeout=10)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise click.ClickException(f"cannot reach {url}: {exc}") from exc
    click.echo(f"{response.status_code} {response.text}")
    if response.is_error:
        sys.exit(1)


@cli.group()
def events() -> None:
    """Inspect and replay stored events."""


@events.command("list")
@config_option
@click.option("--status", type=click.Choice(STATUSES), help="With a delivery in it.")
@click.option("--name", help="Event name, alias or glob (workorder.*).")
@click.option("--resource", "resource_id", help="Resource id (work order id, ...).")
@click.option("--limit", type=click.IntRange(1, 10000), default=50, show_default=True)
def events_list(
    config_path: str | None,
    status: Any,
    name: str | None,
    resource_id: str | None,
    limit: int,
) -> None:
    """List events, newest first."""
    found = _with_store(
        config_path,
        lambda store: store.list_events(
            status=status, name=name, resource_id=resource_id, limit=limit
        ),
    )
    if not found:
        _echo("no events")
        return
    for event in found:
        statuses = " ".join(f"{k}={v}" for k, v in sorted(event.statuses.items()))
        resource = (
            f"{event.resource_kind}:{event.resource_id}" if event.resource_id else "-"
        )
        _echo(
            f"{when(event.received_at)}  {event.id}  {event.event_type:<28} "
            f"{resource:<22} {statuses or 'no handlers'}"
        )


@events.command("show")
@click.argument("event_id")
@config_option
def events_show(event_id: str, config_path: str | None) -> None:
    """Show an event: payload, deliveries, attempts and last errors."""

    async def gather(store: SqlStore) -> Any:
        event = await store.get_event(event_id)
        if event is None:
            raise click.ClickException(f"no event {event_id}")
        return event, await store.deliveries(event_id), await store.attempts(event_id)

    event, deliveries, attempts = _with_store(config_path, gather)
    _echo(f"event     {event.id}")
    _echo(f"type      {event.event_type}  ({', '.join(event.names)})")
    _echo(f"source    {event.source}")
    _echo(f"resource  {event.resource_kind}:{event.resource_id}")
    _echo(f"occurred  {event.occurred_at.isoformat()}")
    _echo(f"received  {event.received_at.isoformat()}")
    _echo("payload")
    _echo(json.dumps(event.payload, indent=2, ensure_ascii=False))
    _echo("deliveries" if deliveries else "deliveries: none (no handler wanted it)")
    history = Counter(a.delivery_id for a in attempts)
    for d in deliveries:
        due = f" next {when(d.next_attempt_at)}" if d.status == "failed" else ""
        count = _attempts_text(d, history[d.id])
        _echo(f"  #{d.id} {d.handler}: {d.status}, {count}{due}")
        if d.last_error:
            # Whole: an unexpected exception's traceback says where it was raised.
            first, *rest = d.last_error.splitlines()
            _echo(f"     last error: {first}")
            for line in rest:
                _echo(f"       {line}")
    seen: Counter[int] = Counter()
    for a in attempts:
        seen[a.delivery_id] += 1
        took = round((a.finished_at - a.started_at) * 1000, 1)
        detail = f": {a.error.splitlines()[0]}" if a.error else ""
        _echo(
            f"  attempt #{a.delivery_id}.{seen[a.delivery_id]} {when(a.started_at)} "
            f"{a.outcome} {took} ms on {a.worker}{detail}"
        )


@events.command("replay")
@click.argument("event_id")
@config_option
def events_replay(event_id: str, config_path: str | None) -> None:
    """Re-arm every delivery of an event, to run its handlers again."""

    async def replay(store: SqlStore) -> int:
        if await store.get_event(event_id) is None:
            raise click.ClickException(f"no event {event_id}")
        return await store.replay(event_id)

    count = _with_store(config_path, replay)
    click.echo(f"re-armed {count} deliver{'y' if count == 1 else 'ies'} of {event_id}")


@events.command("prune")
@click.option(
    "--older-than",
    "days",
    type=float,
    help="Age in days; by default [store] keep_days.",
)
@click.option("--dry-run", is_flag=True, help="Count what would go; remove nothing.")
@config_option
def events_prune(days: float | None, dry_run: bool, config_path: str | None) -> None:
    """Remove old events whose deliveries all succeeded.

    Events with a delivery pending, failing, running or dead stay, whatever
    their age. An SQLite file keeps its size and reuses the space.
    """
    config = load_config(config_path)
    if days is not None and not (math.isfinite(days) and days > 0):
        raise click.UsageError("--older-than: a number of days over 0")
    days = days if days is not None else config.store.keep_days
    if days is None:
        raise click.UsageError("give --older-than DAYS, or set [store] keep_days")
    before = retention_cutoff(days, time.time())
    result = _with_existing_store(
        config, lambda store: store.prune(before, dry_run=dry_run)
    )
    verb = "would remove" if dry_run else "removed"
    click.echo(
        f"{verb} {result.removed} event(s) received before {when(before)} UTC; "
        f"kept {result.kept} of that age with deliveries not yet succeeded"
    )


@cli.group()
def dead() -> None:
    """Deliveries that failed for good: list them, try them again."""


@dead.command("list")
@config_option
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
def dead_list(config_path: str | None, limit: int) -> None:
    """List dead deliveries, most recent first."""

    async def gather(store: SqlStore) -> tuple[list[DeliveryRecord], Counter[int]]:
        found = await store.list_dead(limit)
        history: Counter[int] = Counter()
        for event_id in {d.event_id for d in found}:
            history.update(a.delivery_id for a in await store.attempts(event_id))
        return found, history

    found, history = _with_store(config_path, gather)
    if not found:
        _echo("no dead deliveries")
    for d in found:
        error = (d.last_error or "").splitlines()[0] if d.last_error else ""
        _echo(
            f"#{d.id}  {when(d.updated_at)}  {d.event_id}  {d.handler}  "
            f"{_attempts_text(d, history[d.id])}  {error}"
        )


def _attempts_text(delivery: DeliveryRecord, in_all: int) -> str:
    # A re-armed delivery (dead retry, replay) counts its attempts afresh; the
    # history keeps every attempt it ever had.
    count = f"{delivery.attempts} attempt(s)"
    if in_all > delivery.attempts:
        count += f" since re-armed, {in_all} in all"
    return count


class _DeliveryId(click.ParamType[int]):
    """A delivery's number as `dead list` shows it: ``3`` or ``#3``."""

    name = "ID"

    def convert(self, value: Any, param: Any, ctx: Any) -> int:
        text = str(value)
        digits = text.removeprefix("#")
        if re.fullmatch(r"[0-9]{1,18}", digits) and int(digits) > 0:
            return int(digits)
        hint = (
            f"; to run all of an event's handlers again: mxbridge events replay {text}"
            if text.startswith("evt_")
            else ""
        )
        self.fail(
            f"{text!r} is not a delivery id (the #N that `mxbridge dead list` "
            f"shows){hint}",
            param,
            ctx,
        )


@dead.command("retry")
@click.argument("delivery_ids", nargs=-1, type=_DeliveryId())
@click.option("--all", "retry_all", is_flag=True, help="Retry every dead delivery.")
@config_option
def dead_retry(
    delivery_ids: tuple[int, ...], retry_all: bool, config_path: str | None
) -> None:
    """Re-arm dead deliveries by id (see `dead list`), or --all."""
    if bool(delivery_ids) == retry_all:
        raise click.UsageError("give delivery ids or --all, not both or neither")
    ids = None if retry_all else list(dict.fromkeys(delivery_ids))
    count = _with_store(config_path, lambda store: store.retry_dead(ids))
    if ids is not None and count < len(ids):
        raise click.ClickException(
            f"re-armed {count} of the {len(ids)} deliveries given: the others are "
            "not dead, or not there (see `mxbridge dead list`)"
        )
    click.echo(f"re-armed {count} dead deliver{'y' if count == 1 else 'ies'}")


cli.add_command(sandbox_group)
cli.add_command(sources_cli.poll)
cli.add_command(sources_cli.reconcile)
cli.add_command(sources_cli.backfill)
cli.add_command(rules_group)
cli.add_command(subscriptions_group)
cli.add_command(webhooks_group)


def _with_store(
    config_path: str | None, action: Callable[[SqlStore], Awaitable[T]]
) -> T:
    return _with_existing_store(load_config(config_path), action)


def _with_existing_store(
    config: Config, action: Callable[[SqlStore], Awaitable[T]]
) -> T:
    """`with_store` for commands that look into a store: one must be there.

    Opening an SQLite file that does not exist would make an empty one, and
    the command would say "no events" about the wrong place.
    """
    path = sqlite_file(config.store.url)
    if path is not None and not path.exists():
        given = STORE_URL_ENV if os.environ.get(STORE_URL_ENV) else "--config"
        raise click.ClickException(
            f"no store at {path}: nothing has been received with this "
            f"configuration (is {given} the one serve uses?)"
        )
    return with_store(config, action)


_UNPRINTABLE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _echo(text: str) -> None:
    """`click.echo` for what a delivery brought: control characters (a terminal
    would act on them) and lone surrogates (no encoding takes them) spelled out."""
    text = text.encode("utf-8", "backslashreplace").decode("utf-8")
    click.echo(_UNPRINTABLE.sub(lambda found: f"\\x{ord(found[0]):02x}", text))


def _one_line(text: str) -> str:
    return " ".join(text.split())


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command line; every error is one line and a non-zero exit."""
    try:
        result = cli.main(args=argv, prog_name="mxbridge", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("mxbridge: aborted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        hint = f" (see: {exc.ctx.command_path} --help)" if exc.ctx else ""
        click.echo(
            f"mxbridge: error: {_one_line(exc.format_message())}{hint}", err=True
        )
        sys.exit(2)
    except click.ClickException as exc:
        click.echo(f"mxbridge: error: {_one_line(exc.format_message())}", err=True)
        sys.exit(exc.exit_code)
    except MxbridgeError as exc:
        click.echo(f"mxbridge: error: {_one_line(str(exc))}", err=True)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:
        # A mistake of ours, not the user's: still one line, unless asked.
        if os.environ.get("MXBRIDGE_DEBUG"):
            raise
        click.echo(
            f"mxbridge: error: unexpected {type(exc).__name__}: "
            f"{_one_line(str(exc))} (MXBRIDGE_DEBUG=1 shows the traceback)",
            err=True,
        )
        sys.exit(1)
    sys.exit(result if isinstance(result, int) else 0)
