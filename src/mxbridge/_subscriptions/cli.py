"""The ``subscriptions`` and ``webhooks`` click groups; the main CLI registers them.

Every command reads the ``[maintainx]`` section of the configuration and the
API key from the environment variable it names (``MAINTAINX_API_KEY``), and
remembers what it makes in the store.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from mxbridge._cli_options import config_option, when
from mxbridge._config import Config, load_config
from mxbridge._service import make_store, with_store
from mxbridge._sources._runtime import make_client
from mxbridge._store import DELETED, SubscriptionRecord
from mxbridge._subscriptions._manager import (
    SubscriptionManager,
    Wanted,
    resolve_events,
)
from mxbridge._subscriptions._plan import Plan, silent_subscriptions

__all__ = ["subscriptions_group", "webhooks_group"]

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])
Action = Callable[[SubscriptionManager, Config], Awaitable[T]]

_create_options = [
    config_option,
    click.option(
        "--url",
        "public_url",
        help="Where MaintainX reaches this edge's /webhooks/maintainx "
        "(default: [maintainx] public_url).",
    ),
    click.option(
        "--serialize", is_flag=True, help="Ask for the full record in each delivery."
    ),
    click.option(
        "--filter",
        "filters",
        multiple=True,
        metavar="NAME=V1,V2",
        help="A MaintainX filter, e.g. oneOfStatuses=DONE,ON_HOLD.",
    ),
]


def _with_create_options(func: F) -> F:
    for option in reversed(_create_options):
        func = option(func)
    return func


# -- plumbing --------------------------------------------------------------------


def _run(config_path: str | None, action: Action[T]) -> T:
    config = load_config(config_path)
    client = make_client(config)

    async def run() -> T:
        store = make_store(config)
        async with client:
            await store.open()
            try:
                return await action(SubscriptionManager(client, store), config)
            finally:
                await store.close()

    return asyncio.run(run())


def _public_url(given: str | None, config: Config) -> str:
    url = given or config.maintainx.public_url
    if not url:
        raise click.UsageError(
            "no public URL: pass --url or set [maintainx] public_url"
        )
    return url


def _parse_filters(items: Sequence[str]) -> dict[str, list[str | int]]:
    filters: dict[str, list[str | int]] = {}
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise click.UsageError(f"--filter {item!r}: expected NAME=V1,V2")
        parsed = [v.strip() for v in values.split(",") if v.strip()]
        filters[name.strip()] = [int(v) if v.isdigit() else v for v in parsed]
    return filters


def _filters_text(filters: Mapping[str, Sequence[object]]) -> str:
    return "".join(f" {k}={','.join(map(str, v))}" for k, v in filters.items())


def _describe(record: SubscriptionRecord) -> str:
    options = " serialize" if record.serialize else ""
    filters = _filters_text(record.filters)
    return f"{record.id}  {record.event_type}{options}{filters}  {record.url}"


def _create(
    config_path: str | None,
    names: Sequence[str],
    public_url: str | None,
    serialize: bool,
    filter_items: Sequence[str],
) -> None:
    event_types = resolve_events(names)
    filters = _parse_filters(filter_items)
    wanted = [Wanted(t, serialize, filters) for t in event_types]

    async def create(
        manager: SubscriptionManager, config: Config
    ) -> list[SubscriptionRecord]:
        return await manager.create(wanted, _public_url(public_url, config))

    for record in _run(config_path, create):
        pending = "  (PENDING_APPROVAL: ask MaintainX support)"
        note = pending if record.status == "PENDING_APPROVAL" else ""
        click.echo(f"created {_describe(record)}{note}")


# -- subscriptions -----------------------------------------------------------------


@click.group("subscriptions")
def subscriptions_group() -> None:
    """The MaintainX subscriptions that feed this bridge, and their secrets."""


@subscriptions_group.command("create")
@click.argument("events", nargs=-1, required=True)
@_with_create_options
def create_command(
    events: tuple[str, ...],
    config_path: str | None,
    public_url: str | None,
    serialize: bool,
    filters: tuple[str, ...],
) -> None:
    """Create one subscription per EVENT (MaintainX type or dotted name)."""
    _create(config_path, events, public_url, serialize, filters)


@subscriptions_group.command("list")
@config_option
@click.option("--offline", is_flag=True, help="Show what is stored; ask no API.")
def list_command(config_path: str | None, offline: bool) -> None:
    """List the subscriptions mxbridge knows, as MaintainX sees them now."""

    async def refresh(
        manager: SubscriptionManager, _config: Config
    ) -> list[SubscriptionRecord]:
        return await manager.refresh()

    config = load_config(config_path)
    records = (
        with_store(config, lambda store: store.list_subscriptions())
        if offline
        else _run(config_path, refresh)
    )
    hours = config.maintainx.silence_warning_hours
    if not records:
        click.echo("no subscriptions")
        return
    quiet = {r.id for r in silent_subscriptions(records, time.time(), hours * 3600)}
    for record in records:
        click.echo(_list_line(record, record.id in quiet, hours))


def _list_line(record: SubscriptionRecord, quiet: bool, hours: float) -> str:
    flags = []
    if record.status == DELETED:
        flags.append("DELETED by MaintainX: run `subscriptions sync` or delete it")
    elif record.status == "PENDING_APPROVAL":
        flags.append("PENDING_APPROVAL: MaintainX support must approve it")
    if quiet:
        flags.append(f"no delivery for over {hours:g} h while others had some")
    warning = "  ! " + "; ".join(flags) if flags else ""
    return (
        f"{record.id:<8} {record.status:<16} {record.event_type:<28} "
        f"{record.source:<40} last {when(record.last_delivery_at, 'never')}  "
        f"{record.origin}{warning}"
    )


@subscriptions_group.command("delete")
@click.argument("ids", nargs=-1, type=int)
@click.option("--all", "delete_all", is_flag=True, help="Delete every one known.")
@config_option
def delete_command(
    ids: tuple[int, ...], delete_all: bool, config_path: str | None
) -> None:
    """Delete subscriptions at MaintainX and forget them (by id, or --all)."""
    if bool(ids) == delete_all:
        raise click.UsageError("give subscription ids or --all, not both or neither")

    async def delete(manager: SubscriptionManager, _config: Config) -> list[int]:
        known = await manager.store.list_subscriptions()
        return await manager.delete([r.id for r in known] if delete_all else ids)

    done = _run(config_path, delete)
    click.echo(f"deleted {len(done)} subscription(s) {' '.join(map(str, done))}")


@subscriptions_group.command("rotate")
@click.argument("subscription_id", type=int)
def rotate_command(subscription_id: int) -> None:
    """Not possible: MaintainX's API cannot change a subscription's secret."""
    raise click.ClickException(
        "MaintainX's API cannot rotate a subscription's secret: create a new "
        f"subscription, then `mxbridge subscriptions delete {subscription_id}`"
    )


@subscriptions_group.command("import")
@click.argument("subscription_id", type=int)
@click.option(
    "--secret-from",
    metavar="ENV|FILE",
    help="Environment variable or file holding its secret "
    "(env:NAME or file:PATH to be explicit; default: ask MaintainX).",
)
@config_option
def import_command(
    subscription_id: int, secret_from: str | None, config_path: str | None
) -> None:
    """Remember a subscription made in MaintainX's web app, and its secret."""
    secret = _read_secret(secret_from) if secret_from else None

    async def adopt(
        manager: SubscriptionManager, _config: Config
    ) -> SubscriptionRecord:
        return await manager.import_subscription(subscription_id, secret)

    record = _run(config_path, adopt)
    click.echo(f"imported {_describe(record)} as source {record.source}")


def _read_secret(spec: str) -> str:
    kind, sep, rest = spec.partition(":")
    if sep and kind == "env":
        value = os.environ.get(rest)
    elif sep and kind == "file":
        value = _read_file(Path(rest))
    elif spec in os.environ:
        value = os.environ[spec]
    elif Path(spec).is_file():
        value = _read_file(Path(spec))
    else:
        raise click.UsageError(f"--secret-from {spec!r}: no such variable or file")
    if not value or not value.strip():
        raise click.UsageError(f"--secret-from {spec!r}: empty or not set")
    return value.strip()


def _read_file(path: Path) -> str:
    try:
        return path.read_text("utf-8")
    except OSError as exc:
        raise click.UsageError(f"cannot read {path}: {exc.strerror}") from None


@subscriptions_group.command("sync")
@config_option
@click.option("--apply", "apply_plan", is_flag=True, help="Carry out the plan.")
@click.option("--url", "public_url", help="Override [maintainx] public_url.")
def sync_command(
    config_path: str | None, apply_plan: bool, public_url: str | None
) -> None:
    """Bring MaintainX to [maintainx] subscriptions: show the plan, --apply it."""

    async def sync(manager: SubscriptionManager, config: Config) -> Plan:
        url = _public_url(public_url, config)
        plan = await manager.plan(config.maintainx.subscriptions, url)
        _show_plan(plan)
        if apply_plan and plan.changes:
            await manager.apply(plan, url)
        return plan

    plan = _run(config_path, sync)
    if not plan.changes:
        click.echo("in sync: nothing to do")
    elif apply_plan:
        click.echo(f"applied: {len(plan.create)} created, {len(plan.delete)} deleted")
    else:
        click.echo("plan only: run again with --apply to carry it out")


def _show_plan(plan: Plan) -> None:
    for desired in plan.create:
        options = " serialize" if desired.serialize else ""
        click.echo(f"create  {desired.event}{options}{_filters_text(desired.filters)}")
    for record in plan.keep:
        click.echo(f"keep    {_describe(record)}")
    for record in plan.delete:
        click.echo(f"delete  {_describe(record)}")
    for record in plan.leave:
        click.echo(f"leave   {_describe(record)}  (imported; sync never deletes)")


# -- webhooks (the integration guide's words) --------------------------------------


@click.group("webhooks")
def webhooks_group() -> None:
    """Webhook set-up in the integration guide's words (see `subscriptions`)."""


@webhooks_group.command("register")
@click.option(
    "--events",
    "event_list",
    required=True,
    metavar="A,B,C",
    help="Comma-separated event names: workorder.created,workorder.status_changed",
)
@_with_create_options
def register_command(
    event_list: str,
    config_path: str | None,
    public_url: str | None,
    serialize: bool,
    filters: tuple[str, ...],
) -> None:
    """Create one subscription per event: `subscriptions create` by another name."""
    names = [name.strip() for name in event_list.split(",") if name.strip()]
    if not names:
        raise click.UsageError("--events names no event")
    _create(config_path, names, public_url, serialize, filters)
