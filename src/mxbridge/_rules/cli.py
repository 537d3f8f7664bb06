"""``mxbridge rules``: check the rules of a configuration, or try them on an event."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import click

from mxbridge._cli_options import config_option
from mxbridge._config import load_config
from mxbridge._errors import MxbridgeError
from mxbridge._events import Event, parse_event
from mxbridge._rules._build import Rule, build_rules
from mxbridge._service import make_store

__all__ = ["rules_group"]


@click.group("rules")
def rules_group() -> None:
    """Rules from the configuration: check them, try them on an event."""


def _summary(rule: Rule) -> str:
    config = rule.config
    when = " and ".join(
        f"{c.config.path} {_test(c.config.model_dump(exclude_none=True))}"
        for c in rule.conditions
    )
    return (
        f"{rule.label}: {config.action} on {', '.join(config.events)}"
        + (f" when {when}" if when else "")
        + f" -> handler {rule.handler_name}"
    )


def _test(fields: dict[str, object]) -> str:
    fields.pop("path", None)
    return " ".join(f"{key} {value!r}" for key, value in fields.items())


@rules_group.command("check")
@config_option
def check(config_path: str | None) -> None:
    """Check every rule as `serve` would at start, without starting."""
    config = load_config(config_path)
    rules = build_rules(config.rules)
    for rule in rules:
        click.echo(_summary(rule))
    click.echo(f"{len(rules)} rule(s) OK")


def _event_from(target: str, config_path: str | None) -> Event:
    path = Path(target)
    if path.is_file():
        raw = path.read_bytes()
        return parse_event(raw, source="file", received_at=datetime.now(UTC))
    store = make_store(load_config(config_path))

    async def fetch() -> Event | None:
        await store.open()
        try:
            return await store.get_event(target)
        finally:
            await store.close()

    found = asyncio.run(fetch())
    if found is None:
        raise click.ClickException(f"{target}: no such file, nor stored event")
    return found


@rules_group.command("test")
@click.argument("target", metavar="EVENT_ID|FILE")
@config_option
def test(target: str, config_path: str | None) -> None:
    """Show which rules fire for an event and what each would send (nothing sent).

    The record is the one the delivery carries, if any: nothing is fetched.
    """
    rules = build_rules(load_config(config_path).rules)
    event = _event_from(target, config_path)
    click.echo(f"event {event.id} {event.event_type} ({', '.join(event.names)})")
    fired = 0
    for rule in rules:
        try:
            verdict = rule.verdict(event)
        except MxbridgeError as exc:
            click.echo(f"{rule.label}: would fail: {exc}")
            continue
        click.echo(f"{rule.label}: {verdict.reason}")
        if verdict.fires:
            fired += 1
            click.echo("  " + verdict.preview.replace("\n", "\n  "))
    click.echo(f"{fired} of {len(rules)} rule(s) would fire")
