"""Run synchronous code in worker threads without blocking the event loop."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar
from warnings import warn

from . import _cpp, _threads, _threads_trio

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

if TYPE_CHECKING:
    from ._sync import CapacityLimiter

T_Retval = TypeVar("T_Retval")
PosArgsT = TypeVarTuple("PosArgsT")

_thread_call = _cpp.thread_call


async def run_sync(
    func: Callable[[Unpack[PosArgsT]], T_Retval],
    *args: Unpack[PosArgsT],
    abandon_on_cancel: bool = False,
    cancellable: bool | None = None,
    limiter: CapacityLimiter | None = None,
) -> T_Retval:
    """Call ``func(*args)`` in a worker thread and return its result.

    The function runs in a copy of the caller's context (context variables set
    in the thread do not come back). While the thread runs, the caller is
    shielded from cancellation unless `abandon_on_cancel` is true, in which
    case a cancelled caller returns at once and the thread's eventual outcome
    is dropped.

    :param abandon_on_cancel: let cancellation end the wait (the thread keeps
        running to completion regardless)
    :param cancellable: deprecated alias of `abandon_on_cancel`
    :param limiter: limits how many threads run at once; the default one has
        40 tokens per event loop (see :func:`current_default_thread_limiter`)
    :return: what ``func`` returned (its exception is raised here)
    """
    if cancellable is not None:
        abandon_on_cancel = cancellable
        warn(
            "The `cancellable=` keyword argument to `anyio.to_thread.run_sync` is "
            "deprecated since AnyIO 4.1.0; use `abandon_on_cancel=` instead",
            DeprecationWarning,
            stacklevel=2,
        )

    if limiter is not None and not hasattr(limiter, "acquire_on_behalf_of_nowait"):
        if _cpp.running_loop() is not None:
            # asyncio, as upstream: any async context manager limits the call
            # (a Lock, a Semaphore), entered by the calling task.
            async with limiter:
                return await _thread_call(func, args, abandon_on_cancel, _UNLIMITED)  # type: ignore[no-any-return]

    return await _thread_call(func, args, abandon_on_cancel, limiter)  # type: ignore[no-any-return]


class _Unlimited:
    """The limiter of a call already limited by an async context manager."""

    def acquire_on_behalf_of_nowait(self, borrower: object) -> None:
        pass

    def release_on_behalf_of(self, borrower: object) -> None:
        pass


_UNLIMITED = _Unlimited()


def current_default_thread_limiter() -> CapacityLimiter:
    """The capacity limiter :func:`run_sync` uses when given none.

    There is one per event loop; it starts with 40 tokens.
    """
    if _cpp.running_loop() is not None:
        pool: Any = _cpp.current_worker_pool()
    else:
        from ._backend import current_backend

        current_backend()  # raises NoEventLoopError outside any event loop
        pool = _threads_trio.current_pool()

    if pool.default_limiter is None:
        pool.default_limiter = _threads.new_default_limiter()

    return pool.default_limiter  # type: ignore[no-any-return]


__all__ = ("current_default_thread_limiter", "run_sync")
