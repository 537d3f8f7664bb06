"""Group commit: batching, and one bad item never failing its neighbours."""

from __future__ import annotations

import asyncio

import pytest

from mxbridge._store._group import GroupCommit


async def test_items_submitted_together_share_a_write() -> None:
    """Items queued while a write runs go out together in the next one."""
    batches: list[list[int]] = []

    async def write(batch: list[int]) -> list[int]:
        batches.append(batch)
        await asyncio.sleep(0.01)
        return [n * 2 for n in batch]

    group: GroupCommit[int, int] = GroupCommit(write)

    results = await asyncio.gather(*[group.submit(n) for n in range(50)])

    assert results == [n * 2 for n in range(50)]
    assert len(batches) < 50
    assert sorted(n for batch in batches for n in batch) == list(range(50))


async def test_a_bad_item_fails_alone() -> None:
    """When a batch fails, each item is written alone; only the bad one fails."""

    async def write(batch: list[int]) -> list[int]:
        if 13 in batch:
            raise ValueError("cannot store 13")
        return batch

    group: GroupCommit[int, int] = GroupCommit(write)

    results = await asyncio.gather(
        *[group.submit(n) for n in range(20)], return_exceptions=True
    )

    assert [r for r in results if isinstance(r, Exception)] == [results[13]]
    assert [r for r in results if not isinstance(r, Exception)] == [
        n for n in range(20) if n != 13
    ]


async def test_a_caller_giving_up_does_not_cancel_the_write() -> None:
    """A cancelled submit still has its item written."""
    written: list[int] = []

    async def write(batch: list[int]) -> list[int]:
        await asyncio.sleep(0.05)
        written.extend(batch)
        return batch

    group: GroupCommit[int, int] = GroupCommit(write)
    task = asyncio.ensure_future(group.submit(7))
    await asyncio.sleep(0.01)

    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await group.wait()

    assert written == [7]
