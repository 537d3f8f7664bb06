"""Conditions of rules on dotted paths: equals, one of, present, greater than. Pure.

A path starts at ``event`` (its id, type, names, source, resource_kind,
resource_id, org_id, actor_id, occurred_at, received_at), ``payload`` (the
delivery as received) or ``record`` (the full record, see `record_of`); then
keys, or list positions as numbers: ``record.assignees.0.id``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator

from mxbridge._actions._context import EVENT_FIELDS
from mxbridge._errors import ConfigError

__all__ = ["Condition", "ConditionConfig", "compile_condition", "resolve"]

ROOTS = ("event", "payload", "record")
_SEGMENT = re.compile(r"[A-Za-z0-9_\-]+")
_MISSING = object()
_TESTS = ("equals", "one_of", "present", "greater_than")


class ConditionConfig(BaseModel):
    """One condition as written: a path and exactly one test."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    path: str
    equals: str | int | float | bool | None = None
    one_of: list[str | int | float | bool] | None = None
    present: bool | None = None
    greater_than: float | None = None

    @model_validator(mode="after")
    def _one_test(self) -> ConditionConfig:
        given = [name for name in _TESTS if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of equals, one_of, present, greater_than"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self


def parse_path(path: str) -> tuple[str, ...]:
    """Split and check a dotted path; a bad one is a `ConfigError`."""
    parts = tuple(path.split("."))
    if parts[0] not in ROOTS:
        raise ConfigError(
            f"path {path!r}: must start with {', '.join(ROOTS)} (then dotted keys)"
        )
    for part in parts[1:]:
        if not _SEGMENT.fullmatch(part):
            raise ConfigError(f"path {path!r}: {part!r} is not a key or a position")
    if parts[0] == "event" and len(parts) > 1 and parts[1] not in EVENT_FIELDS:
        raise ConfigError(
            f"path {path!r}: event has no {parts[1]!r} "
            f"(it has {', '.join(sorted(EVENT_FIELDS))})"
        )
    return parts


def resolve(variables: Mapping[str, Any], parts: Sequence[str]) -> Any:
    """The value at `parts` in `variables`, or `_MISSING`."""
    value: Any = variables
    for part in parts:
        if isinstance(value, Mapping):
            value = value.get(part, _MISSING)
        elif isinstance(value, Sequence) and not isinstance(value, str):
            index = int(part) if part.isdigit() else None
            value = (
                value[index] if index is not None and index < len(value) else _MISSING
            )
        else:
            return _MISSING
        if value is _MISSING:
            return _MISSING
    return value


def _same(actual: object, expected: object) -> bool:
    # Ids are numbers in payloads and often text in a file: 90211 == "90211".
    if isinstance(actual, bool) or isinstance(expected, bool):
        return actual is expected
    if isinstance(actual, int | float | str) and isinstance(
        expected, int | float | str
    ):
        return actual == expected or str(actual) == str(expected)
    return actual == expected


@dataclass(frozen=True, slots=True)
class Condition:
    """A compiled condition: test it, or explain why it failed."""

    config: ConditionConfig
    parts: tuple[str, ...]

    def holds(self, variables: Mapping[str, Any]) -> bool:
        """True when the value at the path passes the test."""
        value = resolve(variables, self.parts)
        c = self.config
        if c.present is not None:
            return (value is not _MISSING and value is not None) == c.present
        if value is _MISSING:
            return False
        if c.one_of is not None:
            return any(_same(value, option) for option in c.one_of)
        if c.greater_than is not None:
            number = _number(value)
            return number is not None and number > c.greater_than
        return _same(value, c.equals)

    def explain(self, variables: Mapping[str, Any]) -> str:
        """Why the condition does not hold, for people."""
        value = resolve(variables, self.parts)
        shown = "missing" if value is _MISSING else repr(value)
        c = self.config
        test = next(
            f"{n} {getattr(c, n)!r}" for n in _TESTS if getattr(c, n) is not None
        )
        return f"{c.path} is {shown}, wanted {test}"


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def compile_condition(config: ConditionConfig) -> Condition:
    """Check the path of `config` and compile it."""
    return Condition(config, parse_path(config.path))
