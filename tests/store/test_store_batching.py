"""The group committer: ordering, grouping, error isolation, write-behind and closing."""

from __future__ import annotations

import asyncio

import pytest

from hookmq.store.batching import GroupCommitter
from hookmq.store.errors import StoreClosed, StoreError, StoreUnavailable


class Recorder:
    """A batch executor over a list: ops are ints appended in order; negative ints fail."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.log: list[int] = []
        self.release = asyncio.Event()
        self.release.set()
        self.down = False

    async def execute(self, ops: list[int]) -> list[object]:
        await self.release.wait()
        if self.down:
            raise ConnectionError("backend gone")
        self.batches.append(ops)
        outcomes: list[object] = []
        for op in ops:
            if op < 0:
                outcomes.append(ValueError(f"bad op {op}"))
            else:
                self.log.append(op)
                outcomes.append(op * 10)
        return outcomes


async def test_results_come_back_per_operation_in_order() -> None:
    backend = Recorder()
    committer: GroupCommitter[int] = GroupCommitter(backend.execute, name="t")
    committer.start()
    results = await asyncio.gather(*(committer.call(n) for n in range(50)))
    await committer.close()
    assert results == [n * 10 for n in range(50)]
    assert backend.log == list(range(50))


async def test_operations_queued_during_a_commit_share_the_next_one() -> None:
    backend = Recorder()
    committer: GroupCommitter[int] = GroupCommitter(backend.execute, name="t")
    committer.start()
    backend.release.clear()
    first = asyncio.ensure_future(committer.call(0))
    await asyncio.sleep(0)  # the runner takes op 0 and blocks in the "commit"
    rest = [asyncio.ensure_future(committer.call(n)) for n in range(1, 101)]
    await asyncio.sleep(0)
    backend.release.set()
    await asyncio.gather(first, *rest)
    await committer.close()
    assert backend.batches == [[0], list(range(1, 101))]


async def test_a_failing_operation_does_not_fail_its_neighbours() -> None:
    backend = Recorder()
    committer: GroupCommitter[int] = GroupCommitter(backend.execute, name="t")
    committer.start()
    outcomes = await asyncio.gather(committer.call(1), committer.call(-1), committer.call(2), return_exceptions=True)
    await committer.close()
    assert outcomes[0] == 10 and outcomes[2] == 20
    assert isinstance(outcomes[1], StoreError) and isinstance(outcomes[1].__cause__, ValueError)


async def test_backend_failure_fails_the_whole_batch_as_unavailable() -> None:
    backend = Recorder()
    backend.down = True
    committer: GroupCommitter[int] = GroupCommitter(backend.execute, name="t")
    committer.start()
    with pytest.raises(StoreUnavailable, match="backend gone"):
        await committer.call(1)
    backend.down = False
    assert await committer.call(2) == 20  # the runner survived
    await committer.close()


async def test_write_behind_returns_at_once_and_drain_waits() -> None:
    backend = Recorder()
    committer: GroupCommitter[int] = GroupCommitter(backend.execute, name="t", write_behind=True)
    committer.start()
    backend.release.clear()
    for n in range(10):
        await committer.write(n)
    assert backend.log == []
    backend.release.set()
    await committer.drain()
    assert backend.log == list(range(10))
    await committer.close()


async def test_write_behind_turns_synchronous_above_the_backlog_bound() -> None:
    backend = Recorder()
    committer: GroupCommitter[int] = GroupCommitter(backend.execute, name="t", write_behind=True, max_backlog=3)
    committer.start()
    for n in range(20):
        await committer.write(n)
        assert committer.backlog <= 3
    await committer.close()
    assert backend.log == list(range(20))


async def test_max_batch_splits_batches() -> None:
    backend = Recorder()
    committer: GroupCommitter[int] = GroupCommitter(backend.execute, name="t", max_batch=7)
    committer.start()
    await asyncio.gather(*(committer.call(n) for n in range(30)))
    await committer.close()
    assert max(len(batch) for batch in backend.batches) <= 7 and backend.log == list(range(30))


async def test_close_runs_queued_writes_then_refuses_new_ones() -> None:
    backend = Recorder()
    committer: GroupCommitter[int] = GroupCommitter(backend.execute, name="t", write_behind=True)
    committer.start()
    for n in range(5):
        await committer.write(n)
    await committer.close()
    assert backend.log == list(range(5))
    with pytest.raises(StoreClosed):
        committer.submit(9)
