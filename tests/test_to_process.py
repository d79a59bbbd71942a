"""Running functions in worker processes."""

from __future__ import annotations

import os
import sys
import time
from functools import partial

import pytest

from anyio import (
    BrokenWorkerProcess,
    CancelScope,
    create_task_group,
    fail_after,
    to_process,
    wait_all_tasks_blocked,
)

pytestmark = pytest.mark.anyio


def flood_output() -> str:
    for stream in (sys.stdout, sys.stderr):
        stream.write("x" * 1048576)
        stream.flush()

    os.write(1, b"raw bytes on fd 1")
    return "done"


def sleep_and_return(delay: float) -> str:
    time.sleep(delay)
    return "slept"


def die() -> None:
    os._exit(3)


async def test_same_worker_is_reused() -> None:
    pid = await to_process.run_sync(os.getpid)
    assert pid != os.getpid()
    assert await to_process.run_sync(os.getpid) == pid


async def test_arguments_and_results() -> None:
    assert await to_process.run_sync(partial(sorted, reverse=True), [1, 3, 2]) == [
        3,
        2,
        1,
    ]
    assert await to_process.run_sync(eval, "sys.path") == sys.path


async def test_exception_is_reraised() -> None:
    with pytest.raises(ValueError, match="invalid literal for int"):
        await to_process.run_sync(int, "not a number")


async def test_output_does_not_disturb_the_channel() -> None:
    with fail_after(10):
        assert await to_process.run_sync(flood_output) == "done"
        await to_process.run_sync(print, "hello")


async def test_worker_death() -> None:
    pid = await to_process.run_sync(os.getpid)
    with pytest.raises(BrokenWorkerProcess):
        await to_process.run_sync(die)

    assert await to_process.run_sync(os.getpid) != pid


async def test_cancelled_before_start_reserves_nothing() -> None:
    with CancelScope() as scope:
        scope.cancel()
        await to_process.run_sync(os.getpid)

    assert scope.cancelled_caught
    with pytest.raises(LookupError):
        to_process._process_pool_workers.get()


async def test_cancellable_kills_worker() -> None:
    pid = await to_process.run_sync(os.getpid)
    with fail_after(5):
        async with create_task_group() as tg:
            tg.start_soon(
                partial(to_process.run_sync, cancellable=True), time.sleep, 10
            )
            await wait_all_tasks_blocked()
            tg.cancel_scope.cancel()

    assert await to_process.run_sync(os.getpid) != pid


async def test_uncancellable_call_completes() -> None:
    results: list[str] = []
    await to_process.run_sync(os.getpid)  # have an idle worker ready

    async def call() -> None:
        results.append(await to_process.run_sync(sleep_and_return, 0.2))

    with CancelScope() as scope:
        async with create_task_group() as tg:
            tg.start_soon(call)
            await wait_all_tasks_blocked()
            scope.cancel()

    assert results == ["slept"]


async def test_default_limiter() -> None:
    limiter = to_process.current_default_process_limiter()
    assert limiter.total_tokens == (os.cpu_count() or 2)
    assert to_process.current_default_process_limiter() is limiter
