"""anyio.to_thread: running blocking functions in the worker pool."""

from __future__ import annotations

import contextvars
import sys
import threading
import time
import warnings
from typing import Any

import pytest
from tests._backends import backend_params

import anyio
from anyio import (
    CancelScope,
    CapacityLimiter,
    NoEventLoopError,
    create_task_group,
    from_thread,
    get_cancelled_exc_class,
    move_on_after,
    to_thread,
    wait_all_tasks_blocked,
)
from anyio.lowlevel import checkpoint

pytestmark = pytest.mark.anyio

var: contextvars.ContextVar[int] = contextvars.ContextVar("var", default=0)


async def test_returns_result_and_passes_args() -> None:
    assert await to_thread.run_sync(divmod, 17, 5) == (3, 2)


async def test_runs_in_named_worker_thread() -> None:
    thread = await to_thread.run_sync(threading.current_thread)
    assert thread is not threading.current_thread()
    assert thread.name == "AnyIO worker thread"


async def test_sequential_calls_reuse_one_thread() -> None:
    idents = {await to_thread.run_sync(threading.get_ident) for _ in range(10)}
    assert len(idents) == 1
    assert threading.get_ident() not in idents


async def test_exception_propagates_with_traceback() -> None:
    def fail() -> None:
        raise ValueError("boom")

    with pytest.raises(ValueError, match="^boom$") as exc_info:
        await to_thread.run_sync(fail)

    assert any(entry.name == "fail" for entry in exc_info.traceback)


async def test_stopiteration_becomes_runtimeerror() -> None:
    def stop() -> None:
        raise StopIteration

    with pytest.raises(RuntimeError, match="coroutine raised StopIteration"):
        await to_thread.run_sync(stop)


def _implicitly_chained() -> None:
    try:
        raise KeyError("inner")
    except KeyError:
        raise ValueError("outer")


def _explicitly_chained() -> None:
    try:
        raise KeyError("inner")
    except KeyError as exc:
        raise ValueError("outer") from exc


async def test_exception_keeps_its_cause() -> None:
    with pytest.raises(ValueError) as info:
        await to_thread.run_sync(_explicitly_chained)

    assert isinstance(info.value.__cause__, KeyError)
    assert info.value.__suppress_context__


async def test_exception_chains_to_the_callers_handled_exception() -> None:
    """Raised in the caller while it handles an exception, the function's
    exception gets that one as its __context__, as a `raise` statement (and
    upstream, which re-raises the outcome) would do; outside an except block
    it keeps the context it had in the thread."""
    with pytest.raises(ValueError) as info:
        await to_thread.run_sync(_implicitly_chained)

    assert isinstance(info.value.__context__, KeyError)

    try:
        raise OSError("handled by the caller")
    except OSError as handled:
        with pytest.raises(ValueError) as info:
            await to_thread.run_sync(_implicitly_chained)

        assert info.value.__context__ is handled
        with pytest.raises(ValueError) as info:
            await to_thread.run_sync(_explicitly_chained)

        assert isinstance(info.value.__cause__, KeyError)
        assert info.value.__context__ is handled


async def test_async_context_manager_as_limiter(anyio_backend_name: str) -> None:
    """asyncio, as upstream: a Lock or Semaphore limits the call, held by the
    calling task while the thread runs; Trio (as upstream) wants a real
    capacity limiter."""
    lock = anyio.Lock()
    if anyio_backend_name == "trio":
        with pytest.raises(AttributeError):
            await to_thread.run_sync(int, limiter=lock)  # type: ignore[arg-type]
        return

    assert await to_thread.run_sync(lock.locked, limiter=lock) is True  # type: ignore[arg-type]
    assert not lock.locked()
    semaphore = anyio.Semaphore(1)
    assert await to_thread.run_sync(lambda: semaphore.value, limiter=semaphore) == 0  # type: ignore[arg-type]
    assert semaphore.value == 1


async def test_context_copied_in_not_out() -> None:
    var.set(7)

    def worker() -> int:
        value = var.get()
        var.set(99)
        return value

    assert await to_thread.run_sync(worker) == 7
    assert var.get() == 7


async def test_cancelled_before_start_does_not_run() -> None:
    ran = False

    def worker() -> None:
        nonlocal ran
        ran = True

    with CancelScope() as scope:
        scope.cancel()
        await to_thread.run_sync(worker)

    assert scope.cancelled_caught
    assert not ran


async def test_shielded_wait_returns_result() -> None:
    # Without abandon_on_cancel the caller waits for the thread and gets its
    # result; the cancellation lands at the next checkpoint.
    event = threading.Event()
    with CancelScope() as scope:
        async with create_task_group() as tg:

            async def cancel_soon() -> None:
                await wait_all_tasks_blocked()
                scope.cancel()
                event.set()

            tg.start_soon(cancel_soon)
            assert await to_thread.run_sync(lambda: event.wait(5) and "done") == "done"
            with pytest.raises(get_cancelled_exc_class()):
                await checkpoint()

    assert scope.cancel_called


async def test_abandon_on_cancel_returns_at_once() -> None:
    release = threading.Event()
    finished = threading.Event()

    def worker() -> str:
        release.wait(5)
        finished.set()
        return "dropped"

    with move_on_after(0.05) as scope:
        await to_thread.run_sync(worker, abandon_on_cancel=True)

    assert scope.cancelled_caught
    assert not finished.is_set()
    release.set()
    # The abandoned thread still finishes its work.
    assert await to_thread.run_sync(finished.wait, 5)


async def test_deprecated_cancellable() -> None:
    with pytest.warns(DeprecationWarning, match="cancellable="):
        assert await to_thread.run_sync(int, "3", cancellable=True) == 3


async def test_custom_limiter_bounds_concurrency() -> None:
    limiter = CapacityLimiter(2)
    lock = threading.Lock()
    active = peak = 0

    def worker() -> None:
        nonlocal active, peak
        with lock:
            active += 1
            peak = max(peak, active)
        time.sleep(0.02)
        with lock:
            active -= 1

    async with create_task_group() as tg:
        for _ in range(6):
            tg.start_soon(lambda: to_thread.run_sync(worker, limiter=limiter))

    assert peak == 2
    assert limiter.borrowed_tokens == 0


async def test_default_limiter_is_per_loop_with_40_tokens() -> None:
    limiter = to_thread.current_default_thread_limiter()
    assert limiter is to_thread.current_default_thread_limiter()
    assert limiter.total_tokens == 40
    await to_thread.run_sync(int)
    assert limiter.borrowed_tokens == 0


async def test_default_limiter_adjustable() -> None:
    limiter = to_thread.current_default_thread_limiter()
    limiter.total_tokens = 1
    started = threading.Event()
    release = threading.Event()
    order: list[str] = []

    def first() -> None:
        started.set()
        release.wait(5)
        order.append("first")

    async def second() -> None:
        await to_thread.run_sync(started.wait, 5)  # waits for the token
        order.append("second")

    async with create_task_group() as tg:
        tg.start_soon(to_thread.run_sync, first)
        await wait_all_tasks_blocked()
        tg.start_soon(second)
        await wait_all_tasks_blocked()
        assert limiter.borrowed_tokens == 1
        assert limiter.statistics().tasks_waiting == 1
        release.set()

    assert order == ["first", "second"]
    limiter.total_tokens = 40


def test_default_limiter_outside_event_loop() -> None:
    with pytest.raises(NoEventLoopError):
        to_thread.current_default_thread_limiter()


async def test_many_concurrent_calls() -> None:
    results: list[int] = []

    async def one(i: int) -> None:
        results.append(await to_thread.run_sync(pow, i, 2))

    async with create_task_group() as tg:
        for i in range(200):
            tg.start_soon(one, i)

    assert sorted(results) == [i * i for i in range(200)]


def _worker_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "AnyIO worker thread"}


def test_workers_exit_when_run_ends() -> None:
    # Workers of earlier tests may still be exiting: only the ones started
    # here must be gone at the end.
    before = _worker_threads()

    async def main() -> None:
        async with create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(to_thread.run_sync, time.sleep, 0.01)

        assert _worker_threads() - before

    anyio.run(main)
    deadline = time.monotonic() + 5
    while _worker_threads() - before and time.monotonic() < deadline:
        time.sleep(0.01)

    assert not _worker_threads() - before


async def test_idle_workers_exit_after_timeout() -> None:
    from anyio import _cpp

    old = _cpp.set_default_idle_timeout(0.05)
    try:
        # A loop whose pool was created with the short timeout.
        def inner() -> int:
            async def main() -> int:
                await to_thread.run_sync(int)
                pool: Any = _cpp.current_worker_pool()
                assert pool.idle_timeout == 0.05
                assert pool.threads == 1
                deadline = time.monotonic() + 5
                while pool.threads and time.monotonic() < deadline:
                    await anyio.sleep(0.01)
                return int(pool.threads)

            return anyio.run(main)

        assert await to_thread.run_sync(inner) == 0
    finally:
        _cpp.set_default_idle_timeout(old)


async def test_worker_can_call_back_into_loop() -> None:
    async def double(x: int) -> int:
        await checkpoint()
        return x * 2

    def worker() -> tuple[int, int]:
        return from_thread.run(double, 4), from_thread.run_sync(len, "abc")

    assert await to_thread.run_sync(worker) == (8, 3)


async def test_no_warnings_on_normal_use() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        await to_thread.run_sync(int)


async def test_native_task_cancel_ends_wait(anyio_backend_name: str) -> None:
    # asyncio's own Task.cancel() (as asyncio.wait_for uses) ends the wait at
    # once, as it would for a future; anyio scopes still respect the shield.
    if anyio_backend_name != "asyncio":
        pytest.skip("asyncio only")

    import asyncio

    release = threading.Event()
    start = time.monotonic()
    # asyncio.TimeoutError: the builtin TimeoutError from Python 3.11 on
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(to_thread.run_sync(release.wait, 5), 0.05)

    assert time.monotonic() - start < 2
    release.set()


async def test_worker_reused_after_cancelled_calls() -> None:
    """Calls cancelled at any point after they were handed to the pool (queued,
    running, or done but not yet reported) give their worker back: later calls
    run on the same thread instead of a growing set of threads."""
    worker = await to_thread.run_sync(threading.current_thread)
    for _ in range(50):
        with CancelScope() as scope:
            async with create_task_group() as tg:

                async def cancel_when_blocked() -> None:
                    await wait_all_tasks_blocked()
                    scope.cancel()

                tg.start_soon(cancel_when_blocked)
                await to_thread.run_sync(int, abandon_on_cancel=True)

        # An abandoned int() may still be finishing: give it the time to.
        deadline = time.monotonic() + 5
        while (
            current := await to_thread.run_sync(threading.current_thread)
        ) is not worker:
            assert time.monotonic() < deadline, (
                f"{current!r} ran the call, not {worker!r}"
            )
            await anyio.sleep(0.001)


@pytest.mark.parametrize("backend", backend_params())
def test_abandoned_call_finishing_after_loop_closed(
    backend: tuple[str, dict[str, Any]],
) -> None:
    """A worker still running an abandoned call when its event loop closes
    finishes it, drops the result quietly (no error in the thread, nothing
    unraisable) and exits."""
    before = _worker_threads()
    started = threading.Event()
    release = threading.Event()
    finished = threading.Event()
    errors: list[object] = []

    def work() -> int:
        started.set()
        release.wait(5)
        finished.set()
        return 1

    async def main() -> None:
        with CancelScope() as scope:
            async with create_task_group() as tg:

                async def cancel_when_started() -> None:
                    await to_thread.run_sync(started.wait, 5)
                    scope.cancel()

                tg.start_soon(cancel_when_started)
                await to_thread.run_sync(work, abandon_on_cancel=True)

    old_thread_hook, old_unraisable_hook = threading.excepthook, sys.unraisablehook
    threading.excepthook = errors.append
    sys.unraisablehook = errors.append
    try:
        anyio.run(main, backend=backend[0], backend_options=backend[1])
        assert not finished.is_set()
        release.set()
        assert finished.wait(5)
        deadline = time.monotonic() + 5
        while _worker_threads() - before and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        threading.excepthook, sys.unraisablehook = old_thread_hook, old_unraisable_hook

    assert not _worker_threads() - before
    assert errors == []
