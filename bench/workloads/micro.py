"""Micro workloads: one primitive operation each, in a tight loop.

Each anyio body uses only the public anyio API; its raw twins do the nearest
equivalent thing with asyncio or Trio alone, and they name that in their label.
"""

from __future__ import annotations

import collections
import concurrent.futures
from typing import Any

from ._common import noop, noop_sync, now
from ._registry import Workload, register

Result = tuple[float, int]

# -- checkpoint ----------------------------------------------------------------


async def anyio_checkpoint(n: int) -> Result:
    from anyio.lowlevel import checkpoint

    t0 = now()
    for _ in range(n):
        await checkpoint()
    return now() - t0, n


async def asyncio_sleep0(n: int) -> Result:
    import asyncio

    t0 = now()
    for _ in range(n):
        await asyncio.sleep(0)
    return now() - t0, n


async def trio_checkpoint(n: int) -> Result:
    import trio

    t0 = now()
    for _ in range(n):
        await trio.lowlevel.checkpoint()
    return now() - t0, n


register(
    Workload(
        name="checkpoint",
        title="checkpoint()",
        group="micro",
        kind="time",
        sizes=(2_000, 30_000),
        requires=("lowlevel.checkpoint",),
        anyio=anyio_checkpoint,
        raw_asyncio=asyncio_sleep0,
        raw_asyncio_label="asyncio.sleep(0)",
        raw_trio=trio_checkpoint,
        raw_trio_label="trio.lowlevel.checkpoint()",
    )
)

# -- cancel scope --------------------------------------------------------------


async def anyio_cancel_scope(n: int) -> Result:
    from anyio import CancelScope

    t0 = now()
    for _ in range(n):
        with CancelScope():
            pass
    return now() - t0, n


async def asyncio_timeout_none(n: int) -> Result:
    import asyncio

    t0 = now()
    for _ in range(n):
        async with asyncio.timeout(None):
            pass
    return now() - t0, n


async def trio_cancel_scope(n: int) -> Result:
    import trio

    t0 = now()
    for _ in range(n):
        with trio.CancelScope():
            pass
    return now() - t0, n


register(
    Workload(
        name="cancel_scope",
        title="with CancelScope(): pass",
        group="micro",
        kind="time",
        sizes=(2_000, 30_000),
        requires=("CancelScope",),
        anyio=anyio_cancel_scope,
        raw_asyncio=asyncio_timeout_none,
        raw_asyncio_label="asyncio.timeout(None)",
        raw_trio=trio_cancel_scope,
        raw_trio_label="trio.CancelScope()",
    )
)

# -- fail_after + checkpoint ---------------------------------------------------


async def anyio_fail_after(n: int) -> Result:
    from anyio import fail_after
    from anyio.lowlevel import checkpoint

    t0 = now()
    for _ in range(n):
        with fail_after(10):
            await checkpoint()
    return now() - t0, n


async def asyncio_timeout_sleep0(n: int) -> Result:
    import asyncio

    t0 = now()
    for _ in range(n):
        async with asyncio.timeout(10):
            await asyncio.sleep(0)
    return now() - t0, n


async def trio_fail_after(n: int) -> Result:
    import trio

    t0 = now()
    for _ in range(n):
        with trio.fail_after(10):
            await trio.lowlevel.checkpoint()
    return now() - t0, n


register(
    Workload(
        name="fail_after",
        title="with fail_after(10): await checkpoint()",
        group="micro",
        kind="time",
        sizes=(1_000, 10_000),
        requires=("fail_after", "lowlevel.checkpoint"),
        anyio=anyio_fail_after,
        raw_asyncio=asyncio_timeout_sleep0,
        raw_asyncio_label="asyncio.timeout(10) + sleep(0)",
        raw_trio=trio_fail_after,
        raw_trio_label="trio.fail_after(10) + checkpoint()",
    )
)

# -- move_on_after(0) firing -------------------------------------------------------


async def anyio_move_on_0(n: int) -> Result:
    from anyio import move_on_after
    from anyio.lowlevel import checkpoint

    t0 = now()
    for _ in range(n):
        with move_on_after(0):
            await checkpoint()
    return now() - t0, n


async def asyncio_timeout_0(n: int) -> Result:
    import asyncio

    t0 = now()
    for _ in range(n):
        try:
            async with asyncio.timeout(0):
                await asyncio.sleep(0)
        except TimeoutError:
            pass
    return now() - t0, n


async def trio_move_on_0(n: int) -> Result:
    import trio

    t0 = now()
    for _ in range(n):
        with trio.move_on_after(0):
            await trio.lowlevel.checkpoint()
    return now() - t0, n


register(
    Workload(
        name="move_on_0",
        title="with move_on_after(0): await checkpoint(), the deadline firing",
        group="micro",
        kind="time",
        sizes=(1_000, 10_000),
        requires=("move_on_after", "lowlevel.checkpoint"),
        anyio=anyio_move_on_0,
        raw_asyncio=asyncio_timeout_0,
        raw_asyncio_label="asyncio.timeout(0) + sleep(0), TimeoutError caught",
        raw_trio=trio_move_on_0,
        raw_trio_label="trio.move_on_after(0) + checkpoint()",
    )
)

# -- memory stream throughput --------------------------------------------------


async def anyio_stream(n: int) -> Result:
    import anyio

    send, receive = anyio.create_memory_object_stream(100)

    async def producer() -> None:
        async with send:
            for i in range(n):
                await send.send(i)

    t0 = now()
    async with anyio.create_task_group() as tg:
        tg.start_soon(producer)
        async with receive:
            async for _ in receive:
                pass
    return now() - t0, n


async def asyncio_queue(n: int) -> Result:
    import asyncio

    queue: asyncio.Queue[int | None] = asyncio.Queue(100)

    async def producer() -> None:
        for i in range(n):
            await queue.put(i)
        await queue.put(None)

    t0 = now()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(producer())
        while await queue.get() is not None:
            pass
    return now() - t0, n


async def trio_channel(n: int) -> Result:
    import trio

    send, receive = trio.open_memory_channel(100)

    async def producer() -> None:
        async with send:
            for i in range(n):
                await send.send(i)

    t0 = now()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        async with receive:
            async for _ in receive:
                pass
    return now() - t0, n


register(
    Workload(
        name="stream",
        title="memory stream (buffer 100), producer->consumer, per item",
        group="micro",
        kind="time",
        sizes=(2_000, 20_000),
        requires=("create_memory_object_stream", "create_task_group"),
        anyio=anyio_stream,
        raw_asyncio=asyncio_queue,
        raw_asyncio_label="asyncio.Queue(100)",
        raw_trio=trio_channel,
        raw_trio_label="trio memory channel (100)",
    )
)

# -- send_nowait + receive_nowait ----------------------------------------------


async def anyio_nowait_pair(n: int) -> Result:
    import anyio

    send, receive = anyio.create_memory_object_stream(1)
    send_nowait, receive_nowait = send.send_nowait, receive.receive_nowait
    t0 = now()
    for i in range(n):
        send_nowait(i)
        receive_nowait()
    elapsed = now() - t0
    send.close()
    receive.close()
    return elapsed, n


async def deque_pair(n: int) -> Result:
    queue: collections.deque[int] = collections.deque()
    append, popleft = queue.append, queue.popleft
    t0 = now()
    for i in range(n):
        append(i)
        popleft()
    return now() - t0, n


async def trio_nowait_pair(n: int) -> Result:
    import trio

    send, receive = trio.open_memory_channel(1)
    send_nowait, receive_nowait = send.send_nowait, receive.receive_nowait
    t0 = now()
    for i in range(n):
        send_nowait(i)
        receive_nowait()
    elapsed = now() - t0
    send.close()
    receive.close()
    return elapsed, n


register(
    Workload(
        name="nowait_pair",
        title="send_nowait + receive_nowait pair",
        group="micro",
        kind="time",
        sizes=(20_000, 300_000),
        requires=("create_memory_object_stream",),
        anyio=anyio_nowait_pair,
        raw_asyncio=deque_pair,
        raw_asyncio_label="deque append + popleft",
        raw_trio=trio_nowait_pair,
        raw_trio_label="trio channel send_nowait + receive_nowait",
    )
)

# -- uncontended limiter / lock / semaphore -------------------------------------
# anyio's acquire is a checkpoint, so the asyncio twin adds one sleep(0).


def _anyio_async_with(factory_name: str, *args: Any) -> Any:
    async def body(n: int) -> Result:
        import anyio

        primitive = getattr(anyio, factory_name)(*args)
        t0 = now()
        for _ in range(n):
            async with primitive:
                pass
        return now() - t0, n

    return body


def _asyncio_async_with_yield(factory_name: str, *args: Any) -> Any:
    async def body(n: int) -> Result:
        import asyncio

        primitive = getattr(asyncio, factory_name)(*args)
        sleep = asyncio.sleep
        t0 = now()
        for _ in range(n):
            async with primitive:
                pass
            await sleep(0)
        return now() - t0, n

    return body


def _trio_async_with(factory_name: str, *args: Any) -> Any:
    async def body(n: int) -> Result:
        import trio

        primitive = getattr(trio, factory_name)(*args)
        t0 = now()
        for _ in range(n):
            async with primitive:
                pass
        return now() - t0, n

    return body


for _name, _factory, _args, _asyncio_factory, _title in (
    (
        "limiter",
        "CapacityLimiter",
        (10,),
        "Semaphore",
        "async with CapacityLimiter(10), uncontended",
    ),
    ("lock", "Lock", (), "Lock", "async with Lock(), uncontended"),
    (
        "semaphore",
        "Semaphore",
        (5,),
        "Semaphore",
        "async with Semaphore(5), uncontended",
    ),
):
    register(
        Workload(
            name=_name,
            title=_title,
            group="micro",
            kind="time",
            sizes=(1_000, 15_000),
            requires=(_factory,),
            anyio=_anyio_async_with(_factory, *_args),
            raw_asyncio=_asyncio_async_with_yield(_asyncio_factory, *_args),
            raw_asyncio_label=f"asyncio.{_asyncio_factory}({', '.join(map(str, _args))}) + sleep(0)",
            raw_trio=_trio_async_with(_factory, *_args),
            raw_trio_label=f"trio.{_factory}({', '.join(map(str, _args))})",
        )
    )

# -- contended limiter -----------------------------------------------------------

CONTENDING_TASKS = 1_000


async def anyio_contended(n: int) -> Result:
    import anyio
    from anyio.lowlevel import checkpoint

    tasks = min(CONTENDING_TASKS, n)
    rounds = max(1, n // tasks)
    limiter = anyio.CapacityLimiter(10)

    async def worker() -> None:
        for _ in range(rounds):
            async with limiter:
                await checkpoint()

    t0 = now()
    async with anyio.create_task_group() as tg:
        for _ in range(tasks):
            tg.start_soon(worker)
    return now() - t0, tasks * rounds


async def asyncio_contended(n: int) -> Result:
    import asyncio

    tasks = min(CONTENDING_TASKS, n)
    rounds = max(1, n // tasks)
    semaphore = asyncio.Semaphore(10)

    async def worker() -> None:
        for _ in range(rounds):
            async with semaphore:
                await asyncio.sleep(0)

    t0 = now()
    async with asyncio.TaskGroup() as tg:
        for _ in range(tasks):
            tg.create_task(worker())
    return now() - t0, tasks * rounds


async def trio_contended(n: int) -> Result:
    import trio

    tasks = min(CONTENDING_TASKS, n)
    rounds = max(1, n // tasks)
    limiter = trio.CapacityLimiter(10)

    async def worker() -> None:
        for _ in range(rounds):
            async with limiter:
                await trio.lowlevel.checkpoint()

    t0 = now()
    async with trio.open_nursery() as nursery:
        for _ in range(tasks):
            nursery.start_soon(worker)
    return now() - t0, tasks * rounds


register(
    Workload(
        name="limiter_contended",
        title="1,000 tasks on CapacityLimiter(10), per acquisition",
        group="micro",
        kind="time",
        sizes=(200, 5_000),
        requires=("CapacityLimiter", "create_task_group", "lowlevel.checkpoint"),
        anyio=anyio_contended,
        raw_asyncio=asyncio_contended,
        raw_asyncio_label="asyncio.Semaphore(10) + sleep(0), TaskGroup",
        raw_trio=trio_contended,
        raw_trio_label="trio.CapacityLimiter(10) + checkpoint()",
    )
)

# -- Event ping-pong ---------------------------------------------------------------
# One operation: set an Event another task waits on, then wait for its reply.
# Events are one-shot, so both lists are made before the clock starts.


async def anyio_event(n: int) -> Result:
    import anyio

    ping = [anyio.Event() for _ in range(n)]
    pong = [anyio.Event() for _ in range(n)]

    async def responder() -> None:
        for i in range(n):
            await ping[i].wait()
            pong[i].set()

    async with anyio.create_task_group() as tg:
        tg.start_soon(responder)
        t0 = now()
        for i in range(n):
            ping[i].set()
            await pong[i].wait()
        elapsed = now() - t0
    return elapsed, n


async def asyncio_event(n: int) -> Result:
    import asyncio

    ping = [asyncio.Event() for _ in range(n)]
    pong = [asyncio.Event() for _ in range(n)]

    async def responder() -> None:
        for i in range(n):
            await ping[i].wait()
            pong[i].set()

    async with asyncio.TaskGroup() as tg:
        tg.create_task(responder())
        t0 = now()
        for i in range(n):
            ping[i].set()
            await pong[i].wait()
        elapsed = now() - t0
    return elapsed, n


async def trio_event(n: int) -> Result:
    import trio

    ping = [trio.Event() for _ in range(n)]
    pong = [trio.Event() for _ in range(n)]

    async def responder() -> None:
        for i in range(n):
            await ping[i].wait()
            pong[i].set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(responder)
        t0 = now()
        for i in range(n):
            ping[i].set()
            await pong[i].wait()
        elapsed = now() - t0
    return elapsed, n


register(
    Workload(
        name="event",
        title="Event set -> wait round trip between two tasks",
        group="micro",
        kind="time",
        sizes=(1_000, 10_000),
        requires=("Event", "create_task_group"),
        anyio=anyio_event,
        raw_asyncio=asyncio_event,
        raw_asyncio_label="asyncio.Event",
        raw_trio=trio_event,
        raw_trio_label="trio.Event",
    )
)

# -- task group spawn / empty enter+exit -----------------------------------------


async def anyio_spawn(n: int) -> Result:
    import anyio

    t0 = now()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(noop)
    return now() - t0, n


async def asyncio_spawn(n: int) -> Result:
    import asyncio

    t0 = now()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(noop())
    return now() - t0, n


async def trio_spawn(n: int) -> Result:
    import trio

    t0 = now()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(noop)
    return now() - t0, n


register(
    Workload(
        name="spawn",
        title="task group spawn, per child",
        group="micro",
        kind="time",
        sizes=(200, 3_000),
        requires=("create_task_group",),
        anyio=anyio_spawn,
        raw_asyncio=asyncio_spawn,
        raw_asyncio_label="asyncio.TaskGroup.create_task",
        raw_trio=trio_spawn,
        raw_trio_label="trio nursery start_soon",
    )
)


async def anyio_empty_group(n: int) -> Result:
    import anyio

    create_task_group = anyio.create_task_group
    t0 = now()
    for _ in range(n):
        async with create_task_group():
            pass
    return now() - t0, n


async def asyncio_empty_group(n: int) -> Result:
    import asyncio

    task_group = asyncio.TaskGroup
    t0 = now()
    for _ in range(n):
        async with task_group():
            pass
    return now() - t0, n


async def trio_empty_nursery(n: int) -> Result:
    import trio

    open_nursery = trio.open_nursery
    t0 = now()
    for _ in range(n):
        async with open_nursery():
            pass
    return now() - t0, n


register(
    Workload(
        name="empty_group",
        title="task group enter+exit, empty",
        group="micro",
        kind="time",
        sizes=(1_000, 10_000),
        requires=("create_task_group",),
        anyio=anyio_empty_group,
        raw_asyncio=asyncio_empty_group,
        raw_asyncio_label="asyncio.TaskGroup()",
        raw_trio=trio_empty_nursery,
        raw_trio_label="trio.open_nursery()",
    )
)

# -- worker threads ----------------------------------------------------------------


async def anyio_to_thread(n: int) -> Result:
    from anyio import to_thread

    run_sync = to_thread.run_sync
    t0 = now()
    for _ in range(n):
        await run_sync(noop_sync)
    return now() - t0, n


async def asyncio_to_thread(n: int) -> Result:
    import asyncio

    t0 = now()
    for _ in range(n):
        await asyncio.to_thread(noop_sync)
    return now() - t0, n


async def trio_to_thread(n: int) -> Result:
    import trio

    run_sync = trio.to_thread.run_sync
    t0 = now()
    for _ in range(n):
        await run_sync(noop_sync)
    return now() - t0, n


register(
    Workload(
        name="to_thread",
        title="to_thread.run_sync(noop), one at a time",
        group="micro",
        kind="time",
        sizes=(100, 1_500),
        requires=("to_thread.run_sync",),
        anyio=anyio_to_thread,
        raw_asyncio=asyncio_to_thread,
        raw_asyncio_label="asyncio.to_thread",
        raw_trio=trio_to_thread,
        raw_trio_label="trio.to_thread.run_sync",
    )
)

THREAD_CALLERS = 40


async def anyio_to_thread_40(n: int) -> Result:
    import anyio
    from anyio import to_thread

    per_task = max(1, n // THREAD_CALLERS)

    async def caller() -> None:
        for _ in range(per_task):
            await to_thread.run_sync(noop_sync)

    t0 = now()
    async with anyio.create_task_group() as tg:
        for _ in range(THREAD_CALLERS):
            tg.start_soon(caller)
    return now() - t0, per_task * THREAD_CALLERS


async def asyncio_to_thread_40(n: int) -> Result:
    import asyncio

    per_task = max(1, n // THREAD_CALLERS)

    async def caller() -> None:
        for _ in range(per_task):
            await asyncio.to_thread(noop_sync)

    t0 = now()
    async with asyncio.TaskGroup() as tg:
        for _ in range(THREAD_CALLERS):
            tg.create_task(caller())
    return now() - t0, per_task * THREAD_CALLERS


async def trio_to_thread_40(n: int) -> Result:
    import trio

    per_task = max(1, n // THREAD_CALLERS)

    async def caller() -> None:
        for _ in range(per_task):
            await trio.to_thread.run_sync(noop_sync)

    t0 = now()
    async with trio.open_nursery() as nursery:
        for _ in range(THREAD_CALLERS):
            nursery.start_soon(caller)
    return now() - t0, per_task * THREAD_CALLERS


register(
    Workload(
        name="to_thread_40",
        title="40 concurrent to_thread.run_sync callers, per call",
        group="micro",
        kind="time",
        sizes=(400, 4_000),
        requires=("to_thread.run_sync", "create_task_group"),
        anyio=anyio_to_thread_40,
        raw_asyncio=asyncio_to_thread_40,
        raw_asyncio_label="asyncio.to_thread (default executor)",
        raw_trio=trio_to_thread_40,
        raw_trio_label="trio.to_thread.run_sync",
    )
)


async def anyio_from_thread(n: int) -> Result:
    from anyio import from_thread, to_thread

    def in_worker() -> float:
        run_sync = from_thread.run_sync
        t0 = now()
        for _ in range(n):
            run_sync(noop_sync)
        return now() - t0

    return await to_thread.run_sync(in_worker), n


async def asyncio_from_thread(n: int) -> Result:
    import asyncio

    loop = asyncio.get_running_loop()

    def in_worker() -> float:
        t0 = now()
        for _ in range(n):
            future: concurrent.futures.Future[None] = concurrent.futures.Future()

            def call(future: concurrent.futures.Future[None] = future) -> None:
                noop_sync()
                future.set_result(None)

            loop.call_soon_threadsafe(call)
            future.result()
        return now() - t0

    return await asyncio.to_thread(in_worker), n


async def trio_from_thread(n: int) -> Result:
    import trio

    def in_worker() -> float:
        run_sync = trio.from_thread.run_sync
        t0 = now()
        for _ in range(n):
            run_sync(noop_sync)
        return now() - t0

    return await trio.to_thread.run_sync(in_worker), n


register(
    Workload(
        name="from_thread",
        title="from_thread.run_sync(noop) round trip from a worker",
        group="micro",
        kind="time",
        sizes=(200, 2_000),
        requires=("to_thread.run_sync", "from_thread.run_sync"),
        anyio=anyio_from_thread,
        raw_asyncio=asyncio_from_thread,
        raw_asyncio_label="call_soon_threadsafe + concurrent Future",
        raw_trio=trio_from_thread,
        raw_trio_label="trio.from_thread.run_sync",
    )
)
