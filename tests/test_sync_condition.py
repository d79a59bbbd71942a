"""Condition, ResourceGuard and Future."""

from __future__ import annotations

import pytest

import anyio
from anyio import (
    BusyResourceError,
    CancelScope,
    Condition,
    ConditionStatistics,
    Future,
    FutureAlreadyFinished,
    FutureCancelled,
    FutureFailed,
    FutureNotFinished,
    Lock,
    ResourceGuard,
    create_task_group,
    wait_all_tasks_blocked,
)
from anyio.lowlevel import checkpoint

pytestmark = pytest.mark.anyio


async def test_notify_wakes_in_fifo_order() -> None:
    cond = Condition()
    woken: list[int] = []

    async def waiter(i: int) -> None:
        async with cond:
            await cond.wait()
            woken.append(i)

    async with create_task_group() as tg:
        for i in range(4):
            tg.start_soon(waiter, i)
            await wait_all_tasks_blocked()
        stats = cond.statistics()
        assert isinstance(stats, ConditionStatistics)
        assert stats.tasks_waiting == 4
        async with cond:
            cond.notify(2)
        await wait_all_tasks_blocked()
        # The two oldest waiters, run in whatever order the backend picks.
        assert sorted(woken) == [0, 1]
        async with cond:
            cond.notify_all()

    assert sorted(woken) == [0, 1, 2, 3]
    assert not cond.locked()


async def test_cancelled_notified_waiter_passes_notification_on() -> None:
    cond = Condition()
    woken: list[str] = []

    async def waiter(name: str, scope: CancelScope) -> None:
        with scope:
            async with cond:
                await cond.wait()
                woken.append(name)

    s1, s2 = CancelScope(), CancelScope()
    async with create_task_group() as tg:
        tg.start_soon(waiter, "a", s1)
        await wait_all_tasks_blocked()
        tg.start_soon(waiter, "b", s2)
        await wait_all_tasks_blocked()
        async with cond:
            s1.cancel()
            cond.notify(1)

    assert woken == ["b"]


async def test_wait_for_and_shared_lock() -> None:
    lock = Lock()
    cond = Condition(lock)
    value = 0

    async def waiter() -> None:
        async with cond:
            assert await cond.wait_for(lambda: value >= 2) is True

    async with create_task_group() as tg:
        tg.start_soon(waiter)
        for _ in range(2):
            await wait_all_tasks_blocked()
            async with lock:
                value += 1
                cond.notify_all()


async def test_wait_requires_the_lock() -> None:
    cond = Condition()
    with pytest.raises(
        RuntimeError, match="The current task is not holding the underlying lock"
    ):
        await cond.wait()
    with pytest.raises(
        RuntimeError, match="The current task is not holding the underlying lock"
    ):
        cond.notify()


async def test_wait_reacquires_lock_even_when_cancelled() -> None:
    cond = Condition()
    with CancelScope() as scope:
        async with cond:
            scope.cancel()
            with pytest.raises(anyio.get_cancelled_exc_class()):
                await cond.wait()
            assert cond.locked()
    assert not cond.locked()


def test_resource_guard() -> None:
    guard = ResourceGuard("reading from")
    with guard:
        with pytest.raises(
            BusyResourceError,
            match="Another task is already reading from this resource",
        ):
            with guard:
                pass
    with guard:
        pass
    with pytest.raises(BusyResourceError, match="already using this resource"):
        with ResourceGuard() as _, ResourceGuard():
            g = ResourceGuard()
            with g, g:
                pass


async def test_future_value_exception_cancel() -> None:
    fut: Future[int] = Future(name="f")
    assert fut.status is Future.Status.PENDING
    assert repr(fut) == "<Future pending name='f'>"
    with pytest.raises(FutureNotFinished):
        _ = fut.return_value

    async def producer() -> None:
        await checkpoint()
        fut.return_value = 7

    async with create_task_group() as tg:
        tg.start_soon(producer)
        assert await fut == 7
    assert await fut == 7
    with pytest.raises(FutureAlreadyFinished):
        fut.return_value = 8
    fut.cancel()  # no effect once finished
    assert fut.status is Future.Status.FINISHED

    failed: Future[int] = Future()
    error = KeyError("x")
    failed.exception = error
    with pytest.raises(FutureFailed) as info:
        await failed
    assert info.value.__cause__ is error
    assert failed.status is Future.Status.FAILED

    cancelled: Future[int] = Future()
    cancelled.cancel()
    with pytest.raises(FutureCancelled):
        await cancelled
    await cancelled.wait()  # wait() never raises the outcome
    with pytest.raises(FutureCancelled):
        cancelled.return_value = 1


async def test_future_many_waiters() -> None:
    fut: Future[str] = Future()
    got: list[str] = []

    async def waiter() -> None:
        got.append(await fut)

    async with create_task_group() as tg:
        for _ in range(3):
            tg.start_soon(waiter)
        await wait_all_tasks_blocked()
        fut.return_value = "done"

    assert got == ["done"] * 3
