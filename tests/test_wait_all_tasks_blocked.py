"""wait_all_tasks_blocked(): a checkpoint first, then it waits while another
task can still make progress, including work in flight in a worker thread.

On Trio it is trio.testing.wait_all_tasks_blocked(), as upstream's.
"""

from __future__ import annotations

import threading

import pytest
from tests._backends import ASYNCIO_IDS, on_backends

import anyio
from anyio import CancelScope, create_task_group, wait_all_tasks_blocked

pytestmark = pytest.mark.anyio

asyncio_only = on_backends(*ASYNCIO_IDS)


async def test_is_a_checkpoint() -> None:
    with CancelScope() as scope:
        scope.cancel()
        await wait_all_tasks_blocked()

    assert scope.cancelled_caught


async def test_waits_for_tasks_that_can_still_run() -> None:
    log: list[str] = []

    async def steps() -> None:
        for _ in range(5):
            await anyio.lowlevel.checkpoint()
        log.append("steps done")

    async with create_task_group() as tg:
        tg.start_soon(steps)
        await wait_all_tasks_blocked()
        log.append("settled")
        tg.cancel_scope.cancel()

    assert log == ["steps done", "settled"]


async def test_waits_for_a_worker_thread_call_to_come_back() -> None:
    # The worker's job is a C function (a lock's release), so the worker holds
    # the GIL from the moment the job ends until its outcome is queued for
    # the loop. `loop_blocker` keeps the loop busy (runnable, then blocked on
    # the lock) until the job has ended, and then finishes: from then on only
    # the call's trip back to its task remains, and wait_all_tasks_blocked()
    # must not return before the task has it.
    job = threading.Lock()
    job.acquire()
    log: list[str] = []

    async def caller() -> None:
        await anyio.to_thread.run_sync(job.release)
        log.append("caller done")

    async def loop_blocker() -> None:
        while not job.acquire(blocking=False):
            await anyio.lowlevel.checkpoint()

        log.append("job ended")

    async with create_task_group() as tg:
        tg.start_soon(caller)
        tg.start_soon(loop_blocker)
        await wait_all_tasks_blocked()
        log.append("settled")

    assert sorted(log[:2]) == ["caller done", "job ended"]
    assert log[2:] == ["settled"]


@asyncio_only
async def test_gives_a_new_worker_thread_call_one_settle_period() -> None:
    # As upstream: a worker-thread call made just before leaves its task
    # runnable at the first look, so the function gets one settle period
    # (0.1 s on the loop's clock) to finish in before this returns.
    release = threading.Event()
    started = anyio.current_time()
    async with create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, release.wait)
        await wait_all_tasks_blocked()
        elapsed = anyio.current_time() - started
        release.set()

    assert elapsed >= 0.09


async def test_returns_while_a_worker_call_stays_blocked() -> None:
    release = threading.Event()
    async with create_task_group() as tg:
        tg.start_soon(anyio.to_thread.run_sync, release.wait)
        await wait_all_tasks_blocked()
        await wait_all_tasks_blocked()  # a call it has seen running is blocked
        assert not release.is_set()
        release.set()
