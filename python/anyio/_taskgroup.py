"""Task groups and task handles.

On asyncio, entering and leaving a group, spawning and the completion
bookkeeping are C++ (``_cpp.TaskGroupBase``, ``_cpp.TaskHandleBase``); this
module has the rest of ``__aexit__``: waiting for the children and turning their
errors into an exception group. On Trio a task group wraps a Trio nursery.
"""

from __future__ import annotations

import asyncio
import enum
import sys
import weakref
from asyncio import CancelledError, get_running_loop
from collections.abc import Awaitable, Callable, Coroutine, Generator
from contextvars import Context
from types import TracebackType
from typing import Any, Generic, TypeVar, cast

from . import _cpp
from ._cancel import CancelScope
from ._exceptions import TaskCancelled, TaskFailed, TaskNotFinished
from ._glue import check_coroutine
from .abc._tasks import TaskGroup as _AbstractTaskGroup
from .abc._tasks import TaskStatus

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if sys.version_info >= (3, 13):
    from typing import Never
    from typing import TypeVar as _DefaultTypeVar
elif sys.version_info >= (3, 11):
    from typing import Never

    from typing_extensions import TypeVar as _DefaultTypeVar
else:
    from typing_extensions import Never
    from typing_extensions import TypeVar as _DefaultTypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)
T_start_co = _DefaultTypeVar("T_start_co", covariant=True, default=Never)

_GROUP_MESSAGE = "unhandled errors in a TaskGroup"


def _task_name(func: Any, name: object) -> str:
    # The same naming function as start_soon's on asyncio (in C++), so a task
    # is named alike on every backend and by start() and start_soon().
    return _cpp.task_name(func) if name is None else str(name)


class TaskHandle(_cpp.TaskHandleBase, Generic[T_co, T_start_co]):
    """A task started in a task group: its status, its outcome, and a way to
    cancel it alone. Awaiting the handle waits for the task and returns its
    return value (or raises :exc:`TaskFailed` / :exc:`TaskCancelled`).

    ``TaskHandle(task, coro, name)``: ``task`` is the asyncio.Task (None on
    Trio). The storage is in the C base, which fills it in for ``start_soon``."""

    class Status(enum.Enum):
        PENDING = 1
        FINISHED = 2
        CANCELLING = 3
        CANCELLED = 4
        FAILED = 5

    __slots__ = ()

    @property
    def coro(self) -> Coroutine[Any, Any, T_co]:
        """The coroutine the task runs."""
        return self._coro

    @property
    def name(self) -> str:
        """The task's name."""
        return self._name

    def _result(self) -> tuple[Any, BaseException | None, bool] | None:
        task = self._task
        if task is None:
            return self._outcome

        if not task.done():
            return None

        if task.cancelled():
            try:
                task.result()
            except CancelledError as cancelled:
                return None, cancelled, True

        error = task.exception()
        if error is not None:
            return None, error, isinstance(error, CancelledError)

        return task.result(), None, False

    @property
    def status(self) -> TaskHandle.Status:
        """Where the task is in its life."""
        outcome = self._result()
        if outcome is None:
            return (
                self.Status.CANCELLING
                if self._cancel_requested
                else self.Status.PENDING
            )

        _, exc, cancelled = outcome
        if cancelled:
            return self.Status.CANCELLED
        if exc is not None:
            return self.Status.FAILED

        return self.Status.FINISHED

    @property
    def return_value(self) -> T_co:
        """The task's return value.

        :raises TaskNotFinished: if it is still running
        :raises TaskFailed: if it raised (the exception is the ``__cause__``)
        :raises TaskCancelled: if it was cancelled
        """
        outcome = self._result()
        if outcome is None:
            if self._cancel_requested:
                raise TaskCancelled("the task was cancelled")
            raise TaskNotFinished("the task has not finished yet")

        value, exc, cancelled = outcome
        if cancelled:
            raise TaskCancelled("the task was cancelled") from exc
        if exc is not None:
            raise TaskFailed("the task raised an exception") from exc

        return value  # type: ignore[no-any-return]

    @property
    def exception(self) -> BaseException | None:
        """The exception the task raised, or None if it returned normally.

        :raises TaskNotFinished: if it is still running
        :raises TaskCancelled: if it was cancelled
        """
        outcome = self._result()
        if outcome is None:
            if self._cancel_requested:
                raise TaskCancelled("the task was cancelled")
            raise TaskNotFinished("the task has not finished yet")

        _, exc, cancelled = outcome
        if cancelled:
            raise TaskCancelled("the task was cancelled") from exc

        return exc

    @property
    def start_value(self) -> T_start_co:
        """The value the task passed to ``task_status.started()``."""
        try:
            return cast(T_start_co, self._start_value)
        except AttributeError:
            raise RuntimeError(
                "the task was not started with TaskGroup.start()"
            ) from None

    def cancel(self, reason: str | None = None) -> None:
        """Cancel this task alone (no effect once it has finished)."""
        if self._result() is not None:
            return

        self._cancel_requested = True
        if self._task is not None:
            _cpp.cancel_task(self._task, reason)
        elif self._trio_scope is not None:
            self._trio_scope.cancel(reason)

    async def wait(self) -> None:
        """Wait until the task has finished (without affecting it)."""
        if self._task is not None:
            if not self._task.done():
                loop = get_running_loop()
                waiter = loop.create_future()

                def wake(_: Any) -> None:
                    if not waiter.done():
                        waiter.set_result(None)

                self._task.add_done_callback(wake)
                try:
                    await waiter
                finally:
                    self._task.remove_done_callback(wake)
            else:
                await _cpp.checkpoint()
        elif self._outcome is not None:
            await _cpp.checkpoint()
        else:
            # Made on demand: most handles are never waited on.
            if self._trio_done is None:
                import trio

                self._trio_done = trio.Event()
            await self._trio_done.wait()

    def __await__(self) -> Generator[Any, Any, T_co]:
        yield from self.wait().__await__()
        return self.return_value

    def __repr__(self) -> str:
        return (
            f"<TaskHandle {self.status.name.lower()} name={self._name!r} "
            f"coro={self._coro!r}>"
        )


class _AsyncioTaskStatus(TaskStatus[Any]):
    """Until ``started()``, a task from ``start()`` belongs to the caller: it
    hangs below the caller's scope. ``started()`` moves it into the group."""

    __slots__ = ("_future", "_task", "_group")

    def __init__(self, future: Any, group: TaskGroup) -> None:
        self._future = future
        self._group = group
        self._task: Any = None

    def started(self, value: Any = None) -> None:
        if self._future.done():
            # A start() whose caller was cancelled no longer waits for this.
            if self._future.cancelled():
                return
            raise RuntimeError("called 'started' twice on the same task status")

        self._future.set_result(value)
        if self._task is not None:
            _cpp.reparent_task(
                self._task, self._group.cancel_scope, self._group._host_id
            )


class _IgnoredTaskStatus(TaskStatus[Any]):
    def started(self, value: Any = None) -> None:
        pass


#: A task status for tasks that may be started with ``start()`` or ``start_soon()``.
TASK_STATUS_IGNORED: TaskStatus[Any] = _IgnoredTaskStatus()


def _is_cancellation(exc: BaseException) -> bool:
    return isinstance(exc, CancelledError)


class TaskGroup(_cpp.TaskGroupBase, _AbstractTaskGroup):
    """A group of tasks (see :func:`create_task_group`).

    The C base class enters and leaves the group, and spawns with
    ``start_soon``; what is here is the rest: waiting for children and raising
    their errors on asyncio, ``start()``/``create_task()``, and Trio."""

    # --- leaving (asyncio) ------------------------------------------------------

    async def _asyncio_exit(
        self,
        exc_val: BaseException | None,
        cancelled_while_waiting: BaseException | None = None,
        checkpointed: bool = False,
    ) -> bool:
        """The rest of ``__aexit__`` once the C base found work to do: children
        still running, errors to raise, or an exception leaving the body."""
        if exc_val is not None:
            self.cancel_scope.cancel()
            if not _is_cancellation(exc_val):
                self._exceptions.append(exc_val)

        waited = False
        if not checkpointed and not self._pending:
            # Leaving a task group is a scheduling point even with no children.
            try:
                await _cpp.cancel_shielded_checkpoint()
            except CancelledError as exc:
                cancelled_while_waiting = exc  # a native task.cancel() of the host

        if self._pending:
            waited = True
            loop = get_running_loop()
            # The host waits for its children whatever happens to it; the scope
            # tree already carries any cancellation to the children.
            _cpp.set_shielded_yield(True)
            try:
                while self._pending:
                    self._waiter = waiter = loop.create_future()
                    try:
                        await waiter
                    except CancelledError as exc:
                        # A native cancellation (task.cancel()) of the host.
                        self.cancel_scope.cancel()
                        cancelled_while_waiting = exc
            finally:
                _cpp.set_shielded_yield(False)
                self._waiter = None

        self._active = False
        exceptions = self._exceptions
        if exceptions:
            group = BaseExceptionGroup(_GROUP_MESSAGE, list(exceptions))
            exceptions.clear()
            self.cancel_scope.__exit__(type(group), group, group.__traceback__)
            try:
                raise group from None
            finally:
                del group

        outcome = exc_val if exc_val is not None else cancelled_while_waiting
        if outcome is None and waited:
            origin = _cpp.current_cancel_origin()
            if origin is not None:
                # Cancelled while waiting for the children: the wait raises, as
                # upstream's does on asyncio. The group's own scope swallows it
                # unless a cancelled scope outside reaches through, which then
                # sees it. (Trio raises nothing here, and nor does _trio_exit.)
                outcome = _cpp.make_cancelled_error(origin)

        if self.cancel_scope.__exit__(
            type(outcome) if outcome else None,
            outcome,
            outcome.__traceback__ if outcome else None,
        ):
            return True

        if outcome is not None and outcome is not exc_val:
            raise outcome

        return False

    # --- spawning ---------------------------------------------------------------

    def _trio_start_soon(
        self, func: Callable[..., Awaitable[Any]], args: tuple[Any, ...], name: object
    ) -> TaskHandle[Any]:
        task_name = _task_name(func, name)
        coro = func(*args)
        check_coroutine(func, coro)
        return self._spawn(cast("Coroutine[Any, Any, Any]", coro), task_name, None)

    def create_task(
        self,
        coro: Coroutine[Any, Any, T],
        *,
        name: object = None,
        context: Context | None = None,
    ) -> TaskHandle[T, Never]:
        if not isinstance(coro, Coroutine):
            raise TypeError(f"expected a coroutine, got {coro!r}")

        task_name = str(name) if name is not None else _coro_name(coro)
        if context is not None:
            return self._spawn(coro, task_name, None, context)

        return self._spawn(coro, task_name, None)

    def _spawn(
        self,
        coro: Coroutine[Any, Any, Any],
        name: str,
        start_future: Any,
        context: Context | None = None,
    ) -> TaskHandle[Any]:
        if self._nursery is None:
            if not self._active:
                coro.close()
                raise RuntimeError(
                    "This task group is not active; no new tasks can be started."
                )
            if context is not None:
                task = context.run(self._spawn_raw, coro, name, start_future)
            else:
                task = self._spawn_raw(coro, name, start_future)
            return TaskHandle(task, coro, name)

        handle: TaskHandle[Any] = TaskHandle(None, coro, name)
        if context is not None:
            # Trio copies the spawner's context: spawn from inside the given one.
            context.run(self._trio_spawn, handle, coro, name)
        else:
            self._trio_spawn(handle, coro, name)
        return handle

    async def start(
        self,
        func: Callable[..., Awaitable[Any]],
        *args: object,
        name: object = None,
        return_handle: bool = False,
    ) -> Any:
        if self._nursery is not None:
            return await self._trio_start(func, args, name, return_handle)

        if not self._active:
            raise RuntimeError(
                "This task group is not active; no new tasks can be started."
            )

        task_name = _task_name(func, name)
        future = get_running_loop().create_future()
        status = _AsyncioTaskStatus(future, self)
        coro = cast("Coroutine[Any, Any, Any]", func(*args, task_status=status))
        check_coroutine(func, coro)
        caller = asyncio.current_task()
        task = self._spawn_raw(
            coro, task_name, future, _cpp.current_scope(), id(caller)
        )
        status._task = task
        handle: TaskHandle[Any] = TaskHandle(task, coro, task_name)
        try:
            value = await future
        except CancelledError:
            # The caller was cancelled before the child signalled readiness:
            # the child belongs to the caller until then, so it goes too, and
            # the caller returns only once it is gone.
            handle.cancel()
            with CancelScope(shield=True):
                await handle.wait()
            raise

        handle._start_value = value
        return handle if return_handle else value

    # --- Trio -------------------------------------------------------------------

    async def _trio_aenter(self) -> TaskGroup:
        # Trio is running, so it is imported: skip the import machinery on
        # this path, taken for every task group.
        self._nursery_cm = manager = sys.modules["trio"].open_nursery()
        self._nursery = nursery = await manager.__aenter__()
        self.cancel_scope._trio_scope = nursery.cancel_scope
        return self

    async def _trio_exit(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool:
        replacement: BaseException | None = None
        try:
            return bool(await self._nursery_cm.__aexit__(exc_type, exc_val, exc_tb))
        except BaseExceptionGroup as group:
            replacement = _translate_trio_group(group)
            if replacement is None:
                raise
        finally:
            # The nursery keeps its collected exceptions: let go of it.
            self._nursery = self._nursery_cm = None
            del exc_val, exc_tb

        # Raised outside the except block, and dropped from this frame, so that
        # no traceback frame keeps the exceptions alive (reference cycles).
        try:
            raise replacement from None
        finally:
            del replacement

    def _trio_spawn(
        self, handle: TaskHandle[Any], coro: Coroutine[Any, Any, Any], name: str
    ) -> None:
        import trio

        handle._trio_scope = trio.CancelScope()
        try:
            self._nursery.start_soon(_run_trio_child, handle, coro, name=name)
        except BaseException:
            coro.close()  # made by the caller, refused by Trio: never to run
            raise

    async def _trio_start(
        self,
        func: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        name: object,
        return_handle: bool,
    ) -> Any:
        import trio

        task_name = _task_name(func, name)
        status = _TrioTaskStatus()
        # Called here, in the caller, so that errors raised while creating the
        # coroutine (or by a synchronous wrapper) reach the caller directly.
        coro = cast("Coroutine[Any, Any, Any]", func(*args, task_status=status))
        check_coroutine(func, coro)
        handle: TaskHandle[Any] = TaskHandle(None, coro, task_name)
        handle._trio_scope = trio.CancelScope()

        async def child(*, task_status: Any) -> Any:
            status._attach(task_status)
            return await _run_trio_child(handle, coro)

        try:
            value = await self._nursery.start(child, name=handle.name)
        except BaseException:
            coro.close()
            raise
        handle._start_value = value
        return handle if return_handle else value


class _TrioTaskStatus(TaskStatus[Any]):
    """Collects a ``started()`` made before Trio's own task status exists (the
    coroutine function is called in the caller), then forwards to it."""

    __slots__ = ("_trio_status", "_pending")

    def __init__(self) -> None:
        self._trio_status: Any = None
        self._pending: list[Any] = []

    def _attach(self, trio_status: Any) -> None:
        self._trio_status = trio_status
        if self._pending:
            trio_status.started(self._pending[0])

    def started(self, value: Any = None) -> None:
        if self._trio_status is not None:
            try:
                self._trio_status.started(value)
            except RuntimeError:
                raise RuntimeError(
                    "called 'started' twice on the same task status"
                ) from None
        elif self._pending:
            raise RuntimeError("called 'started' twice on the same task status")
        else:
            self._pending.append(value)


def _translate_trio_group(
    group: BaseExceptionGroup[BaseException],
) -> BaseException | None:
    """What a task group raises for a nursery's exception group: a lone
    cancellation for the scope above when nothing else failed; else anyio's
    group of the real errors (Trio's Cancelled is noise once something failed).
    None means the group is raised as it is."""
    import trio

    cancelled, rest = group.split(trio.Cancelled)
    if rest is None:
        first: BaseException | None = cancelled
        while isinstance(first, BaseExceptionGroup):
            first = cast(BaseException, first.exceptions[0])
        return first

    return BaseExceptionGroup(_GROUP_MESSAGE, list(rest.exceptions))


async def _run_trio_child(
    handle: TaskHandle[Any], coro: Coroutine[Any, Any, Any]
) -> Any:
    import trio

    # The frame holds the handle only weakly: an exception's traceback keeps
    # this frame alive, and the handle keeps the exception (reference cycle).
    scope = handle._trio_scope
    handle_ref = weakref.ref(handle)
    del handle

    def record(outcome: tuple[Any, BaseException | None, bool]) -> None:
        target = handle_ref()
        if target is not None and target._outcome is None:
            target._outcome = outcome

    try:
        with scope:
            try:
                value = await coro
            except trio.Cancelled as exc:
                record((None, exc, True))
                raise
            except BaseException as exc:
                record((None, exc, False))
                raise
            record((value, None, False))
            return value
    finally:
        record((None, None, True))
        target = handle_ref()
        if target is not None and target._trio_done is not None:
            target._trio_done.set()
        del target


def _coro_name(coro: Any) -> str:
    code = getattr(coro, "cr_code", None)
    qualname = getattr(coro, "__qualname__", None) or getattr(
        code, "co_name", repr(coro)
    )
    frame = getattr(coro, "cr_frame", None)
    module = frame.f_globals.get("__name__") if frame is not None else None
    return f"{module}.{qualname}" if module else str(qualname)


_cpp.register_hooks(task_handle_class=TaskHandle)


def create_task_group() -> _AbstractTaskGroup:
    """Create a task group: ``async with create_task_group() as tg: ...``."""
    return TaskGroup()
