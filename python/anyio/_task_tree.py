"""A snapshot of every task: task groups, cancel scopes, what each task waits
on, and the deadlocks among them (``anyio.lowlevel.get_task_tree()``).

Nothing here runs unless a snapshot is asked for, and nothing on a hot path
records anything for it. A snapshot reads state that exists anyway: the C++
scope tree (asyncio) or Trio's own task and nursery tree, and each task's
chain of awaits down to the awaitable it is parked in. When that awaitable is
one of the core's (a lock acquire, a memory stream send, a worker thread
call...), the core tells what it waits on; sleeps are read from the frames of
the sleep functions (the timer handle, the deadline).
"""

from __future__ import annotations

import asyncio
import functools
import gc
import math
import operator
import signal
import sys
import threading
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import IO, Any

from . import _cpp
from ._cpp import running_loop as _get_running_loop

#: Longest await chain followed; deeper chains are cut (and say so).
_MAX_CHAIN = 256

# Task states.
RUNNING = "running"  # the task taking the snapshot
READY = "ready"  # scheduled to run at the next loop pass
WAITING = "waiting"  # parked until something wakes it

# Wait kinds.
WAIT_LOCK = "lock"
WAIT_SEMAPHORE = "semaphore"
WAIT_LIMITER = "capacity_limiter"
WAIT_EVENT = "event"
WAIT_CONDITION = "condition"
WAIT_SEND = "memory_send"
WAIT_RECEIVE = "memory_receive"
WAIT_THREAD = "to_thread"
WAIT_SLEEP = "sleep"
WAIT_TASK_GROUP = "task_group"
WAIT_CHECKPOINT = "checkpoint"
WAIT_FUTURE = "future"
WAIT_OTHER = "other"


@dataclass(slots=True)
class ScopeInfo:
    """One active cancel scope of a task.

    :ivar id: ``id()`` of the scope object
    :ivar deadline: the deadline on the event loop clock, None if there is none
    :ivar time_left: seconds until the deadline (negative once passed), or None
    :ivar shield: whether the scope shields its contents from outer cancellation
    :ivar cancel_called: whether the scope has been cancelled
    :ivar cancelled_by: what cancelled it (``"deadline"`` or the reason
        given to ``cancel()``), None if not cancelled or unknown
    :ivar elapsed: seconds since a timeout helper (``fail_after``,
        ``move_on_after``...) made the scope, where known
    :ivar task_group: ``id()`` of the task group whose scope this is, or None
    """

    id: int
    deadline: float | None
    time_left: float | None
    shield: bool
    cancel_called: bool
    cancelled_by: str | None = None
    elapsed: float | None = None
    task_group: int | None = None


@dataclass(slots=True)
class WaitInfo:
    """What a parked task waits on.

    :ivar kind: one of ``lock``, ``semaphore``, ``capacity_limiter``,
        ``event``, ``condition``, ``memory_send``, ``memory_receive``,
        ``to_thread``, ``sleep``, ``task_group``, ``checkpoint``, ``future``,
        ``other``
    :ivar description: one line for people
    :ivar target: the object waited on (the primitive, the stream, the
        function running in a thread, the task group), if any
    :ivar holders: ids of the tasks that hold what the task waits for (a lock's
        owner, a limiter's borrowers, a task group's children)
    :ivar needs_all: True if every holder must finish (a task group), False if
        any one of them releasing ends the wait
    :ivar open: True if something other than the holders can end the wait
        (anyone may set an event, release a semaphore, send an item...)
    :ivar until: for a sleep, when it ends on the event loop clock (inf: never)
    :ivar details: extra facts (statistics, the worker thread's frame, ...)
    :ivar running_for: for a ``to_thread`` call a worker thread runs, the
        seconds since that thread started it
    """

    kind: str
    description: str
    target: object = field(default=None, repr=False, compare=False)
    holders: tuple[int, ...] = ()
    needs_all: bool = False
    open: bool = True
    until: float | None = None
    details: dict[str, object] = field(default_factory=dict)
    running_for: float | None = None


@dataclass(slots=True)
class TaskNode:
    """One task in the tree.

    :ivar id: ``id()`` of the task object (as :class:`~anyio.TaskInfo` has it)
    :ivar name: the task's name
    :ivar state: ``running``, ``ready`` or ``waiting``
    :ivar foreign: True for an asyncio task this package did not spawn
    :ivar parent_id: id of the task that spawned it, if known
    :ivar coroutine: the qualified name of the task's coroutine
    :ivar await_chain: the awaits it is suspended in, outermost first
        (``qualname (file:line)`` per coroutine frame, then the innermost
        awaitable's type)
    :ivar location: the innermost frame of the await chain outside anyio,
        asyncio and trio (``qualname``), if any
    :ivar scopes: its own active cancel scopes, innermost first
    :ivar wait: what it is parked in, if known
    :ivar idle: seconds since it last ran, where known: parked in one of this
        package's primitives (``Lock``, ``Event``, memory streams...; the core
        reads a clock when a task actually parks, never on an uncontended
        operation) or in a sleep (from its timer); None for anything else
        (other awaitables, futures of foreign tasks, Trio's own primitives)
    :ivar groups: the task groups it hosts, outermost first
    """

    id: int
    name: str
    state: str
    foreign: bool = False
    parent_id: int | None = None
    coroutine: str = ""
    await_chain: tuple[str, ...] = ()
    location: str | None = None
    scopes: tuple[ScopeInfo, ...] = ()
    wait: WaitInfo | None = None
    idle: float | None = None
    groups: list[GroupNode] = field(default_factory=list)


@dataclass(slots=True)
class GroupNode:
    """A task group (asyncio: the cancel scope its children were spawned
    into; Trio: a nursery) and its running tasks.

    :ivar id: ``id()`` of the group's scope (asyncio) or nursery (Trio)
    :ivar scope: the group's cancel scope, if known
    :ivar tasks: its running tasks, ordered by name
    """

    id: int
    scope: ScopeInfo | None
    tasks: list[TaskNode] = field(default_factory=list)


@dataclass(slots=True)
class Deadlock:
    """A cycle of tasks each waiting for something the next one holds.

    :ivar task_ids: the tasks of the cycle, in order; the last waits for the first
    :ivar steps: one line per task: what it waits for and who holds it
    """

    task_ids: tuple[int, ...]
    steps: tuple[str, ...]


@dataclass(slots=True)
class TaskTree:
    """A snapshot of every task of the running event loop.

    :ivar backend: ``asyncio`` or ``trio``
    :ivar time: the event loop clock when the snapshot was taken
    :ivar roots: the tasks no task group of this package holds (the main task,
        foreign asyncio tasks)
    :ivar deadlocks: the wait cycles found
    """

    backend: str
    time: float
    roots: list[TaskNode]
    deadlocks: list[Deadlock]

    def tasks(self) -> Iterator[TaskNode]:
        """Every task of the tree, depth first."""
        stack = list(reversed(self.roots))
        while stack:
            node = stack.pop()
            yield node
            for group in reversed(node.groups):
                stack.extend(reversed(group.tasks))

    def find(self, name: str) -> TaskNode:
        """The first task (depth first) whose name is ``name`` or ends with
        ``.name``.

        :raises LookupError: if there is none
        """
        for node in self.tasks():
            if node.name == name or node.name.endswith("." + name):
                return node
        raise LookupError(name)


# --- await chains -------------------------------------------------------------

_INTERNAL_DIRS: tuple[str, ...] = ()


def _internal_dirs() -> tuple[str, ...]:
    global _INTERNAL_DIRS
    if not _INTERNAL_DIRS:
        import os

        dirs = [os.path.dirname(__file__) + os.sep, os.path.dirname(asyncio.__file__)]
        trio = sys.modules.get("trio")
        if trio is not None and trio.__file__:
            dirs.append(os.path.dirname(trio.__file__) + os.sep)
        _INTERNAL_DIRS = tuple(dirs)
    return _INTERNAL_DIRS


def _qualname(code: types.CodeType) -> str:
    return getattr(code, "co_qualname", code.co_name)


# Tags of the recognised codes: their positions in _Codes.tagged, which the
# C++ pass reports back with the frames that run them.
_TAG_CONDITION = 0
_TAG_TG_EXIT = 1
_TAG_ASYNCIO_SLEEP = 2
_TAG_TRIO_SLEEP = 3
_TAG_TRIO_SLEEP_UNTIL = 4
_TAG_TRIO_NURSERY_WAIT = 5


class _Codes:
    """The code objects of the functions a snapshot recognises in a chain,
    looked up once (Trio's only if Trio is loaded)."""

    def __init__(self) -> None:
        from ._sync import Condition
        from ._taskgroup import TaskGroup

        trio_sleep: types.CodeType | None = None
        trio_sleep_until: types.CodeType | None = None
        trio_nursery_wait: types.CodeType | None = None
        trio_child: types.CodeType | None = None
        self.trio_loaded = False
        trio = sys.modules.get("trio")
        if trio is not None:
            from ._taskgroup import _run_trio_child

            self.trio_loaded = True
            trio_child = _run_trio_child.__code__
            trio_sleep = trio.sleep.__code__
            trio_sleep_until = trio.sleep_until.__code__
            try:
                from trio._core._run import Nursery

                trio_nursery_wait = Nursery._nested_child_finished.__code__
            except (ImportError, AttributeError):  # a Trio without it: no group waits
                pass
        # In _TAG_* order.
        self.tagged: tuple[types.CodeType | None, ...] = (
            Condition.wait.__code__,
            TaskGroup._asyncio_exit.__code__,
            asyncio.sleep.__code__,
            trio_sleep,
            trio_sleep_until,
            trio_nursery_wait,
        )
        # The outermost frame of every task anyio spawns on Trio.
        self.trio_child = trio_child


_codes: _Codes | None = None


def _get_codes() -> _Codes:
    global _codes
    if _codes is None or (not _codes.trio_loaded and "trio" in sys.modules):
        _codes = _Codes()
    return _codes


# --- building -----------------------------------------------------------------


class _Builder:
    """Collects the nodes of one snapshot; the backend parts fill it in."""

    def __init__(self, backend: str, now: float) -> None:
        self.backend = backend
        self.now = now
        self.codes = _get_codes()
        self.internal = _internal_dirs()
        self.nodes: dict[int, TaskNode] = {}
        # Tasks parked on the same primitive share its WaitInfo.
        self.waits: dict[tuple[str, int], WaitInfo] = {}
        self.task_ids: Callable[[], frozenset[int]] = frozenset

    def label(self, code: types.CodeType, line: int) -> tuple[str, str | None, str]:
        """The text of one frame of a chain, its location (None inside anyio,
        asyncio and trio) and its qualified name; the C++ pass asks once per
        code and line."""
        qual = _qualname(code)
        internal = code.co_filename.startswith(self.internal)
        return f"{qual} ({code.co_filename}:{line})", None if internal else qual, qual

    def asyncio_scope(self, row: tuple[Any, ...], group: int | None) -> ScopeInfo:
        scope, deadline, shield, called, reached, reason, created = row
        has_deadline = deadline != math.inf
        by = ("deadline" if reached else reason) if called else None
        return ScopeInfo(
            id(scope),
            deadline if has_deadline else None,
            deadline - self.now if has_deadline else None,
            shield,
            called,
            by,
            None if created is None else self.now - created,
            group,
        )

    def trio_scope(self, scope: Any, group: int | None) -> ScopeInfo:
        deadline = scope.deadline
        has_deadline = deadline != math.inf
        cancelled_by: str | None = None
        called = bool(scope.cancel_called)
        if called:
            reason = getattr(scope, "_cancel_reason", None)
            source = getattr(reason, "source", None)
            if source == "deadline" or (
                reason is None and has_deadline and deadline <= self.now
            ):
                cancelled_by = "deadline"
            elif reason is not None:
                cancelled_by = getattr(reason, "reason", None) or str(source)
        return ScopeInfo(
            id(scope),
            deadline if has_deadline else None,
            deadline - self.now if has_deadline else None,
            bool(scope.shield),
            called,
            cancelled_by,
            None,
            group,
        )

    def wait_of(
        self, state: str, innermost: Any, core: Any, marks: Any
    ) -> tuple[WaitInfo | None, float | None]:
        """What a task that is not running waits on, and how long it has been
        idle if known: a condition (whose event or lock the core sees) as a
        condition, else what the core says of the innermost awaitable, else
        what a recognised frame of the chain says."""
        frame_wait: WaitInfo | None = None
        idle: float | None = None
        if marks is not None:
            frame_wait, idle = self.frame_wait(marks)
        if frame_wait is not None and frame_wait.kind == WAIT_CONDITION:
            return frame_wait, _parked_for(core) if core is not None else idle
        if core is not None:
            return self.core_wait(core), _parked_for(core)
        if frame_wait is not None:
            return frame_wait, idle
        tp = type(innermost)
        if tp.__name__ == "Checkpoint" and tp.__module__ == "anyio._cpp":
            return WaitInfo(WAIT_CHECKPOINT, "checkpoint"), idle
        return None, idle

    def core_wait(self, core: tuple[Any, ...]) -> WaitInfo:
        """What the core says a task waits on; tasks parked on the same
        primitive share one WaitInfo (a thread call's is its own)."""
        if core[0] == "thread":
            return self.make_core_wait(core)
        key = (core[0], id(core[1]))
        shared = self.waits.get(key)
        if shared is None:
            shared = self.waits[key] = self.make_core_wait(core)
        return shared

    def frame_wait(
        self, marks: tuple[tuple[int, types.FrameType], ...]
    ) -> tuple[WaitInfo | None, float | None]:
        wait: WaitInfo | None = None
        idle: float | None = None
        for tag, frame in marks:
            if tag == _TAG_CONDITION:
                cond = frame.f_locals.get("self")
                wait = WaitInfo(
                    WAIT_CONDITION,
                    "Condition.wait",
                    cond,
                    open=True,
                    details={"statistics": cond.statistics()} if cond else {},
                )
            elif tag == _TAG_TG_EXIT:
                wait = self.group_wait(frame.f_locals.get("self"))
            elif tag == _TAG_ASYNCIO_SLEEP:
                wait, idle = self.asyncio_sleep(frame)
            elif tag == _TAG_TRIO_SLEEP or tag == _TAG_TRIO_SLEEP_UNTIL:
                wait, idle = self.trio_sleep(frame, wait, idle)
            elif tag == _TAG_TRIO_NURSERY_WAIT:
                wait = self.nursery_wait(frame.f_locals.get("self"))
        return wait, idle

    # -- waits recognised from frames --

    def group_wait(self, tg: Any) -> WaitInfo:
        scope = getattr(tg, "cancel_scope", None)
        return WaitInfo(
            WAIT_TASK_GROUP,
            "task group exit (waiting for its tasks)",
            tg,
            needs_all=True,
            open=False,
            details={"scope_id": id(scope)},
        )

    def nursery_wait(self, nursery: Any) -> WaitInfo:
        holders = tuple(id(t) for t in getattr(nursery, "child_tasks", ()))
        return WaitInfo(
            WAIT_TASK_GROUP,
            "task group exit (waiting for its tasks)",
            nursery,
            holders=holders,
            needs_all=True,
            open=False,
        )

    def asyncio_sleep(self, frame: types.FrameType) -> tuple[WaitInfo, float | None]:
        local = frame.f_locals
        handle = local.get("h")
        delay = local.get("delay")
        when = getattr(handle, "when", None)
        until = when() if when is not None else None
        if isinstance(delay, (int, float)) and not math.isfinite(delay):
            # The loop clamps an infinite delay to a far timer: never wakes.
            return self.sleep_info(math.inf), None
        idle: float | None = None
        if until is not None and isinstance(delay, (int, float)):
            idle = max(self.now - (until - delay), 0.0)
        return self.sleep_info(until), idle

    def trio_sleep(
        self, frame: types.FrameType, outer: WaitInfo | None, idle: float | None
    ) -> tuple[WaitInfo, float | None]:
        local = frame.f_locals
        if "deadline" in local:
            until = local["deadline"]
            if outer is not None and outer.details.get("seconds") is not None:
                seconds = outer.details["seconds"]
                if isinstance(seconds, (int, float)) and math.isfinite(until):
                    idle = max(self.now - (until - seconds), 0.0)
            return self.sleep_info(until), idle
        info = self.sleep_info(None)
        info.details["seconds"] = local.get("seconds")
        return info, idle

    def sleep_info(self, until: float | None) -> WaitInfo:
        if until is None:
            text = "sleep"
        elif until == math.inf:
            text = "sleep forever"
        else:
            text = "sleep until"
        return WaitInfo(WAIT_SLEEP, text, until=until, open=False)

    # -- waits the core reports --

    def make_core_wait(self, what: tuple[Any, ...]) -> WaitInfo:
        kind = what[0]
        if kind == "event":
            event = what[1]
            return WaitInfo(WAIT_EVENT, "Event.wait", event, details={})
        if kind == "acquire":
            return self.acquire_wait(what[1])
        if kind in ("send", "receive"):
            stream = what[1]
            stats = stream.statistics()
            text = (
                f"{type(stream).__name__}.{kind} (buffer "
                f"{stats.current_buffer_used}/{stats.max_buffer_size}, "
                f"{stats.open_send_streams} send / {stats.open_receive_streams} "
                "receive streams open)"
            )
            return WaitInfo(
                WAIT_SEND if kind == "send" else WAIT_RECEIVE,
                text,
                stream,
                details={"statistics": stats},
            )
        _, func, status, limiter, acquiring, running_for = what
        wait = self.thread_wait(func, status, limiter, acquiring)
        wait.running_for = running_for
        return wait

    def acquire_wait(self, prim: Any) -> WaitInfo:
        from ._sync import CapacityLimiter, Lock, Semaphore

        stats = prim.statistics()
        if isinstance(prim, Lock):
            owner = prim._owner
            holders: tuple[int, ...] = (id(owner),) if owner is not None else ()
            return WaitInfo(
                WAIT_LOCK,
                "Lock.acquire",
                prim,
                holders=holders,
                open=owner is None,
                details={"statistics": stats},
            )
        if isinstance(prim, CapacityLimiter):
            borrowers = prim._borrowers
            holders = tuple(id(b) for b in borrowers)
            # A borrower that is not a task (an explicit borrower object) may be
            # released by anyone: the wait is then open.
            known = all(h in self.task_ids() for h in holders)
            return WaitInfo(
                WAIT_LIMITER,
                f"CapacityLimiter.acquire ({stats.borrowed_tokens}/"
                f"{stats.total_tokens} tokens borrowed)",
                prim,
                holders=holders,
                open=not known or not holders,
                details={"statistics": stats},
            )
        if isinstance(prim, Semaphore):
            return WaitInfo(
                WAIT_SEMAPHORE,
                f"Semaphore.acquire (value {stats.value})"
                if hasattr(stats, "value")
                else "Semaphore.acquire",
                prim,
                details={"statistics": stats},
            )
        return WaitInfo(WAIT_OTHER, f"{type(prim).__name__}.acquire", prim)

    def thread_wait(
        self, func: Any, status: str, limiter: Any, acquiring: bool
    ) -> WaitInfo:
        fname = _callable_name(func)
        details: dict[str, object] = {"status": status}
        if acquiring and limiter is not None:
            text = f"to_thread.run_sync({fname}) waiting for a worker token"
        else:
            text = f"to_thread.run_sync({fname}) {status} in a worker thread"
            where = _worker_frame(func)
            if where is not None:
                thread, frame, request = where
                details["thread"] = thread
                details["frame"] = (
                    f"{_qualname(frame.f_code)} ({frame.f_code.co_filename}:{frame.f_lineno})"
                )
                if request is not None:
                    details["from_thread"] = request
                    text += f", which waits for from_thread.{request}"
        return WaitInfo(WAIT_THREAD, text, func, details=details)


def _parked_for(core: tuple[Any, ...]) -> float | None:
    """How long the task has been queued in the core's primitive or stream:
    the last item of their tuples (None if not queued). A task waiting for a
    thread call is not parked in a primitive: its call's run time is the
    wait's ``running_for``."""
    return None if core[0] == "thread" else core[-1]  # type: ignore[no-any-return]


def _callable_name(func: Any) -> str:
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if name is None:
        inner = getattr(func, "func", None)  # functools.partial
        if inner is not None:
            return _callable_name(inner)
        return type(func).__name__
    return str(name)


def _worker_frame(func: Any) -> tuple[str, types.FrameType, str | None] | None:
    """The worker thread running `func`: its name, its current frame and, if it
    waits in from_thread, which call (run / run_sync). Found by matching the
    outermost frame of each thread's stack with func's code."""
    code = getattr(func, "__code__", None)
    if code is None:
        return None
    from . import from_thread

    ft_file = from_thread.__file__
    names = {t.ident: t.name for t in threading.enumerate()}
    for ident, top in sys._current_frames().items():
        frame: types.FrameType | None = top
        request: str | None = None
        outer: types.FrameType | None = None
        while frame is not None:
            if frame.f_code.co_filename == ft_file and request is None:
                request = frame.f_code.co_name
            outer = frame if frame.f_code is code else outer
            frame = frame.f_back
        if outer is not None:
            return names.get(ident, str(ident)), top, request
    return None


_STATES = (RUNNING, READY, WAITING)  # as the C++ pass numbers them


def _asyncio_tasks(loop: asyncio.AbstractEventLoop) -> Any:
    """asyncio's registry of tasks (weak references, read by the C++ pass
    without the Python-level iteration of asyncio.all_tasks()), or that."""
    registry = getattr(asyncio.tasks, "_all_tasks", None)
    data = getattr(registry, "data", None)
    if isinstance(data, set):
        eager = getattr(asyncio.tasks, "_eager_tasks", None)
        # A collection during the copy may drop dead references from the
        # set: copy again, as asyncio.all_tasks() does.
        for _ in range(1000):
            try:
                refs = tuple(data)
                break
            except RuntimeError:
                continue
        else:
            return asyncio.all_tasks(loop)
        return refs + tuple(eager) if eager else refs
    return asyncio.all_tasks(loop)


def _asyncio_tree(loop: asyncio.AbstractEventLoop) -> TaskTree:
    b = _Builder("asyncio", loop.time())
    current = asyncio.current_task(loop)
    rows = _cpp.task_tree_asyncio(
        _asyncio_tasks(loop), loop, current, b.codes.tagged, b.label, _cpp.unwrap_coro
    )
    b.task_ids = functools.cache(lambda: frozenset(id(row[0]) for row in rows))
    nodes, waits = b.nodes, b.waits
    states = _STATES
    placement: list[tuple[TaskNode, Any, Any]] = []  # (node, root scope, host task)
    scoped: list[tuple[TaskNode, tuple[Any, ...]]] = []
    for row in rows:
        (
            task, name, state_index, foreign, parent, scopes, root, host,
            texts, coroutine, location, innermost, core, marks,
        ) = row  # fmt: skip
        state = states[state_index]
        wait: WaitInfo | None = None
        idle: float | None = None
        if state is RUNNING:
            location = None  # its chain ends where it last awaited
        elif marks is None and core is not None:  # the common case, inline
            wait = waits.get((core[0], id(core[1])))
            if wait is None:
                wait = b.core_wait(core)
            idle = _parked_for(core)
        else:
            wait, idle = b.wait_of(state, innermost, core, marks)
            if wait is None and state is WAITING:
                waiter = task._fut_waiter
                wait = WaitInfo(WAIT_FUTURE, type(waiter).__name__, waiter)
        node = TaskNode(
            id(task), name, state, foreign, parent, coroutine, texts, location,
            (), wait, idle, [],
        )  # fmt: skip
        nodes[node.id] = node
        if root is not None:
            placement.append((node, root, host))
        if scopes:
            scoped.append((node, scopes))
    # Groups: tasks spawned into the same scope, under the task that entered it.
    groups: dict[int, GroupNode] = {}
    placed: set[int] = set()
    for node, root, host in placement:
        host_node = nodes.get(id(host)) if host is not None else None
        if host_node is None:
            continue
        group = groups.get(id(root))
        if group is None:
            group = GroupNode(id(root), None)
            groups[id(root)] = group
            host_node.groups.append(group)
        group.tasks.append(node)
        placed.add(node.id)
    # Scopes and group order, for the tasks that have scopes at all.
    for node, scopes in scoped:
        infos = tuple(
            b.asyncio_scope(s, id(s[0]) if id(s[0]) in groups else None) for s in scopes
        )
        node.scopes = infos
        if node.groups:
            order = {s.id: i for i, s in enumerate(infos)}
            node.groups.sort(key=lambda g: -order.get(g.id, -1))
            for group in node.groups:
                group.scope = next((s for s in infos if s.id == group.id), None)
    for group in groups.values():
        group.tasks.sort(key=_node_key)
    for node in nodes.values():
        wait = node.wait
        if wait is not None and wait.kind == WAIT_TASK_GROUP and not wait.holders:
            scope_id = wait.details.get("scope_id")
            group = groups.get(scope_id) if isinstance(scope_id, int) else None
            if group is not None:
                wait.holders = tuple(t.id for t in group.tasks)
    roots = sorted((n for i, n in nodes.items() if i not in placed), key=_node_key)
    return _finish(b, roots)


_node_key = operator.attrgetter("name", "id")


# --- Trio ---------------------------------------------------------------------


def _trio_tree() -> TaskTree:
    import trio

    b = _Builder("trio", trio.current_time())
    try:
        current = trio.lowlevel.current_task()
    except RuntimeError:  # a run_sync_soon callback (dump_on_signal): no task runs
        current = None
    root_row = _cpp.task_tree_trio(
        trio.lowlevel.current_root_task(),
        current,
        (*b.codes.tagged, b.codes.trio_child),
        b.label,
        len(b.codes.tagged),
    )

    def task_ids() -> frozenset[int]:  # every task, before their nodes exist
        ids: set[int] = set()
        pending = [root_row]
        while pending:
            row = pending.pop()
            ids.add(id(row[0]))
            for _, children in row[5]:
                pending.extend(children)
        return frozenset(ids)

    b.task_ids = functools.cache(task_ids)
    states, waits = _STATES, b.waits

    def build(row: tuple[Any, ...]) -> TaskNode:
        (
            task, name, state_index, parent, scopes, nurseries,
            texts, coroutine, location, innermost, core, marks,
        ) = row  # fmt: skip
        state = states[state_index]
        wait: WaitInfo | None = None
        idle: float | None = None
        if state is RUNNING:
            location = None  # its chain ends where it last awaited
        elif marks is None and core is not None:  # the common case, inline
            wait = waits.get((core[0], id(core[1])))
            if wait is None:
                wait = b.core_wait(core)
            idle = _parked_for(core)
        else:
            wait, idle = b.wait_of(state, innermost, core, marks)
            if wait is None and state is WAITING:
                wait = WaitInfo(WAIT_OTHER, type(innermost).__name__, innermost)
        node = TaskNode(
            id(task), name, state, False, parent, coroutine, texts, location,
            (), wait, idle, [],
        )  # fmt: skip
        b.nodes[node.id] = node
        if scopes:
            nursery_scopes = {id(n.cancel_scope): id(n) for n, _ in nurseries}
            infos = [b.trio_scope(s, nursery_scopes.get(id(s))) for s in scopes]
            # trio.sleep() waits in a scope of its own with the sleep's deadline.
            if (
                wait is not None
                and wait.kind == WAIT_SLEEP
                and infos[0].deadline == wait.until
                and not infos[0].shield
                and not infos[0].cancel_called
            ):
                del infos[0]
            node.scopes = tuple(infos)
        for nursery, children in nurseries:
            group_scope = next(
                (s for s in node.scopes if s.task_group == id(nursery)), None
            )
            group = GroupNode(id(nursery), group_scope)
            group.tasks = sorted(map(build, children), key=_node_key)
            node.groups.append(group)
        return node

    root_node = build(root_row)
    # Trio's own machinery (the init task, its system tasks) is left out:
    # the roots are the main task and the system tasks others started.
    internal = _internal_dirs()
    trio_dir = internal[-1] if len(internal) > 2 else None
    roots: list[TaskNode] = []
    pending = [root_node]
    while pending:
        node = pending.pop()
        chain_file = node.await_chain[0] if node.await_chain else ""
        if trio_dir is not None and trio_dir in chain_file:
            for group in node.groups:
                pending.extend(group.tasks)
        else:
            roots.append(node)
    roots.sort(key=_node_key)
    return _finish(b, roots)


def _walk(roots: list[TaskNode]) -> Iterator[TaskNode]:
    stack = list(reversed(roots))
    while stack:
        node = stack.pop()
        yield node
        for group in reversed(node.groups):
            stack.extend(reversed(group.tasks))


# --- deadlocks ----------------------------------------------------------------


def _finish(b: _Builder, roots: list[TaskNode]) -> TaskTree:
    return TaskTree(b.backend, b.now, roots, _find_deadlocks(b, roots))


def _find_deadlocks(b: _Builder, roots: list[TaskNode]) -> list[Deadlock]:
    # Tasks that can only be woken by other tasks.
    nodes = {
        i: n
        for i, n in b.nodes.items()
        if n.wait is not None
        and not n.wait.open
        and n.wait.holders
        and n.state is WAITING
    }
    stuck = set(nodes)
    # Greatest fixpoint: drop a task while something outside the stuck set can
    # end its wait (any holder, or every holder of a task group, not stuck).
    changed = True
    while changed:
        changed = False
        for i in list(stuck):
            wait = nodes[i].wait
            assert wait is not None
            held = [h in stuck for h in wait.holders]
            blocked = any(held) if wait.needs_all else all(held)
            if not blocked:
                stuck.discard(i)
                changed = True
    if not stuck:
        return []
    # Tree order, so that reports are stable; tasks left out of the tree
    # (Trio's own) are not reported.
    order = {node.id: k for k, node in enumerate(_walk(roots))}
    stuck &= order.keys()

    def edges(i: int) -> list[int]:
        wait = nodes[i].wait
        assert wait is not None
        return sorted((h for h in wait.holders if h in stuck), key=order.__getitem__)

    # One cycle per strongly connected part, starting at its first task in
    # tree order (so that reports are stable).
    deadlocks: list[Deadlock] = []
    seen: set[int] = set()
    for start in sorted(stuck, key=order.__getitem__):
        if start in seen:
            continue
        cycle = _cycle_from(start, edges)
        if cycle is None:
            continue
        seen.update(cycle)
        deadlocks.append(
            Deadlock(
                tuple(cycle), tuple(_step(nodes, cycle, k) for k in range(len(cycle)))
            )
        )
    return deadlocks


def _cycle_from(start: int, edges: Callable[[int], list[int]]) -> list[int] | None:
    """The shortest path from `start` back to itself, or None."""
    prev: dict[int, int] = {}
    frontier = [start]
    visited = {start}
    while frontier:
        nxt: list[int] = []
        for i in frontier:
            for j in edges(i):
                if j == start:
                    path = [i]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return path[::-1]
                if j not in visited:
                    visited.add(j)
                    prev[j] = i
                    nxt.append(j)
        frontier = nxt
    return None


def _step(nodes: dict[int, TaskNode], cycle: list[int], k: int) -> str:
    node = nodes[cycle[k]]
    target = nodes[cycle[(k + 1) % len(cycle)]]
    wait = node.wait
    assert wait is not None
    if wait.kind == WAIT_TASK_GROUP:
        what = f"waits for its task group's task {_label(target)}"
    else:
        holds = "holds" if wait.kind == WAIT_LOCK else "borrows from"
        what = (
            f"waits in {wait.description.split(' (')[0]}; {_label(target)} {holds} it"
        )
    return f"{_label(node)} {what}"


def _label(node: TaskNode, show_ids: bool = True) -> str:
    return f"{node.name!r} #{node.id}" if show_ids else repr(node.name)


# --- public functions ---------------------------------------------------------


def get_task_tree() -> TaskTree:
    """A snapshot of every task of the event loop running in this thread.

    Reads what exists anyway (no hot path records anything for it). Must be
    called from a task of the loop (or a callback running in its thread).

    :raises NoEventLoopError: outside any event loop
    """
    loop = _get_running_loop()
    if loop is None:
        from ._backend import current_backend

        current_backend()  # raises NoEventLoopError outside any loop
    # A snapshot allocates a few objects per task, none of them garbage: left
    # on, the cyclic collector would run over and over during it (and over
    # every task, coroutine and frame of the program), costing more than the
    # snapshot itself.
    collecting = gc.isenabled()
    gc.disable()
    try:
        return _asyncio_tree(loop) if loop is not None else _trio_tree()
    finally:
        if collecting:
            gc.enable()


def _fmt_seconds(value: float, show_times: bool) -> str:
    if not show_times:
        return "…s"
    return f"{value:.2f}s"


def _fmt_scope(scope: ScopeInfo, show_ids: bool, show_times: bool) -> str:
    parts = ["task group scope" if scope.task_group is not None else "cancel scope"]
    if show_ids:
        parts[0] += f" #{scope.id}"
    if scope.time_left is not None:
        if scope.time_left >= 0:
            parts.append(f"deadline in {_fmt_seconds(scope.time_left, show_times)}")
        else:
            parts.append(
                f"deadline passed {_fmt_seconds(-scope.time_left, show_times)} ago"
            )
    if scope.shield:
        parts.append("shielded")
    if scope.cancel_called:
        by = f" by {scope.cancelled_by}" if scope.cancelled_by else ""
        parts.append(f"cancelled{by}")
    return ", ".join(parts)


def _fmt_wait(
    node: TaskNode,
    labels: dict[int, str],
    tree: TaskTree,
    show_ids: bool,
    show_times: bool,
) -> str:
    wait = node.wait
    if wait is None:
        return ""
    text = wait.description
    if wait.kind == WAIT_SLEEP and wait.until is not None and wait.until != math.inf:
        text += f" +{_fmt_seconds(wait.until - tree.time, show_times)}"
    if wait.kind in (WAIT_LOCK, WAIT_LIMITER) and wait.holders:
        who = ", ".join(labels.get(h, "another owner") for h in wait.holders)
        text += f", held by {who}"
    if wait.kind == WAIT_TASK_GROUP:
        text = f"task group exit, {len(wait.holders)} task(s) left"
    if wait.running_for is not None:
        text += (
            f" (running for {_fmt_seconds(wait.running_for, show_times)} in its thread)"
        )
    return text


def format_task_tree(
    tree: TaskTree, *, show_ids: bool = True, show_times: bool = True
) -> str:
    """The tree as text, one line per task, scope and task group.

    :param show_ids: print the ids of tasks and scopes (off: stable output)
    :param show_times: print times (off: ``…s`` instead, stable output)
    """
    labels = {n.id: _label(n, show_ids) for n in tree.tasks()}
    lines = [f"Task tree: {len(labels)} task(s)"]

    def emit(node: TaskNode, depth: int) -> None:
        pad = "  " * depth
        head = f"{pad}task {labels[node.id]} {node.state}"
        if node.foreign:
            head += " (not spawned by anyio)"
        if node.location:
            head += f" in {node.location}()"
        wait = _fmt_wait(node, labels, tree, show_ids, show_times)
        if wait:
            head += f": {wait}"
        if node.idle is not None:
            head += f" (parked for {_fmt_seconds(node.idle, show_times)})"
        lines.append(head)
        for scope in node.scopes:
            lines.append(f"{pad}  - {_fmt_scope(scope, show_ids, show_times)}")
        for group in node.groups:
            gid = f" #{group.id}" if show_ids else ""
            lines.append(f"{pad}  task group{gid}:")
            for child in group.tasks:
                emit(child, depth + 2)

    for root in tree.roots:
        emit(root, 0)
    for deadlock in tree.deadlocks:
        lines.append(f"DEADLOCK between {len(deadlock.task_ids)} tasks:")
        for step in deadlock.steps:
            if not show_ids:
                step = _strip_ids(step)
            lines.append(f"  {step}")
    return "\n".join(lines) + "\n"


def _strip_ids(text: str) -> str:
    import re

    return re.sub(r" #\d+", "", text)


def print_task_tree(file: IO[str] | None = None) -> None:
    """Take a snapshot and write it as text to `file` (default: stdout)."""
    text = format_task_tree(get_task_tree())
    (file if file is not None else sys.stdout).write(text)


def dump_on_signal(signum: int, file: IO[str] | None = None) -> Callable[[], None]:
    """Write the task tree to `file` (default: ``sys.stderr``) whenever the
    process receives `signum`; for a process that hangs in production.

    Must be called from the event loop's thread, while it runs; the handler is
    installed with ``signal.signal`` and the dump runs in the loop thread
    between two steps (asyncio: a ``call_soon_threadsafe`` callback; Trio: a
    system task woken through the run's token). Returns a function that
    restores the previous handler.
    """
    loop = _get_running_loop()
    if loop is not None:

        def schedule() -> None:
            loop.call_soon_threadsafe(write)
    else:
        from ._backend import current_backend

        current_backend()
        import trio

        token = trio.lowlevel.current_trio_token()

        def schedule() -> None:
            token.run_sync_soon(write)

    def write() -> None:
        out = file if file is not None else sys.stderr
        try:
            out.write(format_task_tree(get_task_tree()))
            out.flush()
        except Exception as exc:  # a dump must never take the program down
            out.write(f"task tree dump failed: {exc!r}\n")

    def handler(signum: int, frame: types.FrameType | None) -> None:
        schedule()

    previous = signal.signal(signum, handler)

    def remove() -> None:
        signal.signal(signum, previous)

    return remove
