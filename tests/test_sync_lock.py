"""Lock: ownership, FIFO hand-off, checkpoints, fast_acquire, cancellation."""

from __future__ import annotations

import asyncio

import pytest

import anyio
from anyio import (
    CancelScope,
    Lock,
    LockStatistics,
    NoEventLoopError,
    WouldBlock,
    create_task_group,
    get_cancelled_exc_class,
    get_current_task,
    wait_all_tasks_blocked,
)
from anyio.lowlevel import checkpoint

pytestmark = pytest.mark.anyio


async def test_fifo_handoff() -> None:
    lock = Lock()
    order: list[int] = []

    async def worker(i: int) -> None:
        async with lock:
            order.append(i)
            await checkpoint()

    async with create_task_group() as tg:
        await lock.acquire()
        for i in range(5):
            tg.start_soon(worker, i)
            await wait_all_tasks_blocked()  # fix the queue order
        assert lock.statistics().tasks_waiting == 5
        lock.release()

    assert order == [0, 1, 2, 3, 4]
    assert not lock.locked()


async def test_release_hands_over_before_the_waiter_runs() -> None:
    lock = Lock()

    async def waiter() -> None:
        async with lock:
            pass

    async with create_task_group() as tg:
        lock.acquire_nowait()
        tg.start_soon(waiter, name="second")
        await wait_all_tasks_blocked()
        lock.release()
        # Already the waiter's: no barging by a nowait acquire.
        owner = lock.statistics().owner
        assert owner is not None and owner.name == "second"
        with pytest.raises(WouldBlock):
            lock.acquire_nowait()


async def test_statistics_owner_is_current_task() -> None:
    lock = Lock()
    assert lock.statistics() == LockStatistics(False, None, 0)
    async with lock:
        stats = lock.statistics()
        assert stats.locked
        assert stats.owner == get_current_task()
        assert stats.tasks_waiting == 0


async def test_uncontended_acquire_yields_but_fast_acquire_does_not() -> None:
    for fast, expect_ran in ((False, True), (True, False)):
        ran = False

        async def other() -> None:
            nonlocal ran
            ran = True

        lock = Lock(fast_acquire=fast)
        async with create_task_group() as tg:
            tg.start_soon(other)
            # Trio shuffles runnable tasks: give the scheduler a few chances.
            for _ in range(5):
                async with lock:
                    pass
            assert ran is expect_ran


async def test_acquire_when_cancelled_raises_even_if_free() -> None:
    for fast in (False, True):
        lock = Lock(fast_acquire=fast)
        with CancelScope() as scope:
            scope.cancel()
            with pytest.raises(get_cancelled_exc_class()):
                await lock.acquire()
        assert not lock.locked()


async def test_cancelled_waiter_leaves_queue_and_lock_passes_on() -> None:
    lock = Lock()
    got: list[str] = []

    async def waiter(name: str, scope: CancelScope) -> None:
        with scope:
            async with lock:
                got.append(name)

    s1, s2 = CancelScope(), CancelScope()
    async with create_task_group() as tg:
        await lock.acquire()
        tg.start_soon(waiter, "a", s1)
        await wait_all_tasks_blocked()
        tg.start_soon(waiter, "b", s2)
        await wait_all_tasks_blocked()
        s1.cancel()
        await wait_all_tasks_blocked()
        assert lock.statistics().tasks_waiting == 1
        lock.release()

    assert got == ["b"]
    assert not lock.locked()


async def test_errors() -> None:
    lock = Lock()
    with pytest.raises(RuntimeError):
        lock.release()
    await lock.acquire()
    with pytest.raises(RuntimeError, match="Attempted to acquire an already held Lock"):
        lock.acquire_nowait()
    with pytest.raises(RuntimeError, match="Attempted to acquire an already held Lock"):
        await lock.acquire()

    async def other() -> None:
        with pytest.raises(RuntimeError):
            lock.release()
        with pytest.raises(WouldBlock):
            lock.acquire_nowait()

    async with create_task_group() as tg:
        tg.start_soon(other)
    lock.release()


async def test_release_by_non_owner_messages(anyio_backend_name: str) -> None:
    expected = (
        "can't release a Lock you don't own"
        if anyio_backend_name == "trio"
        else "The current task is not holding this lock"
    )
    with pytest.raises(RuntimeError, match=expected):
        Lock().release()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_cancel_after_grant_passes_lock_on() -> None:
    lock = Lock()
    lock.acquire_nowait()
    loop = asyncio.get_running_loop()
    first = loop.create_task(lock.acquire(), name="first")
    await asyncio.sleep(0)
    second = loop.create_task(lock.acquire(), name="second")
    await asyncio.sleep(0)
    lock.release()  # granted to "first"...
    first.cancel()  # ...which is cancelled before it runs
    await asyncio.wait([first, second])
    assert first.cancelled()
    owner = lock.statistics().owner
    assert owner is not None and owner.name == "second"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_cancel_during_shielded_yield_undoes_acquire() -> None:
    lock = Lock()
    task = asyncio.get_running_loop().create_task(lock.acquire())
    await asyncio.sleep(0)
    assert lock.locked()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert not lock.locked()


def test_outside_event_loop() -> None:
    lock = Lock()
    assert not lock.locked()
    with pytest.raises(NoEventLoopError):
        lock.acquire_nowait()
    with pytest.raises(TypeError):
        Lock(True)  # type: ignore[misc]


async def test_subclass_and_isinstance() -> None:
    assert isinstance(Lock(), anyio.Lock)
    assert type(Lock()).__name__ == "Lock"

    class NamedLock(Lock):
        def __new__(cls, name: str) -> NamedLock:
            return super().__new__(cls)

        def __init__(self, name: str) -> None:
            super().__init__(fast_acquire=True)
            self.name = name

    lock = NamedLock("db")
    async with lock:
        assert lock.locked()
        assert lock.name == "db"
    assert lock._fast_acquire
