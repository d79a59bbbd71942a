"""The task group and task status interfaces."""

from __future__ import annotations

import sys
from abc import ABCMeta, abstractmethod
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import Context
from types import TracebackType
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar, overload

if sys.version_info >= (3, 11):
    from typing import Never, TypeVarTuple, Unpack
else:
    from typing_extensions import Never, TypeVarTuple, Unpack

if TYPE_CHECKING:
    from .._cancel import CancelScope
    from .._taskgroup import TaskHandle

T_contra = TypeVar("T_contra", contravariant=True)
T_Retval = TypeVar("T_Retval")
PosArgsT = TypeVarTuple("PosArgsT")


class TaskStatus(Protocol[T_contra]):
    """Handed to a task started with :meth:`TaskGroup.start`; the task calls
    :meth:`started` once it is ready, which lets ``start()`` return."""

    @overload
    def started(self: TaskStatus[None]) -> None: ...

    @overload
    def started(self, value: T_contra) -> None: ...

    def started(self, value: T_contra | None = None) -> None:
        """Signal that the task has started, passing `value` to ``start()``."""


class TaskGroup(metaclass=ABCMeta):
    """Groups tasks together: the group's ``async with`` block does not end until
    every task in it has finished, and an error in one task cancels the others.

    :ivar cancel_scope: the cancel scope covering the host and every child task
    """

    cancel_scope: CancelScope

    @abstractmethod
    def start_soon(
        self,
        func: Callable[[Unpack[PosArgsT]], Coroutine[Any, Any, T_Retval]],
        *args: Unpack[PosArgsT],
        name: object = None,
    ) -> TaskHandle[T_Retval, Never]:
        """Start ``func(*args)`` as a new task in this group."""

    @overload
    async def start(
        self,
        func: Callable[..., Coroutine[Any, Any, T_Retval]],
        *args: object,
        name: object = None,
        return_handle: Literal[False] = False,
    ) -> Any: ...
    @overload
    async def start(
        self,
        func: Callable[..., Coroutine[Any, Any, T_Retval]],
        *args: object,
        name: object = None,
        return_handle: Literal[True],
    ) -> TaskHandle[T_Retval, Any]: ...
    @abstractmethod
    async def start(
        self,
        func: Callable[..., Awaitable[Any]],
        *args: object,
        name: object = None,
        return_handle: bool = False,
    ) -> Any:
        """Start a task and wait until it calls ``task_status.started()``."""

    @abstractmethod
    def create_task(
        self,
        coro: Coroutine[Any, Any, T_Retval],
        *,
        name: object = None,
        context: Context | None = None,
    ) -> TaskHandle[T_Retval, Never]:
        """Run an existing coroutine object as a task in this group."""

    def cancel(self, reason: str | None = None) -> None:
        """Cancel the group's scope: every task in it, and the host's block."""
        self.cancel_scope.cancel(reason)

    @abstractmethod
    async def __aenter__(self) -> TaskGroup:
        """Enter the task group context and allow starting new tasks."""

    @abstractmethod
    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> bool:
        """Wait for every task to finish, then propagate their errors."""
