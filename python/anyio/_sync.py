"""Synchronization primitives: Event, Lock, Semaphore, Condition,
CapacityLimiter, ResourceGuard and Future.

Event, Lock, Semaphore and CapacityLimiter are C++ types (anyio._cpp) whose
acquire/release/wait paths are CPython slots; the subclasses here add only the
cold parts (statistics, repr). Condition, ResourceGuard and Future are small
Python classes on top of them. One object works on asyncio and on Trio, and may
be created before any event loop runs.
"""

from __future__ import annotations

import asyncio
import collections.abc
import enum
import operator
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Generator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Generic, TypeVar

from . import _cpp
from ._cancel import CancelScope
from ._exceptions import (
    BusyResourceError,
    FutureAlreadyFinished,
    FutureCancelled,
    FutureFailed,
    FutureNotFinished,
)
from ._tasks_info import TaskInfo, _asyncio_info, _trio_info
from .lowlevel import checkpoint_if_cancelled

# asyncio.create_task() and Trio's start_soon() accept only coroutines; the C++
# awaitable behind acquire()/wait() implements the whole coroutine protocol.
collections.abc.Coroutine.register(_cpp.SyncOp)

T = TypeVar("T")
_current_task = _cpp.sync_current_task


# On Trio the C++ awaitable forwards to the coroutines of anyio._sync_trio.
# That module imports Trio, which asyncio users never pay for: these stand-ins
# import it on the first use on Trio, and it then registers its own functions
# in their place.
def _trio_acquire(op: Any, fast_acquire: bool) -> Coroutine[Any, Any, None]:
    from . import _sync_trio

    return _sync_trio.acquire(op, fast_acquire)


def _trio_event_wait(op: Any, is_set: bool) -> Coroutine[Any, Any, None]:
    from . import _sync_trio

    return _sync_trio.event_wait(op, is_set)


_cpp.register_hooks(
    sync_trio_acquire=_trio_acquire, sync_trio_event_wait=_trio_event_wait
)


def _task_info(task: Any) -> TaskInfo | None:
    if task is None:
        return None
    if isinstance(task, asyncio.Task):
        return _asyncio_info(task)

    return _trio_info(task)


@dataclass(frozen=True)
class EventStatistics:
    """:ivar int tasks_waiting: tasks waiting on :meth:`Event.wait`"""

    tasks_waiting: int


@dataclass(frozen=True)
class LockStatistics:
    """
    :ivar bool locked: whether the lock is held
    :ivar owner: the task holding the lock, if any
    :ivar int tasks_waiting: tasks waiting on :meth:`Lock.acquire`
    """

    locked: bool
    owner: TaskInfo | None
    tasks_waiting: int


@dataclass(frozen=True)
class ConditionStatistics:
    """
    :ivar int tasks_waiting: tasks waiting on :meth:`Condition.wait`
    :ivar lock_statistics: statistics of the underlying :class:`Lock`
    """

    tasks_waiting: int
    lock_statistics: LockStatistics


@dataclass(frozen=True)
class SemaphoreStatistics:
    """:ivar int tasks_waiting: tasks waiting on :meth:`Semaphore.acquire`"""

    tasks_waiting: int


@dataclass(frozen=True)
class CapacityLimiterStatistics:
    """
    :ivar int borrowed_tokens: tokens currently borrowed
    :ivar float total_tokens: the limiter's total number of tokens
    :ivar tuple borrowers: who holds the borrowed tokens
    :ivar int tasks_waiting: tasks waiting for a token
    """

    borrowed_tokens: int
    total_tokens: float
    borrowers: tuple[object, ...]
    tasks_waiting: int


def _rebuild_event(cls: type[Event], is_set: bool) -> Event:
    event = cls()
    if is_set:
        event.set()
    return event


def _rebuild_lock(cls: type[Lock], fast_acquire: bool) -> Lock:
    return cls(fast_acquire=fast_acquire)


class Event(_cpp.EventBase):
    """A flag tasks can wait for; setting it wakes all of them, and it stays set."""

    __slots__ = ()

    def statistics(self) -> EventStatistics:
        """Return statistics about this event."""
        return EventStatistics(self._tasks_waiting)

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy (or an unpickled event) is a new event in the same state.
        return _rebuild_event, (type(self), self.is_set())

    def __repr__(self) -> str:
        state = "set" if self.is_set() else "unset"
        return f"<{type(self).__name__} {state} tasks_waiting={self._tasks_waiting}>"


class Lock(_cpp.LockBase):
    """A mutual exclusion lock owned by the task that acquired it.

    :param fast_acquire: skip the scheduling point when the lock is free (the
        acquire still checks for cancellation)
    """

    __slots__ = ()

    def statistics(self) -> LockStatistics:
        """Return statistics about this lock."""
        owner = self._owner
        return LockStatistics(owner is not None, _task_info(owner), self._tasks_waiting)

    def __reduce__(self) -> tuple[Any, ...]:
        # A copy (or an unpickled lock) is a new, free lock: an owner task
        # cannot be carried over.
        return _rebuild_lock, (type(self), self._fast_acquire)

    def __repr__(self) -> str:
        state = "locked" if self.locked() else "unlocked"
        return f"<{type(self).__name__} {state} tasks_waiting={self._tasks_waiting}>"


class Semaphore(_cpp.SemaphoreBase):
    """A counter of tokens: acquiring takes one (waiting while there are none),
    releasing gives one back.

    :param initial_value: the number of tokens at start
    :param max_value: the most tokens there may be; releasing beyond it raises
        :exc:`ValueError`
    :param fast_acquire: skip the scheduling point when a token is free
    """

    __slots__ = ()

    def statistics(self) -> SemaphoreStatistics:
        """Return statistics about this semaphore."""
        return SemaphoreStatistics(self._tasks_waiting)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} value={self.value} max_value={self.max_value} "
            f"tasks_waiting={self._tasks_waiting}>"
        )


class CapacityLimiter(_cpp.CapacityLimiterBase):
    """Lets at most ``total_tokens`` borrowers (tasks, or any hashable object
    via the ``*_on_behalf_of`` methods) in at once; each holds at most one token.

    :param total_tokens: an int >= 0 or :data:`math.inf`
    """

    __slots__ = ()

    def statistics(self) -> CapacityLimiterStatistics:
        """Return statistics about this capacity limiter."""
        return CapacityLimiterStatistics(
            self.borrowed_tokens,
            self.total_tokens,
            self._borrowers,
            self._tasks_waiting,
        )

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} borrowed={self.borrowed_tokens} "
            f"total={self.total_tokens} tasks_waiting={self._tasks_waiting}>"
        )


class Condition:
    """Lets tasks wait until another task notifies them, under a shared lock.

    :param lock: the lock to use (a new :class:`Lock` by default)
    """

    __slots__ = ("_lock", "_waiters", "__weakref__")

    def __init__(self, lock: Lock | None = None):
        self._lock: Lock = lock if lock is not None else Lock()
        self._waiters: deque[Event] = deque()

    # The lock's own awaitables serve directly: no extra frame per acquire.
    def __aenter__(self) -> Coroutine[Any, Any, None]:
        return self._lock.acquire()

    def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> Awaitable[None]:
        return self._lock.__aexit__(exc_type, exc_val, exc_tb)

    def _check_acquired(self) -> None:
        if self._lock._owner is not _current_task():
            raise RuntimeError("The current task is not holding the underlying lock")

    def acquire(self) -> Coroutine[Any, Any, None]:
        """Acquire the underlying lock (a coroutine)."""
        return self._lock.acquire()

    def acquire_nowait(self) -> None:
        """Acquire the underlying lock without waiting (or raise WouldBlock)."""
        self._lock.acquire_nowait()

    def release(self) -> None:
        """Release the underlying lock."""
        self._lock.release()

    def locked(self) -> bool:
        """Whether the underlying lock is held."""
        return self._lock.locked()

    def _notify(self, n: int) -> None:
        waiters = self._waiters
        while n > 0 and waiters:
            waiters.popleft().set()
            n -= 1

    def notify(self, n: int = 1) -> None:
        """Wake up to ``n`` of the waiting tasks, oldest first."""
        n = operator.index(n)
        self._check_acquired()
        self._notify(n)

    def notify_all(self) -> None:
        """Wake every waiting task."""
        self._check_acquired()
        self._notify(len(self._waiters))

    async def wait(self) -> None:
        """Release the lock, wait to be notified, then take the lock back."""
        await checkpoint_if_cancelled()
        self._check_acquired()
        event = Event()
        self._waiters.append(event)
        self._lock.release()
        try:
            await event.wait()
        except BaseException:
            if event.is_set():
                # Notified, but cancelled before it could act on it: pass the
                # notification on so it is not lost.
                self._notify(1)
            else:
                self._waiters.remove(event)
            raise
        finally:
            with CancelScope(shield=True):
                await self._lock.acquire()

    async def wait_for(self, predicate: Callable[[], T]) -> T:
        """Wait (as :meth:`wait`) until ``predicate()`` is true; return its value."""
        while not (result := predicate()):
            await self.wait()

        return result

    def statistics(self) -> ConditionStatistics:
        """Return statistics about this condition."""
        return ConditionStatistics(len(self._waiters), self._lock.statistics())


class ResourceGuard:
    """Raises :exc:`BusyResourceError` when a second task enters it while the
    first one is still inside.

    :param action: the verb for the error message ("Another task is already
        {action} this resource")
    """

    __slots__ = "action", "_guarded", "__weakref__"

    def __init__(self, action: str = "using"):
        self.action: str = action
        self._guarded = False

    def __enter__(self) -> None:
        if self._guarded:
            raise BusyResourceError(self.action)

        self._guarded = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self._guarded = False


class Future(Generic[T]):
    """A value, an exception or a cancellation that one task hands to others.

    Set :attr:`return_value` or :attr:`exception` once (or call :meth:`cancel`);
    awaiting the future returns the value, or raises :exc:`FutureFailed` (with
    the exception as ``__cause__``) or :exc:`FutureCancelled`.

    :param name: a name shown in the repr
    """

    class Status(enum.Enum):
        PENDING = 1
        FINISHED = 2
        CANCELLED = 3
        FAILED = 4

    __slots__ = ("_name", "_status", "_value", "_exception", "_event")

    def __init__(self, *, name: str | None = None) -> None:
        self._name = name
        self._status = Future.Status.PENDING
        self._value: T | None = None
        self._exception: BaseException | None = None
        self._event = Event()

    @property
    def status(self) -> Future.Status:
        """The state the future is in."""
        return self._status

    def _finish(self, status: Future.Status) -> None:
        self._status = status
        self._event.set()

    @property
    def return_value(self) -> T:
        """The result; setting it finishes the future."""
        self._raise_unless_finished()
        return self._value  # type: ignore[return-value]

    @return_value.setter
    def return_value(self, value: T) -> None:
        self._finish_with_value(value)

    def _finish_with_value(self, value: T) -> None:
        self._check_pending()
        self._value = value
        self._finish(Future.Status.FINISHED)

    def _check_pending(self) -> None:
        if self._status is Future.Status.CANCELLED:
            raise FutureCancelled("future was cancelled")
        if self._status is not Future.Status.PENDING:
            raise FutureAlreadyFinished("future has already finished")

    @property
    def exception(self) -> BaseException | None:
        """The exception the future failed with (None if it has a value);
        setting it finishes the future as failed."""
        status = self._status
        if status is Future.Status.PENDING:
            raise FutureNotFinished("the future has not finished yet")
        if status is Future.Status.CANCELLED:
            raise FutureCancelled("the future was cancelled")

        return self._exception

    @exception.setter
    def exception(self, exc: BaseException) -> None:
        self._check_pending()
        self._exception = exc
        self._finish(Future.Status.FAILED)

    def _raise_unless_finished(self) -> None:
        status = self._status
        if status is Future.Status.FINISHED:
            return
        if status is Future.Status.PENDING:
            raise FutureNotFinished("the future has not finished yet")
        if status is Future.Status.CANCELLED:
            raise FutureCancelled("the future was cancelled")

        raise FutureFailed("the future raised an exception") from self._exception

    def cancel(self) -> None:
        """Cancel the future; does nothing if it has already finished."""
        if self._status is Future.Status.PENDING:
            self._status = Future.Status.CANCELLED
            self._event.set()

    async def wait(self) -> None:
        """Wait until the future finishes, in any way, without raising its
        outcome."""
        await self._event.wait()

    def __await__(self) -> Generator[Any, Any, T]:
        yield from self._event.wait().__await__()
        self._raise_unless_finished()
        return self._value  # type: ignore[return-value]

    def __repr__(self) -> str:
        state = self._status.name.lower()
        return f"<Future {state} name={self._name!r}>"


# Public names report the package they are imported from, as upstream's do.
for _cls in (
    EventStatistics,
    LockStatistics,
    ConditionStatistics,
    SemaphoreStatistics,
    CapacityLimiterStatistics,
    Event,
    Lock,
    Semaphore,
    CapacityLimiter,
    Condition,
    ResourceGuard,
    Future,
    Future.Status,
):
    _cls.__module__ = "anyio"
del _cls
