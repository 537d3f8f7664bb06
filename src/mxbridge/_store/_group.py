"""Group commit: calls that arrive together share one transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

__all__ = ["GroupCommit"]

I = TypeVar("I")  # noqa: E741 - the conventional name for an item type
R = TypeVar("R")


class GroupCommit(Generic[I, R]):
    """Collects items and writes them in batches, one transaction a batch.

    `write` gets a batch and returns one result per item, in order, once its
    transaction has committed. While one batch is being written the next one
    gathers, so the busier the store, the larger the batches. Each `submit`
    returns only after the transaction holding its item committed, or raises
    that transaction's error.
    """

    def __init__(
        self, write: Callable[[list[I]], Awaitable[list[R]]], *, max_batch: int = 512
    ) -> None:
        self._write = write
        self._max_batch = max_batch
        self._queue: list[tuple[I, asyncio.Future[R]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def submit(self, item: I) -> R:
        """Queue `item` and wait for its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._queue.append((item, future))
        if self._writer is None:
            self._writer = loop.create_task(self._drain())
        # A caller that gives up (a client hanging up, a timeout) cancels only
        # its own wait: the item stays queued and is committed all the same.
        return await future

    async def wait(self) -> None:
        """Return once everything queued so far is written."""
        if self._writer is not None:
            await asyncio.shield(self._writer)

    async def _drain(self) -> None:
        try:
            while self._queue:
                batch = self._queue[: self._max_batch]
                del self._queue[: self._max_batch]
                await self._write_batch(batch)
        finally:
            self._writer = None

    async def _write_batch(self, batch: list[tuple[I, asyncio.Future[R]]]) -> None:
        try:
            results = await self._write([item for item, _ in batch])
        except Exception as exc:
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            # One bad item must not fail its neighbours: write each alone.
            for one in batch:
                await self._write_batch([one])
            return
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)
