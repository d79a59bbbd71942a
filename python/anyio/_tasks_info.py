"""Looking at tasks: TaskInfo, the current and running tasks, and waiting until
every other task is blocked (for tests)."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Coroutine, Generator
from typing import Any

from . import _cpp
from ._cpp import running_loop as _get_running_loop


class TaskInfo:
    """Information about one task, as a snapshot.

    :ivar int id: a unique integer for the task
    :ivar parent_id: the id of the task that spawned it, if known
    :ivar str name: the task's name
    :ivar coro: the coroutine the task runs
    """

    __slots__ = "_task", "id", "parent_id", "name", "coro"

    def __init__(
        self,
        id: int,
        parent_id: int | None,
        name: str | None,
        coro: Generator[Any, Any, Any] | Coroutine[Any, Any, Any],
    ):
        self.id = id
        self.parent_id = parent_id
        self.name = name
        self.coro = coro
        self._task: Any = None

    def __eq__(self, other: object) -> bool:
        if isinstance(other, TaskInfo):
            return self.id == other.id

        return NotImplemented

    def __hash__(self) -> int:
        return hash(self.id)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(id={self.id!r}, name={self.name!r})"

    def has_pending_cancellation(self) -> bool:
        """True if the task will be cancelled at its next checkpoint."""
        task = self._task
        if task is None:
            return False

        if isinstance(task, asyncio.Task):
            # A native cancellation counts until it has been delivered.
            if getattr(task, "_must_cancel", False):
                return True
            return bool(_cpp.task_cancel_pending(task, task.get_coro()))

        import trio

        if task is trio.lowlevel.current_task():
            return bool(trio.current_effective_deadline() == float("-inf"))

        return bool(task._cancel_status.effectively_cancelled)


def _asyncio_info(task: asyncio.Task[Any]) -> TaskInfo:
    wrapper = task.get_coro()
    info = TaskInfo(
        id(task),
        _cpp.task_parent_id(wrapper),
        task.get_name(),
        _cpp.unwrap_coro(wrapper),
    )
    info._task = task
    return info


def _trio_info(task: Any) -> TaskInfo:
    parent = task.parent_nursery.parent_task if task.parent_nursery else None
    info = TaskInfo(
        id(task), id(parent) if parent is not None else None, task.name, task.coro
    )
    info._task = task
    return info


def get_current_task() -> TaskInfo:
    """Information about the task running this code."""
    if _get_running_loop() is not None:
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("There is no task currently running")
        return _asyncio_info(task)

    from ._backend import current_backend

    current_backend()
    import trio

    return _trio_info(trio.lowlevel.current_task())


def get_running_tasks() -> list[TaskInfo]:
    """Information about every task that has not finished."""
    if _get_running_loop() is not None:
        return [_asyncio_info(t) for t in asyncio.all_tasks() if not t.done()]

    from ._backend import current_backend

    current_backend()
    import trio

    infos: list[TaskInfo] = []
    stack = [trio.lowlevel.current_root_task()]
    while stack:
        task = stack.pop()
        if task is None:
            continue
        infos.append(_trio_info(task))
        for nursery in task.child_nurseries:
            stack.extend(nursery.child_tasks)

    return infos


#: How long wait_all_tasks_blocked() lets other tasks run before it looks again.
_SETTLE_SECONDS = 0.1
#: ThreadCall.status of a call whose function a worker thread is running.
_JOB_RUNNING = 1
#: Worker-thread calls that a look of wait_all_tasks_blocked() has already seen.
_seen_thread_calls: weakref.WeakSet[Any] = weakref.WeakSet()


def _can_progress(task: asyncio.Task[Any]) -> bool:
    """Whether `task` can still move on without anything else happening.

    A task that is scheduled to run, or whose awaited future is done, can. So
    can a task waiting for a worker-thread call that is queued for a worker or
    already finished. A call a worker is running counts once, the first time a
    look finds it: upstream's to_thread.run_sync() starts with a checkpoint, so
    a call that was just made leaves its task runnable for that first look, and
    a short call finishes during the settle period that follows.
    """
    waiter = task._fut_waiter  # type: ignore[attr-defined]
    if waiter is None or waiter.done():
        return True
    if type(waiter) is _cpp.ThreadCall:
        if waiter.status != _JOB_RUNNING:
            return True
        if waiter not in _seen_thread_calls:
            _seen_thread_calls.add(waiter)
            return True
    return False


async def wait_all_tasks_blocked() -> None:
    """Wait until every other task is blocked.

    A checkpoint first; then, as long as another task can still run, sleep for
    0.1 seconds and look again, so work in flight (a task's next steps, a short
    worker-thread call) settles before this returns.
    """
    if _get_running_loop() is None:
        import trio.testing

        await trio.testing.wait_all_tasks_blocked()
        return

    await _cpp.checkpoint()
    this_task = asyncio.current_task()
    while True:
        busy = [
            task
            for task in asyncio.all_tasks()
            if task is not this_task and _can_progress(task)
        ]
        if not busy:
            return

        await asyncio.sleep(_SETTLE_SECONDS)
