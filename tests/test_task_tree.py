"""anyio.lowlevel.get_task_tree(): scopes, waits, deadlocks, foreign tasks and
the signal dump, on every backend."""

from __future__ import annotations

import asyncio
import io
import math
import os
import signal
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import anyio
from anyio import (
    CancelScope,
    CapacityLimiter,
    Condition,
    Event,
    Lock,
    NoEventLoopError,
    Semaphore,
    create_memory_object_stream,
    create_task_group,
    from_thread,
    to_thread,
    wait_all_tasks_blocked,
)
from anyio.lowlevel import (
    TaskTree,
    checkpoint,
    dump_on_signal,
    format_task_tree,
    get_task_tree,
    print_task_tree,
)


async def snapshot_when_blocked() -> TaskTree:
    await wait_all_tasks_blocked()
    return get_task_tree()


def ids(tree: TaskTree) -> dict[str, int]:
    return {node.name: node.id for node in tree.tasks()}


@pytest.mark.anyio
async def test_scopes_innermost_first() -> None:
    event = Event()

    async def child() -> None:
        with CancelScope() as cancelled:
            cancelled.cancel("stop it")
            with anyio.move_on_after(100):
                with CancelScope(shield=True):
                    await event.wait()

    async with create_task_group() as tg:
        tg.start_soon(child, name="child")
        tree = await snapshot_when_blocked()
        node = tree.find("child")
        assert node.state == "waiting"
        assert node.wait is not None and node.wait.kind == "event"
        shield, timeout, cancelled = node.scopes
        assert shield.shield and not shield.cancel_called and shield.deadline is None
        assert not timeout.shield and timeout.deadline is not None
        assert timeout.time_left is not None and 0 < timeout.time_left <= 100
        assert cancelled.cancel_called and cancelled.cancelled_by == "stop it"
        assert tree.deadlocks == []
        event.set()


@pytest.mark.anyio
async def test_deadline_reached_reason() -> None:
    event = Event()

    async def child() -> None:
        with anyio.move_on_after(0):
            with CancelScope(shield=True):
                await event.wait()

    async with create_task_group() as tg:
        tg.start_soon(child, name="child")
        tree = await snapshot_when_blocked()
        (inner, outer) = tree.find("child").scopes
        assert inner.shield
        assert outer.cancel_called and outer.cancelled_by == "deadline"
        assert outer.time_left is not None and outer.time_left <= 0
        event.set()


@pytest.mark.anyio
async def test_task_group_structure() -> None:
    event = Event()

    async def leaf() -> None:
        await event.wait()

    async def middle() -> None:
        async with create_task_group() as inner:
            inner.start_soon(leaf, name="leaf1")
            inner.start_soon(leaf, name="leaf2")

    async with create_task_group() as tg:
        tg.start_soon(middle, name="middle")
        tree = await snapshot_when_blocked()
        middle_node = tree.find("middle")
        (group,) = middle_node.groups
        assert [t.name for t in group.tasks] == ["leaf1", "leaf2"]
        assert group.scope is not None and group.scope.task_group is not None
        assert middle_node.wait is not None and middle_node.wait.kind == "task_group"
        assert set(middle_node.wait.holders) == {t.id for t in group.tasks}
        assert all(t.parent_id == middle_node.id for t in group.tasks)
        me = next(n for n in tree.tasks() if n.state == "running")
        assert any(middle_node in g.tasks for g in me.groups)
        event.set()


@pytest.mark.anyio
async def test_wait_kinds() -> None:
    lock = Lock()
    semaphore = Semaphore(1)
    limiter = CapacityLimiter(1)
    condition = Condition()
    send, receive = create_memory_object_stream[int](0)
    _, empty = create_memory_object_stream[int](1)
    release = Event()
    # The core's park clock is the monotonic clock time.monotonic() reads.
    start = time.monotonic()

    async def hold_all() -> None:
        async with lock, semaphore, limiter:
            await release.wait()

    async def wait_condition() -> None:
        async with condition:
            await condition.wait()

    async with create_task_group() as tg:
        tg.start_soon(hold_all, name="holder")
        await wait_all_tasks_blocked()
        tg.start_soon(lock.acquire, name="lock")
        tg.start_soon(semaphore.acquire, name="semaphore")
        tg.start_soon(limiter.acquire, name="limiter")
        tg.start_soon(wait_condition, name="condition")
        tg.start_soon(send.send, 1, name="send")
        tg.start_soon(empty.receive, name="receive")
        tg.start_soon(anyio.sleep, 50, name="sleep")
        tg.start_soon(anyio.sleep_forever, name="forever")
        tree = await snapshot_when_blocked()
        task_ids = ids(tree)

        def wait_of(name: str) -> Any:
            node = tree.find(name)
            assert node.state == "waiting", node
            assert node.wait is not None
            return node.wait

        assert wait_of("holder").kind == "event"
        assert wait_of("holder").target is release
        assert wait_of("lock").kind == "lock"
        assert wait_of("lock").target is lock
        assert wait_of("lock").holders == (task_ids["holder"],)
        assert wait_of("semaphore").kind == "semaphore"
        assert wait_of("limiter").kind == "capacity_limiter"
        assert wait_of("limiter").holders == (task_ids["holder"],)
        assert wait_of("condition").kind == "condition"
        assert wait_of("condition").target is condition
        assert wait_of("send").kind == "memory_send"
        assert wait_of("send").target is send
        assert wait_of("receive").kind == "memory_receive"
        assert wait_of("sleep").kind == "sleep"
        until = wait_of("sleep").until
        assert until is not None and 0 < until - tree.time <= 50
        assert wait_of("forever").kind == "sleep"
        assert wait_of("forever").until == math.inf
        assert tree.deadlocks == []
        text = format_task_tree(tree)
        assert "Lock.acquire, held by 'holder'" in text
        # Parked in the core's primitives and streams: parked since a clock
        # reading taken when they parked, after `start`.
        elapsed = time.monotonic() - start
        parked = ("holder", "lock", "semaphore", "limiter", "condition", "send")
        for name in (*parked, "receive"):
            idle = tree.find(name).idle
            assert idle is not None and 0 <= idle <= elapsed, (name, idle)
        assert "Lock.acquire, held by 'holder' (parked for " in format_task_tree(
            tree, show_ids=False
        )
        later = get_task_tree().find("lock").idle
        assert later is not None and later >= tree.find("lock").idle  # type: ignore[operator]
        running = [node for node in tree.tasks() if node.state == "running"]
        assert running and all(node.idle is None for node in running)
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_ready_task_at_checkpoint() -> None:
    started = Event()

    async def spinner() -> None:
        started.set()
        while True:
            await checkpoint()

    async with create_task_group() as tg:
        tg.start_soon(spinner, name="spinner")
        await started.wait()
        node = get_task_tree().find("spinner")
        assert node.state == "ready"
        assert node.idle is None  # a checkpoint parks nowhere
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_thread_waits() -> None:
    in_thread = threading.Event()
    proceed = threading.Event()
    loop_event = Event()
    request_running = Event()

    def worker() -> None:
        in_thread.set()
        proceed.wait()

    async def answer_in_loop() -> None:
        request_running.set()
        await loop_event.wait()

    def asking_worker() -> None:
        from_thread.run(answer_in_loop)

    async with create_task_group() as tg:
        try:
            tg.start_soon(to_thread.run_sync, worker, name="blocking")
            tg.start_soon(to_thread.run_sync, asking_worker, name="asking")
            # The clock the worker reads; the tasks start their calls only
            # once this task awaits.
            start = time.monotonic()
            await to_thread.run_sync(in_thread.wait)
            # The asking thread's request is being served by the loop.
            await request_running.wait()
            await wait_all_tasks_blocked()
            tree = get_task_tree()
            blocking = tree.find("blocking").wait
            assert blocking is not None and blocking.kind == "to_thread"
            assert blocking.target is worker
            # How long the worker has run the call; the task is not parked in
            # a primitive.
            running_for = blocking.running_for
            assert running_for is not None
            assert 0 <= running_for <= time.monotonic() - start
            assert tree.find("blocking").idle is None
            assert "(running for " in format_task_tree(tree)
            assert "worker" in blocking.description
            assert "frame" in blocking.details
            asking = tree.find("asking").wait
            assert asking is not None and asking.kind == "to_thread"
            assert asking.details["from_thread"] == "run"
        finally:
            # Let both threads finish even when an assertion failed: a worker
            # thread cannot be cancelled, and the task group waits for it.
            proceed.set()
            loop_event.set()


@pytest.mark.anyio
async def test_lock_order_deadlock() -> None:
    first, second = Lock(), Lock()
    both_hold = Event()
    holding = 0

    async def take(a: Lock, b: Lock) -> None:
        nonlocal holding
        async with a:
            holding += 1
            if holding == 2:
                both_hold.set()
            await both_hold.wait()
            async with b:
                pass

    async with create_task_group() as tg:
        tg.start_soon(take, first, second, name="a")
        tg.start_soon(take, second, first, name="b")
        tree = await snapshot_when_blocked()
        task_ids = ids(tree)
        (deadlock,) = tree.deadlocks
        assert set(deadlock.task_ids) == {task_ids["a"], task_ids["b"]}
        assert deadlock.task_ids[0] == task_ids["a"]  # tree order
        assert "waits in Lock.acquire" in deadlock.steps[0]
        assert "DEADLOCK between 2 tasks" in format_task_tree(tree)
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_limiter_deadlock() -> None:
    first, second = CapacityLimiter(1), CapacityLimiter(1)
    both_hold = Event()
    holding = 0

    async def take(a: CapacityLimiter, b: CapacityLimiter) -> None:
        nonlocal holding
        async with a:
            holding += 1
            if holding == 2:
                both_hold.set()
            await both_hold.wait()
            async with b:
                pass

    async with create_task_group() as tg:
        tg.start_soon(take, first, second, name="a")
        tg.start_soon(take, second, first, name="b")
        tree = await snapshot_when_blocked()
        (deadlock,) = tree.deadlocks
        assert {tree.find("a").id, tree.find("b").id} == set(deadlock.task_ids)
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_limiter_with_foreign_borrower_is_not_a_deadlock() -> None:
    limiter = CapacityLimiter(1)
    limiter.acquire_on_behalf_of_nowait("someone else")

    async with create_task_group() as tg:
        tg.start_soon(limiter.acquire, name="waiter")
        tree = await snapshot_when_blocked()
        wait = tree.find("waiter").wait
        assert wait is not None and wait.kind == "capacity_limiter" and wait.open
        assert tree.deadlocks == []
        tg.cancel_scope.cancel()
    limiter.release_on_behalf_of("someone else")


@pytest.mark.anyio
async def test_task_group_waiting_on_own_child_is_a_deadlock() -> None:
    lock = Lock()

    async def host() -> None:
        async with lock:
            async with create_task_group() as inner:
                inner.start_soon(lock.acquire, name="child")

    async with create_task_group() as tg:
        tg.start_soon(host, name="host")
        tree = await snapshot_when_blocked()
        host_node, child_node = tree.find("host"), tree.find("child")
        assert host_node.wait is not None and host_node.wait.kind == "task_group"
        (deadlock,) = tree.deadlocks
        assert deadlock.task_ids == (host_node.id, child_node.id)
        assert "waits for its task group's task" in deadlock.steps[0]
        tg.cancel_scope.cancel()


@pytest.mark.anyio
async def test_no_deadlock_when_holder_waits_on_an_event() -> None:
    lock = Lock()
    event = Event()

    async def holder() -> None:
        async with lock:
            await event.wait()

    async with create_task_group() as tg:
        tg.start_soon(holder, name="holder")
        await wait_all_tasks_blocked()
        tg.start_soon(lock.acquire, name="waiter")
        tree = await snapshot_when_blocked()
        assert tree.deadlocks == []
        event.set()


@pytest.mark.anyio
async def test_many_parked_tasks() -> None:
    event = Event()
    count = 10_000
    async with create_task_group() as tg:
        for _ in range(count):
            tg.start_soon(event.wait)
        tree = await snapshot_when_blocked()
        waiting = [
            n for n in tree.tasks() if n.wait is not None and n.wait.kind == "event"
        ]
        assert len(waiting) == count
        event.set()


@pytest.mark.anyio
async def test_text_form_without_ids_and_times() -> None:
    async with create_task_group() as tg:
        tg.start_soon(anyio.sleep, 30, name="sleeper")
        tree = await snapshot_when_blocked()
        text = format_task_tree(tree, show_ids=False, show_times=False)
        assert "#" not in text
        assert "task 'sleeper' waiting: sleep until +…s (parked for …s)" in text
        out = io.StringIO()
        print_task_tree(out)
        assert "'sleeper' #" in out.getvalue()
        tg.cancel_scope.cancel()


def test_outside_event_loop() -> None:
    with pytest.raises(NoEventLoopError):
        get_task_tree()


@pytest.mark.anyio
@pytest.mark.skipif(not hasattr(signal, "SIGUSR1"), reason="needs SIGUSR1")
async def test_dump_on_signal() -> None:
    out = io.StringIO()
    before = signal.getsignal(signal.SIGUSR1)
    remove = dump_on_signal(signal.SIGUSR1, out)
    try:
        async with create_task_group() as tg:
            tg.start_soon(anyio.sleep_forever, name="stuck")
            await wait_all_tasks_blocked()
            os.kill(os.getpid(), signal.SIGUSR1)
            # The dump is queued to the loop by the signal handler; it runs
            # within a few loop passes.
            for _ in range(1000):
                if out.getvalue():
                    break
                await anyio.sleep(0.01)
            tg.cancel_scope.cancel()
    finally:
        remove()
    assert signal.getsignal(signal.SIGUSR1) is before
    assert "task 'stuck'" in out.getvalue()
    assert "sleep forever" in out.getvalue()


# --- tasks anyio did not create (plain asyncio) ------------------------------


LOOPS = ["asyncio", "uvloop"]


@pytest.fixture(params=LOOPS)
def plain_run(
    request: pytest.FixtureRequest,
) -> Callable[[Callable[[], Awaitable[Any]]], Any]:
    def runner(func: Callable[[], Awaitable[Any]]) -> Any:
        async def main() -> Any:
            return await func()

        if request.param == "asyncio":
            return asyncio.run(main())
        uvloop = pytest.importorskip("uvloop")
        loop = uvloop.new_event_loop()
        try:
            return loop.run_until_complete(main())
        finally:
            loop.close()

    return runner


def test_foreign_tasks(
    plain_run: Callable[[Callable[[], Awaitable[Any]]], Any],
) -> None:
    async def body() -> TaskTree:
        event = Event()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()

        async def in_scope() -> None:
            with anyio.move_on_after(100):
                await event.wait()

        async def on_future() -> None:
            await future

        tasks = [
            asyncio.get_running_loop().create_task(in_scope(), name="scoped"),
            asyncio.get_running_loop().create_task(on_future(), name="plain"),
            asyncio.get_running_loop().create_task(asyncio.sleep(60), name="sleeping"),
        ]
        for _ in range(5):
            await asyncio.sleep(0)
        tree = get_task_tree()
        event.set()
        future.set_result(None)
        tasks[2].cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return tree

    tree = plain_run(body)
    scoped, plain, sleeping = (tree.find(n) for n in ("scoped", "plain", "sleeping"))
    for node in (scoped, plain, sleeping):
        assert node.foreign and node.state == "waiting"
        assert node in tree.roots
    assert scoped.wait is not None and scoped.wait.kind == "event"
    (scope,) = scoped.scopes
    assert scope.deadline is not None
    assert scoped.coroutine.endswith("in_scope")
    # Parked in the core's Event: known; on a plain future: unknown.
    assert scoped.idle is not None and scoped.idle >= 0
    assert plain.idle is None
    assert plain.wait is not None and plain.wait.kind == "future"
    assert plain.location is not None and plain.location.endswith("on_future")
    assert sleeping.wait is not None and sleeping.wait.kind == "sleep"
    assert any("sleep" in step for step in sleeping.await_chain)
    assert "(not spawned by anyio)" in format_task_tree(tree)
