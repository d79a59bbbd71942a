"""Shortcuts for running several awaitables concurrently in a task group:
:func:`gather`, :func:`as_completed` and :func:`amap`."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine, Iterable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ._exceptions import BrokenResourceError
from ._taskgroup import create_task_group
from .streams.memory import create_memory_object_stream

if TYPE_CHECKING:
    from ._taskgroup import TaskHandle
    from .abc import TaskGroup
    from .streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

T = TypeVar("T")
R = TypeVar("R")
T1 = TypeVar("T1")
T2 = TypeVar("T2")
T3 = TypeVar("T3")
T4 = TypeVar("T4")
T5 = TypeVar("T5")
T6 = TypeVar("T6")

__all__ = ["amap", "as_completed", "gather"]


def _awaitable_name(awaitable: object) -> str:
    """A task name for ``awaitable``: what a coroutine was created from, else
    the awaitable's type."""
    if inspect.iscoroutine(awaitable):
        frame = awaitable.cr_frame
        module = frame.f_globals.get("__name__") if frame is not None else None
        qualname = awaitable.__qualname__
    else:
        module = getattr(type(awaitable), "__module__", None)
        qualname = type(awaitable).__qualname__

    return f"{module}.{qualname}" if isinstance(module, str) else qualname


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


def _spawn(tg: TaskGroup, awaitable: Awaitable[T]) -> TaskHandle[T]:
    if inspect.iscoroutine(awaitable):
        return tg.create_task(awaitable)  # type: ignore[attr-defined, no-any-return]

    # Tasks run coroutines only; other awaitables get a coroutine around them.
    return tg.create_task(  # type: ignore[attr-defined, no-any-return]
        _await(awaitable), name=_awaitable_name(awaitable)
    )


@overload
async def gather(
    c1: Coroutine[Any, Any, T1], c2: Coroutine[Any, Any, T2], /
) -> tuple[T1, T2]: ...
@overload
async def gather(
    c1: Coroutine[Any, Any, T1],
    c2: Coroutine[Any, Any, T2],
    c3: Coroutine[Any, Any, T3],
    /,
) -> tuple[T1, T2, T3]: ...
@overload
async def gather(
    c1: Coroutine[Any, Any, T1],
    c2: Coroutine[Any, Any, T2],
    c3: Coroutine[Any, Any, T3],
    c4: Coroutine[Any, Any, T4],
    /,
) -> tuple[T1, T2, T3, T4]: ...
@overload
async def gather(
    c1: Coroutine[Any, Any, T1],
    c2: Coroutine[Any, Any, T2],
    c3: Coroutine[Any, Any, T3],
    c4: Coroutine[Any, Any, T4],
    c5: Coroutine[Any, Any, T5],
    /,
) -> tuple[T1, T2, T3, T4, T5]: ...
@overload
async def gather(
    c1: Coroutine[Any, Any, T1],
    c2: Coroutine[Any, Any, T2],
    c3: Coroutine[Any, Any, T3],
    c4: Coroutine[Any, Any, T4],
    c5: Coroutine[Any, Any, T5],
    c6: Coroutine[Any, Any, T6],
    /,
) -> tuple[T1, T2, T3, T4, T5, T6]: ...
@overload
async def gather(*coros: Coroutine[Any, Any, T]) -> tuple[T, ...]: ...
async def gather(*coros: Coroutine[Any, Any, Any]) -> tuple[Any, ...]:
    """Run the coroutines concurrently and return their results in argument order.

    Failures propagate as from any task group: the other coroutines are
    cancelled and the errors are raised in an :exc:`ExceptionGroup`.
    """
    async with create_task_group() as tg:
        handles = [_spawn(tg, coro) for coro in coros]

    return tuple(handle.return_value for handle in handles)


@asynccontextmanager
async def as_completed(
    *awaitables: Awaitable[R],
) -> AsyncGenerator[MemoryObjectReceiveStream[TaskHandle[R]]]:
    """Run the awaitables concurrently; yield a stream of their task handles in
    the order the tasks finish.

    Use as ``async with as_completed(...) as stream: async for handle in
    stream: ...``; each handle is finished when received (read its
    ``return_value``). Leaving the block cancels the tasks that are still
    running; a failing task makes the block raise an :exc:`ExceptionGroup`.

    :raises ValueError: if no awaitables are given
    """
    if not awaitables:
        raise ValueError("as_completed() requires at least one awaitable")

    send: MemoryObjectSendStream[TaskHandle[R]]
    receive: MemoryObjectReceiveStream[TaskHandle[R]]
    send, receive = create_memory_object_stream(len(awaitables))
    handles: list[TaskHandle[R]] = []

    async def runner(
        index: int,
        awaitable: Awaitable[R],
        sender: MemoryObjectSendStream[TaskHandle[R]],
    ) -> R:
        with sender:
            try:
                return await awaitable
            finally:
                # Nothing awaits after this, so the task has finished by the
                # time the consumer (woken by this send) looks at the handle.
                try:
                    sender.send_nowait(handles[index])
                except BrokenResourceError:
                    pass

    with receive:
        async with create_task_group() as tg:
            with send:
                for index, awaitable in enumerate(awaitables):
                    # Task groups start tasks on a later loop step, so the
                    # handle is in the list before the runner reads it.
                    handles.append(
                        tg.create_task(  # type: ignore[attr-defined]
                            runner(index, awaitable, send.clone()),
                            name=_awaitable_name(awaitable),
                        )
                    )

            try:
                yield receive
            finally:
                tg.cancel_scope.cancel()


async def amap(
    func: Callable[[T], Coroutine[Any, Any, R]], args: Iterable[T]
) -> list[R]:
    """Call ``func`` on each argument concurrently, one task per argument, and
    return the results in argument order."""
    async with create_task_group() as tg:
        handles: list[TaskHandle[R]] = [tg.start_soon(func, arg) for arg in args]  # type: ignore[func-returns-value]

    return [handle.return_value for handle in handles]
