"""Python side of the worker-thread pool (anyio._cpp ThreadCall / WorkerPool).

The C++ pool runs jobs and queues their outcomes; this module holds the cold
parts: the default limiter, tasks for requests that no waiting caller runs,
and requests from threads that reach a loop through an event loop token. The
Trio-specific parts (the driver that parks the calling task, the run's pool)
are in anyio._threads_trio.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from contextvars import Context, copy_context
from typing import Any

from . import _cpp, _threads_trio
from ._exceptions import NoEventLoopError, RunFinishedError

#: Tokens of the default limiter, per event loop.
DEFAULT_THREAD_TOKENS = 40


def new_default_limiter() -> Any:
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
    """Run an async request as a task of its own (abandonable caller, token).
    `pool` is the worker pool of the loop, or None on the loop's own thread."""
    if pool is not None and pool.is_trio:
        _threads_trio.spawn_request(request, _run_request)
    else:
        loop: Any = _cpp.running_loop() if pool is None else pool.token
        request.context.run(loop.create_task, _run_request(request))


def _start_request(request: Any) -> None:
    """Runs on the loop thread for a token-based request."""
    if not request.is_async:
        request.run_sync()
    elif _cpp.running_loop() is not None:
        _spawn_request(None, request)
    else:
        _threads_trio.spawn_request(request, _run_request)


def _in_loop_of(native: Any, is_trio: bool) -> bool:
    if is_trio:
        return _threads_trio.is_current_token(native)
    return native is _cpp.running_loop()


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
        _threads_trio.post(native, _start_request, request)
    else:
        if native.is_closed():
            raise RunFinishedError()
        try:
            native.call_soon_threadsafe(_start_request, request)
        except RuntimeError as exc:
            raise RunFinishedError() from exc

    return request.wait()


# -- worker threads ----------------------------------------------------------------


def check_cancelled() -> None:
    if _cpp.worker_check_cancelled():
        # Trio: only the host task can tell; ask it.
        _cpp.worker_request(True, _threads_trio.check_cancelled, (), None)


def not_in_worker() -> NoEventLoopError:
    return NoEventLoopError(
        "Not running inside an AnyIO worker thread, and no event loop token was provided"
    )


def _make_worker_token(pool: Any) -> Any:
    from .lowlevel import EventLoopToken, _AsyncIOBackend, _TrioBackend

    return EventLoopToken(_TrioBackend if pool.is_trio else _AsyncIOBackend, pool.token)


#: Used by tests and by to_thread.current_default_thread_limiter().
trio_current_pool = _threads_trio.current_pool

_cpp.register_hooks(
    new_default_thread_limiter=new_default_limiter,
    make_worker_token=_make_worker_token,
    run_thread_request=_run_request,
    spawn_thread_request=_spawn_request,
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
