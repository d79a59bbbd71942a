"""Event: waking, cancellation, checkpoints, statistics, both backends."""

from __future__ import annotations

import asyncio
import gc
import sys

import pytest

import anyio
from anyio import (
    CancelScope,
    Event,
    EventStatistics,
    NoEventLoopError,
    create_task_group,
    get_cancelled_exc_class,
    wait_all_tasks_blocked,
)

pytestmark = pytest.mark.anyio


async def test_set_wakes_every_waiter() -> None:
    event = Event()
    woken: list[int] = []

    async def waiter(i: int) -> None:
        await event.wait()
        woken.append(i)

    async with create_task_group() as tg:
        for i in range(5):
            tg.start_soon(waiter, i)
        await wait_all_tasks_blocked()
        assert event.statistics() == EventStatistics(tasks_waiting=5)
        assert woken == []
        event.set()
        assert event.is_set()
        assert event.statistics().tasks_waiting == 0

    # Trio runs each batch of woken tasks in a shuffled order.
    assert sorted(woken) == [0, 1, 2, 3, 4]


async def test_wait_on_set_event_is_a_checkpoint() -> None:
    event = Event()
    event.set()
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    async with create_task_group() as tg:
        tg.start_soon(other)
        # Trio shuffles each batch of runnable tasks: allow a few steps.
        for _ in range(5):
            await event.wait()
        order.append("waited")

    assert order == ["other", "waited"]


async def test_wait_on_set_event_raises_when_cancelled() -> None:
    event = Event()
    event.set()
    with CancelScope() as scope:
        scope.cancel()
        with pytest.raises(get_cancelled_exc_class()):
            await event.wait()


async def test_cancelled_waiter_leaves_the_queue() -> None:
    event = Event()
    reached = False

    async def waiter(scope: CancelScope) -> None:
        nonlocal reached
        with scope:
            await event.wait()
            reached = True

    scope = CancelScope()
    async with create_task_group() as tg:
        tg.start_soon(waiter, scope)
        await wait_all_tasks_blocked()
        assert event.statistics().tasks_waiting == 1
        scope.cancel()
        await wait_all_tasks_blocked()
        assert event.statistics().tasks_waiting == 0

    assert not reached
    assert scope.cancelled_caught


async def test_set_then_cancel_still_wakes() -> None:
    # The wake-up arrived first: the waiter returns normally and the
    # cancellation waits for its next checkpoint.
    event = Event()
    steps: list[str] = []

    async def waiter() -> None:
        await event.wait()
        steps.append("woke")
        await anyio.lowlevel.checkpoint()
        steps.append("not reached")

    async with create_task_group() as tg:
        tg.start_soon(waiter)
        await wait_all_tasks_blocked()
        event.set()
        tg.cancel_scope.cancel()

    assert steps == ["woke"]


async def test_set_is_idempotent() -> None:
    event = Event()
    event.set()
    event.set()
    assert event.is_set()
    assert event.set() is None


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_asyncio_task_can_wait() -> None:
    event = Event()
    task = asyncio.get_running_loop().create_task(event.wait())
    await asyncio.sleep(0)
    assert event.statistics().tasks_waiting == 1
    event.set()
    await task
    assert task.done() and not task.cancelled()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_asyncio_cancel_of_waiter() -> None:
    event = Event()
    task = asyncio.get_running_loop().create_task(event.wait())
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert event.statistics().tasks_waiting == 0


def test_create_outside_loop_and_use_on_each_backend(
    anyio_backend_name: str, anyio_backend_options: dict[str, object]
) -> None:
    event = Event()
    assert event.statistics().tasks_waiting == 0

    async def main() -> None:
        async with create_task_group() as tg:
            tg.start_soon(event.wait)
            await wait_all_tasks_blocked()
            event.set()

    anyio.run(main, backend=anyio_backend_name, backend_options=anyio_backend_options)
    assert event.is_set()


def test_wait_outside_loop_raises() -> None:
    coro = Event().wait()
    with pytest.raises(NoEventLoopError):
        coro.send(None)


def test_wait_does_not_leak() -> None:
    async def main() -> None:
        for _ in range(2000):
            event = Event()
            event.set()
            await event.wait()

    anyio.run(main)
    gc.collect()
    before = sys.gettotalrefcount() if hasattr(sys, "gettotalrefcount") else None
    event = Event()
    refs = sys.getrefcount(event)
    anyio.run(main)

    async def waits_on(ev: Event) -> None:
        for _ in range(100):
            await ev.wait()

    event.set()
    anyio.run(waits_on, event)
    assert sys.getrefcount(event) == refs
    if before is not None:  # pragma: no cover - debug builds only
        assert sys.gettotalrefcount() - before < 100
