"""Python side of the worker-thread pool (anyio._cpp ThreadCall / WorkerPool).

The C++ pool runs jobs and queues their outcomes; this module holds the parts
that are cold or Trio-specific: the Trio driver that parks the calling task,
the Trio pool's lifetime, tasks for requests that no host task can run, and
requests from threads that reach a loop through an event loop token.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from contextvars import Context, copy_context
from typing import Any

from . import _cpp
from ._exceptions import NoEventLoopError, RunFinishedError, WouldBlock

#: Tokens of the default limiter, per event loop.
DEFAULT_THREAD_TOKENS = 40


def _new_default_limiter() -> Any:
    from ._sync import CapacityLimiter

    return CapacityLimiter(DEFAULT_THREAD_TOKENS)


# -- requests without a host task ------------------------------------------------


async def _run_request(request: Any) -> None:
    try:
        value = await _cpp.run_in_context(request.context, request.func, request.args)
    except BaseException as exc:
        request.set_exception(exc)
    else:
        request.set_result(value)


def request_context(backend: str | None = None) -> Context | None:
    """The context a request from this thread runs in on the loop: a copy of
    this thread's. If sniffio is in use, the copy names the loop's library in
    sniffio's override (sync requests run outside any task, where sniffio could
    not tell). None means "a plain copy", made in C++."""
    sniffio = sys.modules.get("sniffio")
    if sniffio is None:
        return None
    if backend is None:
        call = _cpp.current_worker_call()
        backend = call.backend if call is not None else None
    context = copy_context()
    context.run(sniffio.current_async_library_cvar.set, backend)
    return context


def _spawn_request(pool: Any, request: Any) -> None:
    """Run an async request as a task of its own (abandonable caller, token)."""
    if pool is None or not pool.is_trio:
        import asyncio

        loop = asyncio.get_running_loop() if pool is None else pool.token
        request.context.run(loop.create_task, _run_request(request))
    else:
        import trio

        # _run_request enters the request's context itself for each step.
        trio.lowlevel.spawn_system_task(_run_request, request)


def _start_request(request: Any) -> None:
    """Runs on the loop thread for a token-based request."""
    if request.is_async:
        _spawn_request(
            None if _cpp.running_loop() is not None else _TrioMarker, request
        )
    else:
        request.run_sync()


class _TrioMarker:
    is_trio = True


def _in_loop_of(native: Any, is_trio: bool) -> bool:
    if not is_trio:
        return native is _cpp.running_loop()
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        return trio.lowlevel.current_trio_token() is native  # type: ignore[no-any-return]
    except RuntimeError:
        return False


def request_via_token(
    token: Any, is_async: bool, func: Callable[..., Any], args: tuple[Any, ...]
) -> Any:
    """Run func(*args) on the loop behind `token` from any thread and wait."""
    native = token.native_token
    is_trio = getattr(token.backend_class, "name", None) == "trio"
    if _in_loop_of(native, is_trio):
        # Waiting here would block the very loop that has to answer.
        raise RuntimeError("this is a blocking function; call it from a thread")

    context = request_context("trio" if is_trio else "asyncio")
    request = _cpp.new_thread_request(is_async, func, args, context)
    if is_trio:
        import trio

        try:
            native.run_sync_soon(_start_request, request)
        except trio.RunFinishedError:
            raise RunFinishedError() from None
    else:
        if native.is_closed():
            raise RunFinishedError()
        try:
            native.call_soon_threadsafe(_start_request, request)
        except RuntimeError as exc:
            raise RunFinishedError() from exc

    return request.wait()


# -- Trio ------------------------------------------------------------------------

_trio_pool_var: Any = None


def _trio_pool() -> Any:
    global _trio_pool_var
    import trio

    if _trio_pool_var is None:
        _trio_pool_var = trio.lowlevel.RunVar("anyio_worker_pool")

    pool = _trio_pool_var.get(None)
    if pool is None:
        pool = _cpp.new_trio_worker_pool(trio.lowlevel.current_trio_token())
        _trio_pool_var.set(pool)
        trio.lowlevel.spawn_system_task(
            _serve_trio_pool, pool, name="anyio worker pool"
        )

    return pool


async def _serve_trio_pool(pool: Any) -> None:
    import trio

    # Workers wake the run through the Trio token (run_sync_soon), so this
    # task only waits for the end of the run; the pool holds no descriptor.
    try:
        await trio.sleep_forever()
    finally:
        # The run is ending (every user task has finished): idle workers go,
        # outcomes of abandoned jobs are dropped.
        pool.abort()


def trio_current_pool() -> Any:
    return _trio_pool()


async def _trio_run(call: Any) -> Any:
    import trio

    await trio.lowlevel.checkpoint_if_cancelled()
    pool = _trio_pool()
    limiter = call.limiter
    if limiter is None:
        limiter = pool.default_limiter
        if limiter is None:
            limiter = pool.default_limiter = _new_default_limiter()

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


def _trio_wake(task: Any) -> None:
    import trio

    trio.lowlevel.reschedule(task)


def _trio_raise_cancelled() -> None:
    import trio

    raise trio.Cancelled._create()


async def _trio_check_cancelled() -> None:
    import trio

    await trio.lowlevel.checkpoint_if_cancelled()


def check_cancelled() -> None:
    if _cpp.worker_check_cancelled():
        # Trio: only the host task can tell; ask it.
        _cpp.worker_request(True, _trio_check_cancelled, (), None)


def not_in_worker() -> NoEventLoopError:
    return NoEventLoopError(
        "Not running inside an AnyIO worker thread, and no event loop token was provided"
    )


def _make_worker_token(pool: Any) -> Any:
    from .lowlevel import EventLoopToken, _AsyncIOBackend, _TrioBackend

    return EventLoopToken(_TrioBackend if pool.is_trio else _AsyncIOBackend, pool.token)


_cpp._set_thread_hooks(
    {
        "make_worker_token": _make_worker_token,
        "spawn_request": _spawn_request,
        "run_request": _run_request,
        "trio_run": _trio_run,
        "trio_wake": _trio_wake,
        "trio_raise_cancelled": _trio_raise_cancelled,
        "new_default_limiter": _new_default_limiter,
    }
)

# threading runs these hooks at interpreter exit before it joins non-daemon
# threads: idle workers of loops that have stopped leave then instead of at
# the end of their idle timeout.
_register_atexit = getattr(threading, "_register_atexit", None)
if _register_atexit is not None:
    try:
        _register_atexit(_cpp._close_idle_worker_pools)
    except RuntimeError:  # the interpreter is already shutting down
        pass
