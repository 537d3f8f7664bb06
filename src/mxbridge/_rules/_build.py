"""Turn ``[[rules]]`` tables into handlers: one `Bridge` handler per rule.

Everything that can be checked is checked when the rules are built, before
``serve`` starts: the keys, the event names, the condition paths, the action and
its settings, the templates (compiled), the environment variables named. A
problem is a `ConfigError` naming the rule's position (from 1, in file order),
its name, the key and the reason.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from mxbridge._actions import ACTIONS, DEFAULT_APP_URL, Action, ActionContext, Templates
from mxbridge._actions._context import load_zone
from mxbridge._bridge import Bridge
from mxbridge._config import describe_errors
from mxbridge._errors import ConfigError
from mxbridge._events import DEAD_DELIVERY, KNOWN_EVENT_TYPES, event_names
from mxbridge._routing import matches
from mxbridge._rules._conditions import Condition, ConditionConfig, compile_condition

__all__ = [
    "Rule",
    "RuleConfig",
    "Verdict",
    "build_rules",
    "install_rules",
    "with_rules",
]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_\-.]{0,79}")
_GLOB = re.compile(r"[*?\[]")


class RuleConfig(BaseModel):
    """One ``[[rules]]`` table as written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None
    events: list[str] = Field(min_length=1)
    when: list[ConditionConfig] = Field(default_factory=list)
    action: str
    settings: dict[str, Any] = Field(default_factory=dict)
    enrich: bool = True
    expand: list[str] = Field(default_factory=list)
    timezone: str = "UTC"
    app_url: str = DEFAULT_APP_URL
    timeout: float | None = Field(default=None, gt=0)
    max_attempts: int | None = Field(default=None, ge=1, le=100)

    @field_validator("events", mode="before")
    @classmethod
    def _one_event(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @field_validator("when", mode="before")
    @classmethod
    def _one_condition(cls, value: object) -> object:
        return [value] if isinstance(value, Mapping) else value

    @field_validator("name")
    @classmethod
    def _name(cls, value: str | None) -> str | None:
        if value is not None and not _NAME.fullmatch(value):
            raise ValueError("may hold letters, digits, - _ and . (up to 80)")
        return value


def _known_names() -> frozenset[str]:
    names = {DEAD_DELIVERY}
    for event_type in KNOWN_EVENT_TYPES:
        names.update(event_names(event_type, {}))
    for outcome in (
        {"newStatus": "DONE"},
        {"newSubStatus": "CANCELED"},
        {"newSubStatus": "SKIPPED"},
    ):
        names.update(event_names("WORK_ORDER_STATUS_CHANGE", outcome))
    return frozenset(names)


_KNOWN = _known_names()


def _check_pattern(pattern: str) -> None:
    # A new MaintainX type (UPPER_CASE) is fine unseen; a dotted alias must exist,
    # or a typo such as workorder.complete would silently never fire.
    if not pattern.strip():
        raise ConfigError("events: an event name is empty")
    if _GLOB.search(pattern) or pattern in _KNOWN or pattern.isupper():
        return
    raise ConfigError(f"events: unknown event name {pattern!r}")


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a rule fires for an event, why not, and what it would send."""

    fires: bool
    reason: str
    preview: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    """A checked rule, ready to be a handler."""

    position: int
    config: RuleConfig
    conditions: tuple[Condition, ...]
    action: Action
    zone: ZoneInfo

    @property
    def label(self) -> str:
        """``rule 2 (erp-sync)``: how messages name the rule."""
        name = f" ({self.config.name})" if self.config.name else ""
        return f"rule {self.position}{name}"

    @property
    def handler_name(self) -> str:
        """The handler's name in the bridge and the store.

        ``rule:<name>``; an unnamed rule is named by its action and a digest of
        its content, not by its position, so that adding a rule above it does
        not hand its pending deliveries to another rule.
        """
        if self.config.name:
            return f"rule:{self.config.name}"
        content = json.dumps(self.config.model_dump(mode="json"), sort_keys=True)
        digest = hashlib.sha256(content.encode("utf-8")).hexdigest()[:10]
        return f"rule:{self.config.action}-{digest}"

    def context(self, event: Any) -> ActionContext:
        """What the action sees of `event`."""
        return ActionContext(event, self.handler_name, self.zone, self.config.app_url)

    def failing_condition(self, ctx: ActionContext) -> Condition | None:
        """The first condition that does not hold, if any."""
        variables = ctx.variables()
        return next((c for c in self.conditions if not c.holds(variables)), None)

    async def run(self, event: Any) -> None:
        """The handler: test the conditions on the (enriched) event, then act."""
        ctx = self.context(event)
        if self.failing_condition(ctx) is None:
            await self.action.run(ctx)

    def verdict(self, event: Any) -> Verdict:
        """Would this rule fire for `event`, and what would it send?"""
        if not matches(self.config.events, event.names):
            return Verdict(False, f"events {self.config.events} do not match")
        ctx = self.context(event)
        failing = self.failing_condition(ctx)
        if failing is not None:
            return Verdict(
                False, "condition false: " + failing.explain(ctx.variables())
            )
        return Verdict(True, f"fires: {self.config.action}", self.action.preview(ctx))


def _build_one(position: int, raw: Mapping[str, Any], env: Mapping[str, str]) -> Rule:
    config = RuleConfig.model_validate(raw)
    for pattern in config.events:
        _check_pattern(pattern)
    conditions = []
    for index, condition in enumerate(config.when):
        try:
            conditions.append(compile_condition(condition))
        except ConfigError as exc:
            raise ConfigError(f"when.{index}: {exc}") from None
    builder = ACTIONS.get(config.action)
    if builder is None:
        raise ConfigError(
            f"action: unknown action {config.action!r} "
            f"(one of {', '.join(sorted(ACTIONS))})"
        )
    zone = load_zone(config.timezone)
    action = builder(config.settings, env, Templates())
    return Rule(position, config, tuple(conditions), action, zone)


def _label(position: int, raw: object) -> str:
    name = raw.get("name") if isinstance(raw, Mapping) else None
    return f"rule {position}" + (f" ({name})" if isinstance(name, str) else "")


def build_rules(
    raws: Sequence[Mapping[str, Any]], env: Mapping[str, str] | None = None
) -> list[Rule]:
    """Check and build every rule; the first problem is a `ConfigError`."""
    environ = os.environ if env is None else env
    rules: list[Rule] = []
    for position, raw in enumerate(raws, start=1):
        label = _label(position, raw)
        try:
            if not isinstance(raw, Mapping):
                raise ConfigError("must be a table")
            rules.append(_build_one(position, raw, environ))
        except ValidationError as exc:
            raise ConfigError(
                f"{label}: {describe_errors(exc, top='(rule)')}"
            ) from None
        except ConfigError as exc:
            raise ConfigError(f"{label}: {exc}") from None
    _check_unique(rules)
    return rules


def _check_unique(rules: Sequence[Rule]) -> None:
    seen: dict[str, Rule] = {}
    for rule in rules:
        other = seen.setdefault(rule.handler_name, rule)
        if other is not rule:
            raise ConfigError(f"{rule.label}: name: {other.label} has the same name")


def install_rules(bridge: Bridge, rules: Sequence[Rule]) -> Bridge:
    """A new bridge with the handlers of `bridge` and one handler per rule."""
    combined = Bridge()
    combined.include(bridge)
    for rule in rules:
        try:
            combined.add(
                rule.run,
                *rule.config.events,
                name=rule.handler_name,
                timeout=rule.config.timeout,
                max_attempts=rule.config.max_attempts,
                enrich=rule.config.enrich,
                expand=tuple(rule.config.expand) if rule.config.enrich else (),
            )
        except ValueError as exc:
            raise ConfigError(f"{rule.label}: {exc}") from None
    return combined


def with_rules(
    bridge: Bridge,
    raws: Sequence[Mapping[str, Any]],
    env: Mapping[str, str] | None = None,
) -> Bridge:
    """`bridge` plus the configured rules (the same bridge when there are none)."""
    if not raws:
        return bridge
    return install_rules(bridge, build_rules(raws, env))
