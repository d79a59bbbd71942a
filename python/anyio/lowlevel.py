"""Low-level primitives: checkpoints, event loop tokens and run variables."""

from __future__ import annotations

import enum
from collections.abc import Coroutine
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar, final, overload
from weakref import WeakKeyDictionary

from . import _cpp, _task_tree
from ._backend import current_backend
from ._cpp import running_loop as _get_running_loop
from ._task_tree import (
    Deadlock,
    GroupNode,
    ScopeInfo,
    TaskNode,
    TaskTree,
    WaitInfo,
    dump_on_signal,
    format_task_tree,
    get_task_tree,
    print_task_tree,
)

T = TypeVar("T")
D = TypeVar("D")

_checkpoint = _cpp.checkpoint
_checkpoint_if_cancelled = _cpp.checkpoint_if_cancelled
_cancel_shielded_checkpoint = _cpp.cancel_shielded_checkpoint


def checkpoint() -> Coroutine[Any, Any, None]:
    """Check for cancellation and let other tasks run (exactly one loop step).

    Equivalent to ``await checkpoint_if_cancelled()`` followed by
    ``await cancel_shielded_checkpoint()``. The returned awaitable is a C
    object: no coroutine is created per call.
    """
    return _checkpoint()


def checkpoint_if_cancelled() -> Coroutine[Any, Any, None]:
    """Raise the cancellation exception if the current task is cancelled;
    never lets other tasks run."""
    return _checkpoint_if_cancelled()


def cancel_shielded_checkpoint() -> Coroutine[Any, Any, None]:
    """Let other tasks run (one loop step) without checking for cancellation."""
    return _cancel_shielded_checkpoint()


class _AsyncIOBackend:
    """Marks tokens of asyncio event loops (stock or uvloop)."""

    name = "asyncio"


class _TrioBackend:
    """Marks tokens of Trio runs."""

    name = "trio"


@final
@dataclass(frozen=True)
class EventLoopToken:
    """An opaque reference to a running event loop, usable from other threads.

    :param backend_class: the backend marker class
    :param native_token: the asyncio loop, or the Trio run's ``TrioToken``
    """

    backend_class: type[Any]
    native_token: object


def _native_token() -> object:
    loop = _get_running_loop()
    if loop is not None:
        return loop

    current_backend()  # raises NoEventLoopError outside any loop
    import trio

    return trio.lowlevel.current_trio_token()


def current_token() -> EventLoopToken:
    """A token for the event loop running the current thread."""
    native = _native_token()
    backend = _AsyncIOBackend if _get_running_loop() is not None else _TrioBackend
    return EventLoopToken(backend, native)


class _NoValueSet(enum.Enum):
    NO_VALUE_SET = enum.auto()


class RunvarToken(Generic[T]):
    """Returned by :meth:`RunVar.set`; resets the variable once."""

    __slots__ = "_var", "_value", "_redeemed"

    def __init__(self, var: RunVar[T], value: T | Literal[_NoValueSet.NO_VALUE_SET]):
        self._var = var
        self._value: T | Literal[_NoValueSet.NO_VALUE_SET] = value
        self._redeemed = False

    def __enter__(self) -> RunvarToken[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self._var.reset(self)


# Values live per event loop (the asyncio loop or the Trio token), dropped with it.
_run_vars: WeakKeyDictionary[object, dict[RunVar[Any], Any]] = WeakKeyDictionary()


class RunVar(Generic[T]):
    """Like a :class:`~contextvars.ContextVar`, but one value per running event
    loop instead of per context."""

    __slots__ = "_name", "_default"

    NO_VALUE_SET: Literal[_NoValueSet.NO_VALUE_SET] = _NoValueSet.NO_VALUE_SET

    def __init__(
        self, name: str, default: T | Literal[_NoValueSet.NO_VALUE_SET] = NO_VALUE_SET
    ):
        self._name = name
        self._default = default

    @property
    def _current_vars(self) -> dict[RunVar[Any], Any]:
        native = _native_token()
        try:
            return _run_vars[native]
        except KeyError:
            values: dict[RunVar[Any], Any] = {}
            _run_vars[native] = values
            return values

    @overload
    def get(self, default: D) -> T | D: ...

    @overload
    def get(self) -> T: ...

    def get(self, default: Any = NO_VALUE_SET) -> Any:
        try:
            return self._current_vars[self]
        except KeyError:
            if default is not RunVar.NO_VALUE_SET:
                return default
            elif self._default is not RunVar.NO_VALUE_SET:
                return self._default

        raise LookupError(
            f'Run variable "{self._name}" has no value and no default set'
        )

    def set(self, value: T) -> RunvarToken[T]:
        values = self._current_vars
        token = RunvarToken(self, values.get(self, RunVar.NO_VALUE_SET))
        values[self] = value
        return token

    def reset(self, token: RunvarToken[T]) -> None:
        if token._var is not self:
            raise ValueError("This token does not belong to this RunVar")

        if token._redeemed:
            raise ValueError("This token has already been used")

        if token._value is RunVar.NO_VALUE_SET:
            self._current_vars.pop(self, None)
        else:
            self._current_vars[self] = token._value

        token._redeemed = True

    def __repr__(self) -> str:
        return f"<RunVar name={self._name!r}>"


__all__ = (
    "Deadlock",
    "EventLoopToken",
    "GroupNode",
    "ScopeInfo",
    "TaskNode",
    "TaskTree",
    "WaitInfo",
    "dump_on_signal",
    "format_task_tree",
    "get_task_tree",
    "print_task_tree",
    "RunVar",
    "RunvarToken",
    "cancel_shielded_checkpoint",
    "checkpoint",
    "checkpoint_if_cancelled",
    "current_token",
)

# The task tree is public here: its names say so, as every name in a public
# module's __all__ does (upstream's test_all_attributes checks it).
for _name in __all__:
    if getattr(globals()[_name], "__module__", None) == _task_tree.__name__:
        globals()[_name].__module__ = __name__
del _name
