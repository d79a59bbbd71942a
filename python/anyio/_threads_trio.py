"""Trio side of the worker-thread pool (anyio._cpp ThreadCall / WorkerPool).

On Trio the C++ ThreadCall hands its await over to :func:`thread_call`, which
takes a limiter token, submits the job to the run's pool and parks the task
with ``wait_task_rescheduled``; the pool's wake-up reschedules it (from C++,
through ``trio.lowlevel.reschedule``). The run's pool lives in a RunVar and
is served by a system task that closes it when the run ends.

Trio is imported inside the functions: this module is imported with anyio,
which must not import Trio unless Trio runs.
"""

from __future__ import annotations

from typing import Any

from . import _cpp
from ._exceptions import RunFinishedError, WouldBlock

_pool_var: Any = None


def current_pool() -> Any:
    """The worker pool of the current Trio run, made on first use."""
    global _pool_var
    import trio

    if _pool_var is None:
        _pool_var = trio.lowlevel.RunVar("anyio_worker_pool")

    pool = _pool_var.get(None)
    if pool is None:
        pool = _cpp.new_trio_worker_pool(trio.lowlevel.current_trio_token())
        _pool_var.set(pool)
        trio.lowlevel.spawn_system_task(_serve_pool, pool, name="anyio worker pool")

    return pool


async def _serve_pool(pool: Any) -> None:
    import trio

    # Workers wake the run through the Trio token (run_sync_soon), so this
    # task only waits for the end of the run; the pool holds no descriptor.
    try:
        await trio.sleep_forever()
    finally:
        # The run is ending (every user task has finished): idle workers go,
        # outcomes of abandoned jobs are dropped.
        pool.abort()


async def thread_call(call: Any) -> Any:
    """Drive a ThreadCall on Trio: the hook the C++ awaitable forwards to."""
    import trio

    await trio.lowlevel.checkpoint_if_cancelled()
    pool = current_pool()
    limiter = call.limiter
    if limiter is None:
        limiter = pool.default_limiter
        if limiter is None:
            from ._threads import new_default_limiter

            limiter = pool.default_limiter = new_default_limiter()

    try:
        limiter.acquire_on_behalf_of_nowait(call)
    except WouldBlock:
        await limiter.acquire_on_behalf_of(call)

    abandon = call.abandon_on_cancel

    def abort(raise_cancel: Any) -> Any:
        if abandon:
            call.abandon()
            return trio.lowlevel.Abort.SUCCEEDED
        # Shielded: the thread's outcome is awaited; cancellation lands at
        # the caller's next checkpoint.
        return trio.lowlevel.Abort.FAILED

    try:
        call.submit(pool, trio.lowlevel.current_task())
        while True:
            await trio.lowlevel.wait_task_rescheduled(abort)
            request = call.take_request()
            if request is None:
                break

            # The worker called from_thread.run: run it here, in this task,
            # so that its cancel scopes apply.
            try:
                value = await _cpp.run_in_context(
                    request.context, request.func, request.args
                )
            except BaseException as exc:
                request.set_exception(exc)
            else:
                request.set_result(value)

        return call.outcome()
    finally:
        limiter.release_on_behalf_of(call)


def spawn_request(request: Any, run_request: Any) -> None:
    """An async request no waiting task runs: a system task of its own."""
    import trio

    # run_request enters the request's context itself for each step.
    trio.lowlevel.spawn_system_task(run_request, request)


def is_current_token(native: Any) -> bool:
    """Whether this thread runs the Trio run behind `native` (a TrioToken)."""
    import sys

    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        return trio.lowlevel.current_trio_token() is native  # type: ignore[no-any-return]
    except RuntimeError:
        return False


def post(native: Any, func: Any, *args: Any) -> None:
    """Schedule ``func(*args)`` on the run behind `native` (a TrioToken)."""
    import trio

    try:
        native.run_sync_soon(func, *args)
    except trio.RunFinishedError:
        raise RunFinishedError() from None


async def check_cancelled() -> None:
    """Run by the host task for a worker's from_thread.check_cancelled()."""
    import trio

    await trio.lowlevel.checkpoint_if_cancelled()


_cpp.register_hooks(trio_thread_call=thread_call)
