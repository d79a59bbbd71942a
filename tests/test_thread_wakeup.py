"""How worker threads wake the event loop: through the loop's own thread-safe
call, batched, with no file descriptor of the pool's own (issue 19, item 4)."""

from __future__ import annotations

import gc
import os
import sys
import threading
import time
from typing import Any

import pytest
from tests._backends import backend_params

import anyio
from anyio import RunFinishedError, from_thread, to_thread

pytestmark = pytest.mark.skipif(
    not os.path.isdir("/proc/self/fd"), reason="counts descriptors in /proc/self/fd"
)


def _open_fds() -> int:
    gc.collect()
    return len(os.listdir("/proc/self/fd"))


def _run(backend: tuple[str, dict[str, Any]], main: Any) -> Any:
    return anyio.run(main, backend=backend[0], backend_options=backend[1])


@pytest.mark.parametrize("backend", backend_params())
def test_worker_threads_and_open_process_add_no_descriptor(
    backend: tuple[str, dict[str, Any]],
) -> None:
    # What a leak check does: count before any worker use, then after thread
    # calls, a from_thread request and a subprocess session, in the same
    # loop. Upstream anyio 4.16.0 counts the same number all through.
    async def main() -> list[int]:
        counts = [_open_fds()]
        for _ in range(5):
            await to_thread.run_sync(time.sleep, 0)
        counts.append(_open_fds())
        assert await to_thread.run_sync(from_thread.run_sync, lambda: 7) == 7
        counts.append(_open_fds())
        async with await anyio.open_process(
            [sys.executable, "-c", "print('hi')"]
        ) as process:
            assert await process.wait() == 0
        counts.append(_open_fds())
        return counts

    counts = _run(backend, main)
    assert counts == [counts[0]] * len(counts)


@pytest.mark.parametrize("backend", backend_params())
def test_burst_of_concurrent_calls_all_complete(
    backend: tuple[str, dict[str, Any]],
) -> None:
    # Many outcomes arrive while one wake-up is in flight (the batch): none
    # may wait for a wake-up that never comes.
    n = 200
    start = threading.Barrier(20)

    def job(i: int) -> int:
        if i < 20:
            # Twenty finish at the same moment, so they land in one batch.
            start.wait(10)
        return i * 2

    async def main() -> list[int]:
        results = [-1] * n
        limiter = anyio.CapacityLimiter(n)

        async def one(i: int) -> None:
            results[i] = await to_thread.run_sync(job, i, limiter=limiter)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for i in range(n):
                    tg.start_soon(one, i)
        return results

    assert _run(backend, main) == [i * 2 for i in range(n)]


@pytest.mark.parametrize("backend", backend_params())
def test_burst_of_from_thread_requests_all_answered(
    backend: tuple[str, dict[str, Any]],
) -> None:
    def job(i: int) -> int:
        return from_thread.run_sync(lambda: i) + 1

    async def main() -> list[int]:
        limiter = anyio.CapacityLimiter(50)
        results = [-1] * 200

        async def one(i: int) -> None:
            results[i] = await to_thread.run_sync(job, i, limiter=limiter)

        with anyio.fail_after(30):
            async with anyio.create_task_group() as tg:
                for i in range(200):
                    tg.start_soon(one, i)
        return results

    assert _run(backend, main) == [i + 1 for i in range(200)]


@pytest.mark.parametrize("backend", backend_params())
def test_request_after_the_loop_closed_fails_at_once(
    backend: tuple[str, dict[str, Any]],
) -> None:
    # An abandoned worker that calls back once the run is over: the wake-up
    # is refused (closed loop, finished Trio run) and the request fails with
    # RunFinishedError instead of being lost or waited for.
    go = threading.Event()
    outcome: list[BaseException | None] = []
    finished = threading.Event()

    def job() -> None:
        go.wait(10)
        try:
            from_thread.run_sync(int)
        except BaseException as exc:
            outcome.append(exc)
        else:
            outcome.append(None)
        finished.set()

    async def main() -> None:
        with anyio.move_on_after(0.05):
            await to_thread.run_sync(job, abandon_on_cancel=True)

    _run(backend, main)
    go.set()
    assert finished.wait(10)
    assert len(outcome) == 1
    assert isinstance(outcome[0], RunFinishedError)
