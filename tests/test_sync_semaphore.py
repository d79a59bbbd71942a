"""Semaphore: counting, max_value, validation, hand-off, cancellation."""

from __future__ import annotations

import pytest

import anyio
from anyio import (
    CancelScope,
    Semaphore,
    SemaphoreStatistics,
    WouldBlock,
    create_task_group,
    get_cancelled_exc_class,
    wait_all_tasks_blocked,
)
from anyio.lowlevel import checkpoint

pytestmark = pytest.mark.anyio


async def test_counts_and_limits_concurrency() -> None:
    sem = Semaphore(3)
    inside = peak = 0

    async def worker() -> None:
        nonlocal inside, peak
        async with sem:
            inside += 1
            peak = max(peak, inside)
            await checkpoint()
            await checkpoint()
            inside -= 1

    async with create_task_group() as tg:
        for _ in range(10):
            tg.start_soon(worker)

    assert peak == 3
    assert sem.value == 3


async def test_release_hands_token_to_first_waiter() -> None:
    sem = Semaphore(1)
    order: list[int] = []

    async def worker(i: int) -> None:
        async with sem:
            order.append(i)

    async with create_task_group() as tg:
        sem.acquire_nowait()
        for i in range(3):
            tg.start_soon(worker, i)
            await wait_all_tasks_blocked()
        assert sem.statistics() == SemaphoreStatistics(tasks_waiting=3)
        sem.release()
        assert sem.value == 0  # handed over, not returned to the pool
        with pytest.raises(WouldBlock):
            sem.acquire_nowait()

    assert order == [0, 1, 2]
    assert sem.value == 1


async def test_max_value() -> None:
    sem = Semaphore(1, max_value=2)
    assert sem.max_value == 2
    sem.release()
    assert sem.value == 2
    with pytest.raises(ValueError, match="semaphore released too many times"):
        sem.release()
    assert Semaphore(0).max_value is None


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "message"),
    [
        ((-1,), {}, ValueError, "initial_value must be >= 0"),
        ((1.5,), {}, TypeError, "initial_value must be an integer"),
        (("1",), {}, TypeError, "initial_value must be an integer"),
        (
            (3,),
            {"max_value": 2},
            ValueError,
            "max_value must be equal to or higher than initial_value",
        ),
        ((1,), {"max_value": 1.5}, TypeError, "max_value must be an integer or None"),
    ],
)
def test_validation(
    args: tuple[object, ...],
    kwargs: dict[str, object],
    exc: type[Exception],
    message: str,
) -> None:
    with pytest.raises(exc, match=message):
        Semaphore(*args, **kwargs)  # type: ignore[arg-type]


async def test_cancelled_waiter_gets_nothing() -> None:
    sem = Semaphore(0)
    scope = CancelScope()
    acquired = False

    async def waiter() -> None:
        nonlocal acquired
        with scope:
            await sem.acquire()
            acquired = True

    async with create_task_group() as tg:
        tg.start_soon(waiter)
        await wait_all_tasks_blocked()
        scope.cancel()
        sem.release()  # the waiter's future is already cancelled: skip it

    assert not acquired
    assert sem.value == 1


async def test_fast_acquire_does_not_yield() -> None:
    sem = Semaphore(1, fast_acquire=True)
    ran = False

    async def other() -> None:
        nonlocal ran
        ran = True

    async with create_task_group() as tg:
        tg.start_soon(other)
        for _ in range(5):
            async with sem:
                pass
        assert not ran


async def test_acquire_checks_cancellation_first() -> None:
    sem = Semaphore(1)
    with CancelScope() as scope:
        scope.cancel()
        with pytest.raises(get_cancelled_exc_class()):
            await sem.acquire()
    assert sem.value == 1


def test_create_outside_loop(
    anyio_backend_name: str, anyio_backend_options: dict[str, object]
) -> None:
    sem = Semaphore(2, max_value=2, fast_acquire=True)

    async def main() -> None:
        async with sem:
            assert sem.value == 1

    anyio.run(main, backend=anyio_backend_name, backend_options=anyio_backend_options)
    assert sem.value == 2
