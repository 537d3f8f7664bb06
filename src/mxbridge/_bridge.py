"""`Bridge`: the registry of handlers a team writes in Python.

::

    bridge = Bridge()

    @bridge.on("workorder.created", when=lambda e: e.org_id == 48213)
    async def alert(event: Event) -> None:
        ...

``mxbridge serve --app mymodule:bridge`` loads it. Each handler is known by a
stable name (its module and qualified name unless given), which is what the store
keeps for each of its deliveries, so renaming a handler orphans the deliveries
still pending for the old name.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from mxbridge._events import INTERNAL_SOURCE, KNOWN_NAMES, Event
from mxbridge._routing import matches

__all__ = ["Bridge", "Handler", "HandlerFunc"]

HandlerFunc = Callable[[Event], Awaitable[Any] | Any]
Condition = Callable[[Event], bool]
F = TypeVar("F", bound=HandlerFunc)


@dataclass(frozen=True, slots=True)
class Handler:
    """One registered handler: what it wants, and how to run it."""

    name: str
    patterns: tuple[str, ...]
    func: HandlerFunc
    when: Condition | None = None
    timeout: float | None = None
    max_attempts: int | None = None
    enrich: bool = False
    expand: tuple[str, ...] = ()
    skip_stale: bool = False

    @property
    def is_async(self) -> bool:
        """True when `func` is a coroutine function (run on the event loop)."""
        return _is_async(self.func)

    def wants(self, event: Event) -> bool:
        """True when the handler's patterns match one of the event's names.

        mxbridge's own events (``mxbridge.*``) go only to handlers that name
        them: a ``*`` handler mirroring MaintainX should not get them.
        """
        if event.source == INTERNAL_SOURCE:
            named = [p for p in self.patterns if p.startswith("mxbridge.")]
            return matches(named, event.names)
        return matches(self.patterns, event.names)


class Bridge:
    """A set of handlers, each subscribed to event names, aliases or globs."""

    def __init__(self) -> None:
        self._handlers: dict[str, Handler] = {}

    def on(
        self,
        *patterns: str,
        when: Condition | None = None,
        name: str | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
        enrich: bool = False,
        expand: Sequence[str] = (),
        skip_stale: bool = False,
    ) -> Callable[[F], F]:
        """Register the decorated function for events matching any of `patterns`.

        `when` is a further condition on the event, checked just before the
        handler runs; when false the delivery succeeds without running it. It
        is a plain function, called on the event loop: keep it quick (no I/O),
        and put slow or async checks in the handler.
        `timeout` and `max_attempts` override the worker's defaults.

        `enrich` asks for the full record (work order, request, asset, part) in
        ``event.record``, fetched once per event with the union of every such
        handler's `expand` (MaintainX's ``expand[]`` values; giving `expand`
        implies `enrich`). `skip_stale` (which implies `enrich`) skips the
        handler for an event older than one it already started on for the same
        record. See `mxbridge.record_missing` and `record_unchanged`.
        """

        def register(func: F) -> F:
            self.add(
                func,
                *patterns,
                when=when,
                name=name,
                timeout=timeout,
                max_attempts=max_attempts,
                enrich=enrich,
                expand=expand,
                skip_stale=skip_stale,
            )
            return func

        return register

    def add(
        self,
        func: HandlerFunc,
        *patterns: str,
        when: Condition | None = None,
        name: str | None = None,
        timeout: float | None = None,
        max_attempts: int | None = None,
        enrich: bool = False,
        expand: Sequence[str] = (),
        skip_stale: bool = False,
    ) -> Handler:
        """Register `func` for `patterns`; see `on`. Returns the `Handler`."""
        if not patterns:
            raise ValueError("a handler needs at least one event name or pattern")
        if when is not None and _is_async(when):
            # Its coroutine would be a true value: the condition always met.
            raise TypeError(
                "when= takes a plain function returning True or False, not an "
                "async one: put async checks in the handler"
            )
        key = name or f"{func.__module__}.{func.__qualname__}"
        if key in self._handlers:
            raise ValueError(f"a handler named {key!r} is already registered")
        handler = Handler(
            key,
            tuple(patterns),
            func,
            when,
            timeout,
            max_attempts,
            enrich=enrich or skip_stale or bool(expand),
            expand=tuple(dict.fromkeys(expand)),
            skip_stale=skip_stale,
        )
        self._handlers[key] = handler
        return handler

    def include(self, other: Bridge) -> None:
        """Register every handler of `other` in this bridge too."""
        for handler in other:
            if handler.name in self._handlers:
                raise ValueError(
                    f"a handler named {handler.name!r} is already registered"
                )
            self._handlers[handler.name] = handler

    def unknown_patterns(self) -> list[tuple[str, str]]:
        """Each (handler, pattern) that no event name mxbridge knows matches.

        Most likely a typo (``workorder.craeted``); else a type MaintainX has
        not published, which the handler will receive if it ever comes.
        """
        return [
            (handler.name, pattern)
            for handler in self._handlers.values()
            for pattern in handler.patterns
            if not matches([pattern], KNOWN_NAMES)
        ]

    def route(self, event: Event) -> list[str]:
        """Names of the handlers that want `event`, in registration order."""
        return [h.name for h in self._handlers.values() if h.wants(event)]

    def get(self, name: str) -> Handler | None:
        """The handler registered as `name`, if any."""
        return self._handlers.get(name)

    def names(self) -> Sequence[str]:
        """Every registered handler's name."""
        return list(self._handlers)

    def __iter__(self) -> Iterator[Handler]:
        return iter(list(self._handlers.values()))

    def __len__(self) -> int:
        return len(self._handlers)


def _is_async(func: Callable[..., Any]) -> bool:
    """Whether calling `func` makes a coroutine: an async function, or an object
    whose ``__call__`` is one."""
    return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
        type(func).__call__
    )
