"""Call into the event loop from other threads, and blocking portals."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import Future  # noqa: F401  (upstream's module has this name too)
from typing import TYPE_CHECKING, TypeVar

from . import _cpp, _threads
from ._portal import BlockingPortal as BlockingPortal
from ._portal import BlockingPortalProvider as BlockingPortalProvider
from ._portal import start_blocking_portal as start_blocking_portal

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

if TYPE_CHECKING:
    from .lowlevel import EventLoopToken

T_Retval = TypeVar("T_Retval")
PosArgsT = TypeVarTuple("PosArgsT")

_worker_request = _cpp.worker_request
_current_worker_call = _cpp.current_worker_call
_request_context = _threads.request_context


def run(
    func: Callable[[Unpack[PosArgsT]], Awaitable[T_Retval]],
    *args: Unpack[PosArgsT],
    token: EventLoopToken | None = None,
) -> T_Retval:
    """Run a coroutine function in the event loop thread and wait for its result.

    From a worker thread started by :func:`anyio.to_thread.run_sync` the loop is
    found automatically; from any other thread pass the loop's `token`
    (:func:`anyio.lowlevel.current_token`). The coroutine runs in a copy of
    this thread's context. Cancelling a scope around the worker's waiting
    caller cancels it (on asyncio it runs in a task of its own, on Trio in
    the waiting task).

    :raises NoEventLoopError: outside a worker thread without a token
    :raises RunFinishedError: if the event loop behind `token` has finished
    """
    if token is not None:
        return _threads.request_via_token(token, True, func, args)  # type: ignore[no-any-return]

    if _current_worker_call() is None:
        raise _threads.not_in_worker()

    return _worker_request(True, func, args, _request_context())  # type: ignore[no-any-return]


def run_sync(
    func: Callable[[Unpack[PosArgsT]], T_Retval],
    *args: Unpack[PosArgsT],
    token: EventLoopToken | None = None,
) -> T_Retval:
    """Call a function in the event loop thread and wait for its result.

    The function runs as a plain callback of the loop (not inside a task), in a
    copy of this thread's context.

    :raises NoEventLoopError: outside a worker thread without a token
    :raises RunFinishedError: if the event loop behind `token` has finished
    """
    if token is not None:
        return _threads.request_via_token(token, False, func, args)  # type: ignore[no-any-return]

    if _current_worker_call() is None:
        raise _threads.not_in_worker()

    return _worker_request(False, func, args, _request_context())  # type: ignore[no-any-return]


def check_cancelled() -> None:
    """Raise the cancellation exception if the task that started this worker
    thread has been cancelled (or has abandoned the thread).

    :raises NoEventLoopError: if not called from a worker thread
    """
    _threads.check_cancelled()


# The portal lives in anyio._portal; it is public here, as upstream has it.
for _name in ("BlockingPortal", "BlockingPortalProvider", "start_blocking_portal"):
    globals()[_name].__module__ = __name__

__all__ = (
    "BlockingPortal",
    "BlockingPortalProvider",
    "check_cancelled",
    "run",
    "run_sync",
    "start_blocking_portal",
)
