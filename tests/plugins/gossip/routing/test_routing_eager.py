"""start_eagerly: a coroutine runs in the caller's turn; only one that suspends becomes a task."""

from __future__ import annotations

import asyncio

import pytest

from hookmq.plugins.gossip.routing.eager import start_eagerly


async def test_a_coroutine_that_never_suspends_finishes_in_the_call_without_a_task() -> None:
    ran: list[str] = []

    async def deliver() -> None:
        ran.append("done")

    tasks_before = len(asyncio.all_tasks())
    assert start_eagerly(deliver()) is None
    assert ran == ["done"] and len(asyncio.all_tasks()) == tasks_before


async def test_an_error_before_suspending_reaches_the_caller() -> None:
    async def refuse() -> None:
        raise ValueError("bad topic")

    with pytest.raises(ValueError, match="bad topic"):
        start_eagerly(refuse())


async def test_a_coroutine_that_waits_continues_in_a_task_with_its_result_and_order() -> None:
    gate: asyncio.Future[int] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def store_then_deliver() -> int:
        steps.append("started")
        value = await gate
        steps.append("resumed")
        await asyncio.sleep(0)
        return value * 2

    rest = start_eagerly(store_then_deliver())
    assert steps == ["started"] and rest is not None and not rest.done()
    gate.set_result(21)
    assert await rest == 42
    assert steps == ["started", "resumed"]


async def test_a_failure_of_what_it_waits_for_and_a_cancellation_go_into_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    gate: asyncio.Future[None] = loop.create_future()
    seen: list[str] = []

    async def waits() -> None:
        try:
            await gate
        except KeyError:
            seen.append("caught")
            raise

    rest = start_eagerly(waits())
    assert rest is not None
    gate.set_exception(KeyError("gone"))
    with pytest.raises(KeyError):
        await rest
    assert seen == ["caught"]

    cleaned: list[str] = []

    async def cancelled() -> None:
        try:
            await loop.create_future()
        finally:
            cleaned.append("finally")

    rest = start_eagerly(cancelled())
    assert rest is not None
    rest.cancel()
    with pytest.raises(asyncio.CancelledError):
        await rest
    assert cleaned == ["finally"]
