"""Hypothesis state machines: random acquire/release/cancel/notify sequences
against each primitive, checked step by step against a plain Python model.

The primitive lives in an event loop running in a helper thread (one per
example, on each backend). Every step is one command executed inside that loop,
followed by settle() (wait_all_tasks_blocked() without its 0.1 s settle
periods), so the observed state is settled and deterministic when the model
compares it.
"""

from __future__ import annotations

import asyncio
import inspect
import queue
import threading
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)
from tests._backends import BACKEND_IDS, BACKENDS

import anyio
from anyio import (
    CancelScope,
    CapacityLimiter,
    Condition,
    Event,
    Lock,
    Semaphore,
    WouldBlock,
    create_task_group,
)


async def settle() -> None:
    """Wait until every other task waits. Each step here is work on the loop
    only, so yielding until then is enough; wait_all_tasks_blocked() would add
    0.1 s whenever a woken task needs more than one step."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        import trio.testing

        await trio.testing.wait_all_tasks_blocked()
        return

    this_task = asyncio.current_task()
    while any(
        task is not this_task and (task._fut_waiter is None or task._fut_waiter.done())  # type: ignore[attr-defined]
        for task in asyncio.all_tasks()
    ):
        await asyncio.sleep(0)


SETTINGS = settings(
    max_examples=20,
    stateful_step_count=15,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)


class Driver:
    """An event loop in a thread that runs one command at a time."""

    def __init__(self, backend: str, options: dict[str, Any]) -> None:
        self._commands: queue.Queue[Callable[[Any], Any] | None] = queue.Queue()
        self._results: queue.Queue[tuple[bool, Any]] = queue.Queue()
        self.ns = SimpleNamespace()
        self._thread = threading.Thread(
            target=self._run, args=(backend, options), daemon=True
        )
        self._thread.start()

    def _run(self, backend: str, options: dict[str, Any]) -> None:
        try:
            anyio.run(self._main, backend=backend, backend_options=options)
        except BaseException as exc:  # report a crashed loop to the test
            self._results.put((False, exc))

    async def _main(self) -> None:
        async with create_task_group() as tg:
            self.ns.tg = tg
            while True:
                try:
                    command = self._commands.get_nowait()
                except queue.Empty:
                    await anyio.sleep(0.0002)
                    continue
                if command is None:
                    break
                try:
                    result = command(self.ns)
                    if inspect.isawaitable(result):
                        result = await result
                    await settle()
                except Exception as exc:
                    self._results.put((False, exc))
                else:
                    self._results.put((True, result))
            tg.cancel_scope.cancel()

    def call(self, command: Callable[[Any], Any]) -> Any:
        self._commands.put(command)
        ok, value = self._results.get(timeout=20)
        if not ok:
            raise value
        return value

    def close(self) -> None:
        self._commands.put(None)
        self._thread.join(20)
        assert not self._thread.is_alive()


# --- Lock, Semaphore, CapacityLimiter -----------------------------------------


class PoolModel:
    """Tokens handed out oldest waiter first; a cancelled holder gives its
    token back, a cancelled waiter just leaves the queue."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.holders: list[object] = []
        self.waiting: list[object] = []

    def _grant(self) -> None:
        while self.waiting and len(self.holders) < self.capacity:
            self.holders.append(self.waiting.pop(0))

    def can_take(self) -> bool:
        return not self.waiting and len(self.holders) < self.capacity

    def acquire(self, who: object) -> None:
        self.waiting.append(who)
        self._grant()

    def release(self, who: object) -> None:
        self.holders.remove(who)
        self._grant()

    def cancel(self, who: object) -> None:
        if who in self.waiting:
            self.waiting.remove(who)
        else:
            self.release(who)

    def set_capacity(self, capacity: int) -> None:
        self.capacity = capacity
        self._grant()


async def pool_worker(ns: Any, wid: int) -> None:
    w = ns.workers[wid]
    with w.scope:
        async with ns.prim:
            w.holding = True
            try:
                await w.release.wait()
            finally:
                w.holding = False


class PoolMachine(RuleBasedStateMachine):
    backend = "asyncio"

    def __init__(self) -> None:
        super().__init__()
        self.driver: Driver | None = None
        self.next_id = 0

    @initialize(
        kind=st.sampled_from(["lock", "semaphore", "limiter"]),
        capacity=st.integers(1, 3),
        fast=st.booleans(),
    )
    def setup(self, kind: str, capacity: int, fast: bool) -> None:
        if kind == "lock":
            capacity = 1
        self.kind = kind
        self.model = PoolModel(capacity)
        self.driver = Driver(*BACKENDS[self.backend])

        def make(ns: Any) -> None:
            if kind == "lock":
                ns.prim = Lock(fast_acquire=fast)
            elif kind == "semaphore":
                ns.prim = Semaphore(capacity, fast_acquire=fast)
            else:
                ns.prim = CapacityLimiter(capacity)
            ns.workers = {}
            ns.nowait = []

        self.driver.call(make)

    def _worker_holders(self) -> list[int]:
        return [h for h in self.model.holders if isinstance(h, int)]

    @rule()
    def acquire(self) -> None:
        assert self.driver
        wid = self.next_id
        self.next_id += 1
        self.model.acquire(wid)

        def start(ns: Any) -> None:
            ns.workers[wid] = SimpleNamespace(
                scope=CancelScope(), release=Event(), holding=False
            )
            ns.tg.start_soon(pool_worker, ns, wid)

        self.driver.call(start)

    @precondition(lambda self: self.driver and self.kind != "lock")
    @rule()
    def acquire_nowait(self) -> None:
        assert self.driver
        name = f"nowait-{self.next_id}"
        self.next_id += 1
        expect = self.model.can_take()
        if expect:
            self.model.holders.append(name)

        def take(ns: Any) -> bool:
            try:
                if self.kind == "limiter":
                    ns.prim.acquire_on_behalf_of_nowait(name)
                else:
                    ns.prim.acquire_nowait()
            except WouldBlock:
                return False
            ns.nowait.append(name)
            return True

        assert self.driver.call(take) is expect

    @precondition(lambda self: self.driver and self.model.holders)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        assert self.driver
        who = data.draw(st.sampled_from(self.model.holders))
        self.model.release(who)

        def give_back(ns: Any) -> None:
            if isinstance(who, int):
                ns.workers[who].release.set()
            elif self.kind == "limiter":
                ns.prim.release_on_behalf_of(who)
                ns.nowait.remove(who)
            else:
                ns.prim.release()
                ns.nowait.remove(who)

        self.driver.call(give_back)

    @precondition(
        lambda self: self.driver and (self.model.waiting or self._worker_holders())
    )
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        assert self.driver
        wid = data.draw(st.sampled_from(self.model.waiting + self._worker_holders()))
        self.model.cancel(wid)
        self.driver.call(lambda ns: ns.workers[wid].scope.cancel())

    @precondition(
        lambda self: self.driver and self._worker_holders() and self.model.waiting
    )
    @rule(data=st.data())
    def release_then_cancel_next(self, data: st.DataObject) -> None:
        # The next waiter is granted the token and cancelled before it runs:
        # it must pass the token on, not keep or lose it.
        assert self.driver
        holder = data.draw(st.sampled_from(self._worker_holders()))
        nxt = self.model.waiting[0]
        self.model.release(holder)
        self.model.cancel(nxt)

        def both(ns: Any) -> None:
            ns.workers[holder].release.set()
            ns.workers[nxt].scope.cancel()

        self.driver.call(both)

    @precondition(lambda self: self.driver and self.kind == "limiter")
    @rule(total=st.integers(0, 4))
    def set_total(self, total: int) -> None:
        assert self.driver
        self.model.set_capacity(total)

        def change(ns: Any) -> None:
            ns.prim.total_tokens = total

        self.driver.call(change)

    @invariant()
    def matches_model(self) -> None:
        if self.driver is None:
            return

        def observe(ns: Any) -> tuple[Any, ...]:
            holders = sorted(w for w, s in ns.workers.items() if s.holding)
            stats = ns.prim.statistics()
            if self.kind == "lock":
                extra: object = ns.prim.locked()
            elif self.kind == "semaphore":
                extra = ns.prim.value
            else:
                extra = ns.prim.borrowed_tokens
            return holders, sorted(ns.nowait), stats.tasks_waiting, extra

        holders, nowait, waiting, extra = self.driver.call(observe)
        assert holders == sorted(self._worker_holders())
        assert nowait == sorted(h for h in self.model.holders if isinstance(h, str))
        assert waiting == len(self.model.waiting)
        if self.kind == "lock":
            assert extra is bool(self.model.holders)
        elif self.kind == "semaphore":
            assert extra == self.model.capacity - len(self.model.holders)
        else:
            assert extra == len(self.model.holders)

    def teardown(self) -> None:
        if self.driver is not None:
            self.driver.close()


# --- Event ----------------------------------------------------------------------


async def event_worker(ns: Any, wid: int) -> None:
    with ns.scopes[wid]:
        await ns.event.wait()
        ns.woken.add(wid)


class EventMachine(RuleBasedStateMachine):
    backend = "asyncio"

    def __init__(self) -> None:
        super().__init__()
        self.driver = Driver(*BACKENDS[self.backend])
        self.next_id = 0
        self.is_set = False
        self.waiting: list[int] = []
        self.woken: set[int] = set()

        def make(ns: Any) -> None:
            ns.event = Event()
            ns.scopes = {}
            ns.woken = set()

        self.driver.call(make)

    @rule()
    def wait(self) -> None:
        wid = self.next_id
        self.next_id += 1
        if self.is_set:
            self.woken.add(wid)
        else:
            self.waiting.append(wid)

        def start(ns: Any) -> None:
            ns.scopes[wid] = CancelScope()
            ns.tg.start_soon(event_worker, ns, wid)

        self.driver.call(start)

    @precondition(lambda self: self.waiting)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        wid = data.draw(st.sampled_from(self.waiting))
        self.waiting.remove(wid)
        self.driver.call(lambda ns: ns.scopes[wid].cancel())

    @rule(cancel_first=st.booleans())
    def set(self, cancel_first: bool) -> None:
        # A waiter cancelled in the same step as the set() stays cancelled if
        # the cancellation came first.
        victim = self.waiting[0] if cancel_first and self.waiting else None
        if victim is not None:
            self.waiting.remove(victim)
        self.is_set = True
        self.woken.update(self.waiting)
        self.waiting.clear()

        def do(ns: Any) -> None:
            if victim is not None:
                ns.scopes[victim].cancel()
            ns.event.set()

        self.driver.call(do)

    @invariant()
    def matches_model(self) -> None:
        def observe(ns: Any) -> tuple[Any, ...]:
            return (
                sorted(ns.woken),
                ns.event.statistics().tasks_waiting,
                ns.event.is_set(),
            )

        assert self.driver.call(observe) == (
            sorted(self.woken),
            len(self.waiting),
            self.is_set,
        )

    def teardown(self) -> None:
        self.driver.close()


# --- Condition ----------------------------------------------------------------------


async def condition_worker(ns: Any, wid: int) -> None:
    with ns.scopes[wid]:
        async with ns.cond:
            await ns.cond.wait()
            ns.woken.add(wid)


class ConditionMachine(RuleBasedStateMachine):
    backend = "asyncio"

    def __init__(self) -> None:
        super().__init__()
        self.driver = Driver(*BACKENDS[self.backend])
        self.next_id = 0
        self.waiting: list[int] = []
        self.woken: set[int] = set()

        def make(ns: Any) -> None:
            ns.cond = Condition()
            ns.scopes = {}
            ns.woken = set()

        self.driver.call(make)

    @rule()
    def wait(self) -> None:
        wid = self.next_id
        self.next_id += 1
        self.waiting.append(wid)

        def start(ns: Any) -> None:
            ns.scopes[wid] = CancelScope()
            ns.tg.start_soon(condition_worker, ns, wid)

        self.driver.call(start)

    @precondition(lambda self: self.waiting)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        wid = data.draw(st.sampled_from(self.waiting))
        self.waiting.remove(wid)
        self.driver.call(lambda ns: ns.scopes[wid].cancel())

    @rule(n=st.integers(0, 3), cancel_first=st.booleans())
    def notify(self, n: int, cancel_first: bool) -> None:
        # With cancel_first, the oldest waiter is cancelled in the same step
        # it is notified: the notification must move on to the next one.
        victim = self.waiting[0] if cancel_first and self.waiting else None
        if victim is not None:
            self.waiting.remove(victim)
        self.woken.update(self.waiting[:n])
        del self.waiting[:n]

        async def do(ns: Any) -> None:
            async with ns.cond:
                if victim is not None:
                    ns.scopes[victim].cancel()
                ns.cond.notify(n)

        self.driver.call(do)

    @rule()
    def notify_all(self) -> None:
        self.woken.update(self.waiting)
        self.waiting.clear()

        async def do(ns: Any) -> None:
            async with ns.cond:
                ns.cond.notify_all()

        self.driver.call(do)

    @invariant()
    def matches_model(self) -> None:
        def observe(ns: Any) -> tuple[Any, ...]:
            stats = ns.cond.statistics()
            return sorted(ns.woken), stats.tasks_waiting, stats.lock_statistics.locked

        assert self.driver.call(observe) == (
            sorted(self.woken),
            len(self.waiting),
            False,
        )

    def teardown(self) -> None:
        self.driver.close()


def _suffix(backend_id: str) -> str:
    return backend_id.replace("+", "_")  # "asyncio+uvloop" is no identifier


def _for_backend(machine: type[RuleBasedStateMachine], backend: str) -> Any:
    cls = type(
        f"{machine.__name__}_{_suffix(backend)}", (machine,), {"backend": backend}
    )
    cls.TestCase.settings = SETTINGS
    return cls.TestCase


for _backend in BACKEND_IDS:
    for _machine in (PoolMachine, EventMachine, ConditionMachine):
        globals()[f"Test{_machine.__name__}_{_suffix(_backend)}"] = _for_backend(
            _machine, _backend
        )
