"""Match event names to handlers. Pure.

A pattern is an event name (``NEW_WORK_ORDER``), a dotted alias
(``workorder.created``) or a glob over either (``workorder.*``, ``*``). An event
carries all its names, so any one of them matching is enough. Patterns are plain
strings: a new MaintainX event type needs no code change.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from fnmatch import fnmatchcase

__all__ = ["matches"]


def matches(patterns: Iterable[str], names: Collection[str]) -> bool:
    """True when any of `patterns` matches any of `names` (globs allowed)."""
    return any(fnmatchcase(name, pattern) for pattern in patterns for name in names)
