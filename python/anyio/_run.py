"""anyio.run(): start an event loop of the chosen backend and run a function."""

from __future__ import annotations

import asyncio
import inspect
import sys
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from . import _cpp
from ._backend import current_async_library
from ._callables import callable_name

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

T = TypeVar("T")
PosArgsT = TypeVarTuple("PosArgsT")


def create_root_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], name: str | None
) -> asyncio.Task[T]:
    """Start `coro` as a task whose cancel scopes the C++ core delivers to
    without polling (the pytest runner uses this for tests and fixtures)."""
    return loop.create_task(_cpp.wrap_coro(coro), name=name)


def _asyncio_loop_factory(
    options: dict[str, Any],
) -> Callable[[], asyncio.AbstractEventLoop] | None:
    loop_factory = options.get("loop_factory")
    if loop_factory is None and options.get("use_uvloop"):
        import uvloop

        loop_factory = uvloop.new_event_loop

    return loop_factory  # type: ignore[no-any-return]


async def _named_main(
    name: str, func: Callable[..., Awaitable[T]], args: tuple[Any, ...]
) -> T:
    # asyncio.Runner names its task "Task-N"; anyio names it after the function.
    task = asyncio.current_task()
    if task is not None:
        task.set_name(name)
    # Called here, with the loop running: the function may need it (e.g.
    # asyncio.create_task), and may return any awaitable.
    return await func(*args)


async def _await_result(func: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
    # trio.run wants an async function; anyio.run takes any function returning
    # an awaitable.
    return await func(*args)


def _run_asyncio(
    func: Callable[..., Awaitable[T]], args: tuple[Any, ...], options: dict[str, Any]
) -> T:
    # Upstream ignores options the asyncio backend does not know.
    wrapped = _cpp.wrap_coro(_named_main(_cpp.task_name(func), func, args))
    debug = options.get("debug")
    loop_factory = _asyncio_loop_factory(options)
    result: T
    if sys.version_info >= (3, 11):
        with asyncio.Runner(debug=debug, loop_factory=loop_factory) as runner:
            loop = runner.get_loop()
            try:
                result = runner.run(wrapped)
            finally:
                runner.close()
                # The run is over: its idle worker threads leave now.
                _cpp.close_worker_pool(loop)
                del loop
    else:
        result = _run_asyncio_310(wrapped, debug, loop_factory)

    return result


def _run_asyncio_310(
    wrapped: Any,
    debug: bool | None,
    loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
) -> Any:
    # Python 3.10 has no asyncio.Runner: the same steps, spelled out.
    loop = loop_factory() if loop_factory else asyncio.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        if debug is not None:
            loop.set_debug(debug)
        return loop.run_until_complete(wrapped)
    finally:
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(
                    asyncio.gather(*pending, return_exceptions=True)
                )
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()
            _cpp.close_worker_pool(loop)


def _run_trio(
    func: Callable[..., Awaitable[T]], args: tuple[Any, ...], options: dict[str, Any]
) -> T:
    import trio

    if inspect.iscoroutinefunction(func):
        return trio.run(func, *args, **options)  # type: ignore[no-any-return]

    return trio.run(_await_result, func, args, **options)  # type: ignore[no-any-return]


def run(
    func: Callable[[Unpack[PosArgsT]], Awaitable[T]],
    *args: Unpack[PosArgsT],
    backend: str = "asyncio",
    backend_options: dict[str, Any] | None = None,
) -> T:
    """Run ``func(*args)`` on a new event loop of `backend` and return its result.

    :param backend: ``"asyncio"`` or ``"trio"``
    :param backend_options: for asyncio ``debug``, ``use_uvloop`` and
        ``loop_factory``; for Trio the keyword arguments of :func:`trio.run`
    :raises RuntimeError: if an event loop already runs in this thread
    :raises LookupError: for an unknown backend
    """
    running = current_async_library()
    if running is not None:
        raise RuntimeError(f"Already running {running} in this thread")

    options = dict(backend_options or {})
    if backend == "asyncio":
        return _run_asyncio(func, args, options)
    elif backend == "trio":
        try:
            import trio  # noqa: F401
        except ImportError as exc:
            raise LookupError(
                f"the {backend} backend needs the {backend} package: "
                f"pip install anyio[{backend}]"
            ) from exc

        return _run_trio(func, args, options)

    raise LookupError(f"No such backend: {backend}")


__all__ = ["run", "create_root_task", "callable_name"]
