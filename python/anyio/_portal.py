"""Blocking portals: let synchronous threads run code in an event loop.

A portal owns a task group in its event loop. Other threads hand it work
through the loop's token (a thread-safe "call this soon" on both backends) and
wait on a :class:`concurrent.futures.Future`; the loop thread never blocks on
them. Cancelling such a future cancels the task behind it.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Awaitable, Callable, Generator
from concurrent.futures import Future
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    contextmanager,
)
from contextvars import Context, copy_context
from dataclasses import dataclass, field
from inspect import isawaitable
from types import TracebackType
from typing import Any, Generic, TypeVar, cast, overload

from . import _threads_trio
from ._backend import get_cancelled_exc_class
from ._cancel import CancelScope
from ._exceptions import RunFinishedError
from ._sync import Event
from ._taskgroup import create_task_group
from ._threads import request_via_token
from .lowlevel import EventLoopToken, current_token

if sys.version_info >= (3, 11):
    from typing import Self, TypeVarTuple, Unpack
else:
    from typing_extensions import Self, TypeVarTuple, Unpack

T_Retval = TypeVar("T_Retval")
T_co = TypeVar("T_co", covariant=True)
PosArgsT = TypeVarTuple("PosArgsT")


def _future_class() -> type[Future[Any]]:
    # Looked up on anyio.from_thread at call time: that is where the public
    # name lives (and where tests substitute it).
    module = sys.modules.get("anyio.from_thread")
    return getattr(module, "Future", Future)  # type: ignore[no-any-return]


def post(
    token: EventLoopToken, func: Callable[[], object], context: Context | None = None
) -> None:
    """Schedule ``func()`` on the loop behind `token` without waiting.

    :raises RunFinishedError: if that event loop has finished
    """
    native: Any = token.native_token
    if getattr(token.backend_class, "name", None) == "trio":
        if context is None:
            _threads_trio.post(native, func)
        else:
            _threads_trio.post(native, context.run, func)
    else:
        try:
            native.call_soon_threadsafe(func, context=context)
        except RuntimeError as exc:  # the loop is closed
            raise RunFinishedError() from exc


class _PortalTaskStatus:
    """The ``task_status`` a portal passes to functions run by start_task()."""

    def __init__(self, future: Future[Any]):
        self._future = future

    def started(self, value: object = None) -> None:
        self._future.set_result(value)


class _BlockingAsyncContextManager(AbstractContextManager[T_co], Generic[T_co]):
    """An async context manager driven from a thread through a portal: one
    portal task enters it, waits for the thread's exit and leaves it."""

    _enter_future: Future[T_co]
    _exit_future: Future[bool | None]
    _exit_event: Event
    _exit_exc_info: tuple[
        type[BaseException] | None, BaseException | None, TracebackType | None
    ] = (
        None,
        None,
        None,
    )

    def __init__(self, async_cm: Any, portal: BlockingPortal):
        self._async_cm = async_cm
        self._portal = portal

    async def run_async_cm(self) -> bool | None:
        try:
            self._exit_event = Event()
            value = await self._async_cm.__aenter__()
        except BaseException as exc:
            self._enter_future.set_exception(exc)
            raise
        else:
            self._enter_future.set_result(value)

        try:
            # The thread's `with` block runs while we wait here.
            await self._exit_event.wait()
        finally:
            result = await self._async_cm.__aexit__(*self._exit_exc_info)

        return cast("bool | None", result)

    def __enter__(self) -> T_co:
        self._enter_future = Future()
        self._exit_future = self._portal.start_task_soon(self.run_async_cm)
        return self._enter_future.result()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool | None:
        self._exit_exc_info = exc_type, exc_val, exc_tb
        self._portal.call(self._exit_event.set)
        return self._exit_future.result()


class _AsyncCallState:
    """Shared between a call_async() caller and the portal task serving it."""

    def __init__(self, wake: Callable[[], None]):
        self._wake = wake
        self.scope: CancelScope | None = None
        self.cancel_requested = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.cancelled = False

    def request_cancel(self) -> None:  # runs in the portal's loop
        self.cancel_requested = True
        if self.scope is not None:
            self.scope.cancel("the caller of call_async() was cancelled")

    def finished(self) -> None:
        try:
            self._wake()
        except RunFinishedError:
            pass


class BlockingPortal:
    """An object that lets external threads run code in an event loop.

    Create it inside the event loop (``async with BlockingPortal() as portal``)
    and hand it to other threads; or use :func:`start_blocking_portal` to run
    one in an event loop of its own thread.
    """

    def __init__(self) -> None:
        self._token = current_token()
        self._loop_thread_id: int | None = threading.get_ident()
        self._running_thread_id: int | None = self._loop_thread_id
        self._stop_event = Event()
        self._task_group = create_task_group()
        self._cancelled_exc_class = get_cancelled_exc_class()

    async def __aenter__(self) -> Self:
        await self._task_group.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool:
        await self.stop()
        return bool(await self._task_group.__aexit__(exc_type, exc_val, exc_tb))

    def _check_running(self) -> None:
        if self._running_thread_id is None:
            raise RuntimeError("This portal is not running")

        if self._running_thread_id == threading.get_ident():
            raise RuntimeError(
                "This method cannot be called from the event loop thread"
            )

    async def sleep_until_stopped(self) -> None:
        """Sleep until :meth:`stop` is called."""
        await self._stop_event.wait()

    async def stop(self, cancel_remaining: bool = False) -> None:
        """Stop accepting new calls; optionally cancel the tasks still running.

        :param cancel_remaining: cancel every task the portal started, instead
            of letting them finish
        """
        self._running_thread_id = None
        self._stop_event.set()
        if cancel_remaining:
            self._task_group.cancel_scope.cancel("the blocking portal is shutting down")

    def _cancel_on_future(self, scope: CancelScope) -> Callable[[Future[Any]], None]:
        def callback(future: Future[Any]) -> None:
            if not future.cancelled():
                return

            # Future callbacks run in the thread that cancels; never block it.
            if threading.get_ident() == self._loop_thread_id:
                scope.cancel("the future was cancelled")
            else:
                try:
                    post(self._token, lambda: scope.cancel("the future was cancelled"))
                except RunFinishedError:
                    pass

        return callback

    async def _call_func(
        self,
        func: Callable[..., Awaitable[T_Retval] | T_Retval],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        future: Future[T_Retval],
    ) -> None:
        try:
            value = func(*args, **kwargs)
            if isawaitable(value):
                with CancelScope() as scope:
                    if future.cancelled():
                        scope.cancel("the future was cancelled")
                    else:
                        future.add_done_callback(self._cancel_on_future(scope))

                    value = await value
        except self._cancelled_exc_class:
            future.cancel()
            future.set_running_or_notify_cancel()
        except BaseException as exc:
            # RUNNING first: a future that is being completed cannot be
            # cancelled any more.
            if future.set_running_or_notify_cancel():
                future.set_exception(exc)

            if not isinstance(exc, Exception):
                raise
        else:
            if future.set_running_or_notify_cancel():
                future.set_result(cast(T_Retval, value))

    def _spawn_task_from_thread(
        self,
        func: Callable[..., Awaitable[T_Retval] | T_Retval],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        name: object,
        future: Future[T_Retval],
    ) -> None:
        def spawn() -> None:
            try:
                self._task_group.start_soon(
                    self._call_func, func, args, kwargs, future, name=name
                )
            except BaseException as exc:
                if future.set_running_or_notify_cancel():
                    future.set_exception(exc)

        # Wait until the task is spawned (not finished): once start_task_soon()
        # returns, the portal's task group counts it.
        try:
            request_via_token(self._token, False, spawn, ())
        except RunFinishedError:
            raise RuntimeError("This portal is not running") from None

    @overload
    def call(
        self,
        func: Callable[[Unpack[PosArgsT]], Awaitable[T_Retval]],
        *args: Unpack[PosArgsT],
    ) -> T_Retval: ...
    @overload
    def call(
        self, func: Callable[[Unpack[PosArgsT]], T_Retval], *args: Unpack[PosArgsT]
    ) -> T_Retval: ...
    def call(
        self,
        func: Callable[[Unpack[PosArgsT]], Awaitable[T_Retval] | T_Retval],
        *args: Unpack[PosArgsT],
    ) -> T_Retval:
        """Call a function (coroutine function or plain) in the event loop
        thread and wait for its result.

        :raises RuntimeError: if the portal is not running, or if called from
            the event loop thread
        """
        return cast(T_Retval, self.start_task_soon(func, *args).result())

    @overload
    async def call_async(
        self,
        func: Callable[[Unpack[PosArgsT]], Awaitable[T_Retval]],
        *args: Unpack[PosArgsT],
        abandon_on_cancel: bool = False,
    ) -> T_Retval: ...
    @overload
    async def call_async(
        self,
        func: Callable[[Unpack[PosArgsT]], T_Retval],
        *args: Unpack[PosArgsT],
        abandon_on_cancel: bool = False,
    ) -> T_Retval: ...
    async def call_async(
        self,
        func: Callable[[Unpack[PosArgsT]], Awaitable[T_Retval] | T_Retval],
        *args: Unpack[PosArgsT],
        abandon_on_cancel: bool = False,
    ) -> T_Retval:
        """Call a function in the portal's event loop from another event loop,
        without blocking this one.

        If the calling task is cancelled, the portal task is cancelled too;
        the caller then waits for it to finish (an exception from its cleanup
        is raised here) unless `abandon_on_cancel` is true.
        """
        self._check_running()
        caller_token = current_token()
        caller_cancelled = get_cancelled_exc_class()
        done = Event()
        state = _AsyncCallState(lambda: post(caller_token, done.set))

        async def serve() -> None:
            try:
                with CancelScope() as scope:
                    state.scope = scope
                    if state.cancel_requested:
                        scope.cancel("the caller of call_async() was cancelled")

                    value = func(*args)
                    if isawaitable(value):
                        value = await value

                state.value = value
                state.cancelled = scope.cancelled_caught
            except BaseException as exc:
                state.error = exc
                if not isinstance(exc, Exception):
                    raise
            finally:
                state.finished()

        def spawn() -> None:
            try:
                self._task_group.start_soon(serve)
            except BaseException as exc:
                state.error = exc
                state.finished()

        try:
            post(self._token, spawn, copy_context())
        except RunFinishedError:
            raise RuntimeError("This portal is not running") from None

        try:
            await done.wait()
        except caller_cancelled:
            try:
                post(self._token, state.request_cancel)
            except RunFinishedError:
                pass

            if not abandon_on_cancel:
                with CancelScope(shield=True):
                    await done.wait()

                if state.error is not None and not isinstance(
                    state.error, self._cancelled_exc_class
                ):
                    raise state.error from None

            raise

        if state.error is not None:
            raise state.error
        if state.cancelled:
            raise RuntimeError("the portal task was cancelled")
        return cast(T_Retval, state.value)

    @overload
    def start_task_soon(
        self,
        func: Callable[[Unpack[PosArgsT]], Awaitable[T_Retval]],
        *args: Unpack[PosArgsT],
        name: object = None,
    ) -> Future[T_Retval]: ...
    @overload
    def start_task_soon(
        self,
        func: Callable[[Unpack[PosArgsT]], T_Retval],
        *args: Unpack[PosArgsT],
        name: object = None,
    ) -> Future[T_Retval]: ...
    def start_task_soon(
        self,
        func: Callable[[Unpack[PosArgsT]], Awaitable[T_Retval] | T_Retval],
        *args: Unpack[PosArgsT],
        name: object = None,
    ) -> Future[T_Retval]:
        """Start a task in the portal's task group.

        :return: a future that resolves to the task's return value; cancelling
            it cancels the task
        :raises RuntimeError: if the portal is not running, or if called from
            the event loop thread
        """
        self._check_running()
        future: Future[T_Retval] = _future_class()()
        self._spawn_task_from_thread(func, args, {}, name, future)
        return future

    def start_task(
        self,
        func: Callable[..., Awaitable[T_Retval]],
        *args: object,
        name: object = None,
    ) -> tuple[Future[T_Retval], Any]:
        """Start a task that signals readiness with ``task_status.started()``,
        as :meth:`TaskGroup.start` does, and wait until it does.

        :return: the task's future and the value it passed to ``started()``
        :raises RuntimeError: if the task ends without calling ``started()``
        """

        def task_done(future: Future[T_Retval]) -> None:
            if task_status_future.done():
                return
            if future.cancelled():
                task_status_future.cancel()
            elif future.exception() is not None:
                task_status_future.set_exception(
                    cast(BaseException, future.exception())
                )
            else:
                task_status_future.set_exception(
                    RuntimeError("Task exited without calling task_status.started()")
                )

        self._check_running()
        task_status_future: Future[Any] = Future()
        future: Future[T_Retval] = _future_class()()
        future.add_done_callback(task_done)
        kwargs = {"task_status": _PortalTaskStatus(task_status_future)}
        self._spawn_task_from_thread(func, args, kwargs, name, future)
        return future, task_status_future.result()

    def wrap_async_context_manager(
        self, cm: AbstractAsyncContextManager[T_co]
    ) -> AbstractContextManager[T_co]:
        """Wrap an async context manager as a synchronous one whose enter and
        exit run in the portal's event loop (in one task)."""
        return _BlockingAsyncContextManager(cm, self)


@contextmanager
def start_blocking_portal(
    backend: str = "asyncio",
    backend_options: dict[str, Any] | None = None,
    *,
    name: str | None = None,
) -> Generator[BlockingPortal, Any, None]:
    """Start an event loop in a new thread and run a blocking portal in it.

    The loop stops when the context manager exits (tasks still running are
    cancelled if the block raised).

    :param backend: name of the backend
    :param backend_options: backend options
    :param name: name of the thread (default ``"<backend>-portal-<id>"``)
    """
    from ._run import run

    async def run_portal() -> None:
        async with BlockingPortal() as portal_:
            if name is None:
                threading.current_thread().name = f"{backend}-portal-{id(portal_):x}"

            future.set_result(portal_)
            await portal_.sleep_until_stopped()

    def run_blocking_portal() -> None:
        if future.set_running_or_notify_cancel():
            try:
                run(run_portal, backend=backend, backend_options=backend_options)
            except BaseException as exc:
                if not future.done():
                    future.set_exception(exc)

    future: Future[BlockingPortal] = Future()
    thread = threading.Thread(target=run_blocking_portal, daemon=True, name=name)
    thread.start()
    try:
        cancel_remaining_tasks = False
        portal = future.result()
        try:
            yield portal
        except BaseException:
            cancel_remaining_tasks = True
            raise
        finally:
            try:
                portal.call(portal.stop, cancel_remaining_tasks)  # type: ignore[arg-type]
            except RuntimeError:
                pass
    finally:
        thread.join()


@dataclass
class BlockingPortalProvider:
    """A context manager that shares one blocking portal (started on demand)
    among every thread that enters it, until the last one leaves.

    :param backend: name of the backend
    :param backend_options: backend options
    """

    backend: str = "asyncio"
    backend_options: dict[str, Any] | None = None
    _lock: threading.Lock = field(init=False, default_factory=threading.Lock)
    _leases: int = field(init=False, default=0)
    _portal: BlockingPortal = field(init=False)
    _portal_cm: AbstractContextManager[BlockingPortal] | None = field(
        init=False, default=None
    )

    def __enter__(self) -> BlockingPortal:
        with self._lock:
            if self._portal_cm is None:
                portal_cm = start_blocking_portal(self.backend, self.backend_options)
                self._portal = portal_cm.__enter__()
                self._portal_cm = portal_cm

            self._leases += 1
            return self._portal

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        portal_cm: AbstractContextManager[BlockingPortal] | None = None
        with self._lock:
            self._leases -= 1
            if not self._leases:
                portal_cm = self._portal_cm
                self._portal_cm = None

        if portal_cm is not None:
            portal_cm.__exit__(exc_type, exc_val, exc_tb)


__all__ = ["BlockingPortal", "BlockingPortalProvider", "start_blocking_portal"]
