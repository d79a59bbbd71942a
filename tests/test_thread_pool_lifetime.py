"""The worker pool and the default thread limiter belong to the event loop.

Frameworks run anyio code in tasks anyio did not create (uvicorn starts every
request with ``loop.create_task``): the pool must outlive any one of them and
live until the loop (or ``anyio.run``) ends.
"""

from __future__ import annotations

import asyncio
import gc
import sys
import threading
import weakref
from collections.abc import Callable
from typing import Any

import pytest
from tests._backends import ASYNCIO_IDS, backend_params, run_plain_loop

import anyio
from anyio import to_thread
from anyio._core._eventloop import threadlocals
from anyio.lowlevel import EventLoopToken, current_token


def _run_backend(backend: tuple[str, dict[str, Any]], main: Callable[[], Any]) -> Any:
    return anyio.run(main, backend=backend[0], backend_options=backend[1])


async def _native_rounds(
    backend: str, rounds: int, tasks: int, calls: int, job: Callable[[], Any]
) -> None:
    """`rounds` times, `tasks` short-lived tasks made by the backend itself
    (not by anyio), each making `calls` to_thread calls."""

    async def worker() -> None:
        for _ in range(calls):
            await to_thread.run_sync(job)

    for _ in range(rounds):
        if backend == "trio":
            import trio

            async with trio.open_nursery() as nursery:
                for _ in range(tasks):
                    nursery.start_soon(worker)
        else:
            await asyncio.gather(*[asyncio.create_task(worker()) for _ in range(tasks)])


class DistinctThreads:
    """A job for worker threads: keeps each distinct thread that runs it."""

    def __init__(self) -> None:
        # Kept alive, so distinct objects are distinct threads.
        self.threads: list[threading.Thread] = []
        self._seen: set[int] = set()

    def __call__(self) -> None:
        thread = threading.current_thread()
        if id(thread) not in self._seen:
            self._seen.add(id(thread))
            self.threads.append(thread)


@pytest.mark.parametrize("loop", ASYNCIO_IDS)
def test_short_lived_foreign_tasks_share_the_loops_pool(
    loop: str, keep_idle_workers: None
) -> None:
    """50 concurrent tasks made by asyncio.create_task, ending one after
    another, make 2,000 calls: none fails, and the threads that ran them are
    no more than the default limiter's 40 tokens (not a new set per task)."""
    job = DistinctThreads()

    async def main() -> None:
        await _native_rounds("asyncio", rounds=10, tasks=50, calls=4, job=job)

    # keep_idle_workers: no worker leaves mid-test for a new one to replace it.
    run_plain_loop(loop, main)
    assert 1 <= len(job.threads) <= 40


@pytest.mark.parametrize("backend", backend_params())
def test_native_tasks_share_the_pool_under_anyio_run(
    backend: tuple[str, dict[str, Any]],
) -> None:
    job = DistinctThreads()

    async def main() -> None:
        await _native_rounds(backend[0], rounds=10, tasks=50, calls=4, job=job)

    _run_backend(backend, main)
    assert 1 <= len(job.threads) <= 40


@pytest.mark.parametrize("loop", ASYNCIO_IDS)
def test_default_limiter_outlives_the_task_that_made_it(loop: str) -> None:
    """The first to_thread call of the loop comes from a task that then ends;
    later tasks still see the same default limiter and the same pool."""

    async def first() -> object:
        await to_thread.run_sync(int)
        return to_thread.current_default_thread_limiter()

    async def main() -> tuple[object, object]:
        limiter = await asyncio.create_task(first())
        later = await asyncio.create_task(first())
        return limiter, later

    limiter, later = run_plain_loop(loop, main)
    assert limiter is later


@pytest.mark.parametrize("loop", ASYNCIO_IDS)
def test_idle_workers_hold_no_loop(loop: str) -> None:
    """After the loop's run, idle workers do not keep the loop alive, and they
    leave once it is gone."""
    refs: list[weakref.ref[asyncio.AbstractEventLoop]] = []
    before = {t for t in threading.enumerate() if t.name == "AnyIO worker thread"}

    async def main() -> None:
        refs.append(weakref.ref(asyncio.get_running_loop()))
        await asyncio.gather(
            *[asyncio.create_task(to_thread.run_sync(int)) for _ in range(5)]
        )

    run_plain_loop(loop, main)
    gc.collect()
    assert refs[0]() is None
    mine = {
        t for t in threading.enumerate() if t.name == "AnyIO worker thread"
    } - before
    for thread in mine:
        thread.join(10)
        assert not thread.is_alive()


@pytest.mark.parametrize("backend", backend_params())
def test_worker_thread_token(backend: tuple[str, dict[str, Any]]) -> None:
    """Inside a job, threadlocals.current_token is the caller's loop token (as
    libraries probe it); outside one, reading it raises AttributeError."""

    def probe() -> tuple[object, bool]:
        return threadlocals.current_token, hasattr(threadlocals, "current_token")

    async def main() -> tuple[object, object, bool]:
        token, present = await to_thread.run_sync(probe)
        return current_token(), token, present

    expected, token, present = _run_backend(backend, main)
    assert isinstance(token, EventLoopToken)
    assert token == expected
    assert present
    assert not hasattr(threadlocals, "current_token")


_EXIT_SCRIPT = """
import threading
import anyio
from anyio import _cpp, move_on_after, to_thread

_cpp.set_default_idle_timeout(3600)
blocked = threading.Event()

async def main() -> None:
    await to_thread.run_sync(int)  # leaves an idle worker behind
    with move_on_after(0.1):
        await to_thread.run_sync(blocked.wait, abandon_on_cancel=True)

anyio.run(main, backend="trio")
print("run returned", flush=True)
"""


def test_trio_process_exits_with_blocked_abandoned_and_idle_workers() -> None:
    """On Trio (as with Trio's own threads) neither a worker blocked forever in
    an abandoned call nor an idle one keeps the interpreter from exiting."""
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", _EXIT_SCRIPT],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "run returned\n"


def _count(type_name: str) -> int:
    gc.collect()
    return sum(1 for obj in gc.get_objects() if type(obj).__name__ == type_name)


@pytest.mark.parametrize("backend", backend_params())
def test_loops_run_in_threads_leave_nothing_behind(
    backend: tuple[str, dict[str, Any]],
) -> None:
    """anyio.run in a new thread, many times: the per-loop state and worker
    pools of finished loops do not pile up (each thread's cache of its last
    loop must not keep them)."""

    async def main() -> None:
        await to_thread.run_sync(int)

    def run_in_thread() -> None:
        thread = threading.Thread(target=_run_backend, args=(backend, main))
        thread.start()
        thread.join()

    run_in_thread()
    before = (_count("LoopState"), _count("WorkerPool"))
    for _ in range(30):
        run_in_thread()

    after = (_count("LoopState"), _count("WorkerPool"))
    assert after[0] <= before[0] + 2
    assert after[1] <= before[1] + 2
