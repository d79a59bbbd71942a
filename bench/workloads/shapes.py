"""End-to-end shapes: small programs shaped like real services.

Each figure is per item (request, message, call or task), the whole program's
time divided by the item count.
"""

from __future__ import annotations

from functools import partial

from ._common import now, small_work
from ._registry import Workload, register

Result = tuple[float, int]

# -- request loop: a task per request, each under a deadline and a limiter ------


async def anyio_requests(n: int) -> Result:
    import anyio
    from anyio.lowlevel import checkpoint

    limiter = anyio.CapacityLimiter(10)
    served = 0

    async def handle() -> None:
        nonlocal served
        with anyio.fail_after(5):
            async with limiter:
                await checkpoint()
                served += 1

    t0 = now()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(handle)
    elapsed = now() - t0
    assert served == n
    return elapsed, n


async def asyncio_requests(n: int) -> Result:
    import asyncio

    semaphore = asyncio.Semaphore(10)
    served = 0

    async def handle() -> None:
        nonlocal served
        async with asyncio.timeout(5):
            async with semaphore:
                await asyncio.sleep(0)
                served += 1

    t0 = now()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(handle())
    elapsed = now() - t0
    assert served == n
    return elapsed, n


async def trio_requests(n: int) -> Result:
    import trio

    limiter = trio.CapacityLimiter(10)
    served = 0

    async def handle() -> None:
        nonlocal served
        with trio.fail_after(5):
            async with limiter:
                await trio.lowlevel.checkpoint()
                served += 1

    t0 = now()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(handle)
    elapsed = now() - t0
    assert served == n
    return elapsed, n


register(
    Workload(
        name="requests",
        title="request loop: task per request, fail_after(5) + CapacityLimiter(10)",
        group="shape",
        kind="time",
        sizes=(300, 3_000),
        requires=(
            "create_task_group",
            "fail_after",
            "CapacityLimiter",
            "lowlevel.checkpoint",
        ),
        anyio=anyio_requests,
        raw_asyncio=asyncio_requests,
        raw_asyncio_label="TaskGroup + asyncio.timeout + Semaphore",
        raw_trio=trio_requests,
        raw_trio_label="nursery + fail_after + CapacityLimiter",
    )
)

# -- three-stage pipeline with fan-out and fan-in ---------------------------------
# source -> [buffer 100] -> 4 transformers -> [buffer 100] -> sink

PIPELINE_WORKERS = 4


async def anyio_pipeline(n: int) -> Result:
    import anyio

    raw_send, raw_receive = anyio.create_memory_object_stream(100)
    done_send, done_receive = anyio.create_memory_object_stream(100)
    total = 0

    async def source(send: object) -> None:
        async with send:  # type: ignore[attr-defined]
            for i in range(n):
                await send.send(i)  # type: ignore[attr-defined]

    async def transform(receive: object, send: object) -> None:
        async with receive, send:  # type: ignore[attr-defined]
            async for item in receive:  # type: ignore[attr-defined]
                await send.send(item * 2)  # type: ignore[attr-defined]

    async def sink(receive: object) -> None:
        nonlocal total
        async with receive:  # type: ignore[attr-defined]
            async for item in receive:  # type: ignore[attr-defined]
                total += item

    t0 = now()
    async with anyio.create_task_group() as tg:
        tg.start_soon(source, raw_send)
        for _ in range(PIPELINE_WORKERS):
            tg.start_soon(transform, raw_receive.clone(), done_send.clone())
        raw_receive.close()
        done_send.close()
        tg.start_soon(sink, done_receive)
    elapsed = now() - t0
    assert total == n * (n - 1)
    return elapsed, n


async def asyncio_pipeline(n: int) -> Result:
    import asyncio

    raw: asyncio.Queue[int | None] = asyncio.Queue(100)
    done: asyncio.Queue[int | None] = asyncio.Queue(100)
    total = 0

    async def source() -> None:
        for i in range(n):
            await raw.put(i)
        for _ in range(PIPELINE_WORKERS):
            await raw.put(None)

    async def transform() -> None:
        while (item := await raw.get()) is not None:
            await done.put(item * 2)
        await done.put(None)

    async def sink() -> None:
        nonlocal total
        finished = 0
        while finished < PIPELINE_WORKERS:
            item = await done.get()
            if item is None:
                finished += 1
            else:
                total += item

    t0 = now()
    async with asyncio.TaskGroup() as tg:
        tg.create_task(source())
        for _ in range(PIPELINE_WORKERS):
            tg.create_task(transform())
        tg.create_task(sink())
    elapsed = now() - t0
    assert total == n * (n - 1)
    return elapsed, n


async def trio_pipeline(n: int) -> Result:
    import trio

    raw_send, raw_receive = trio.open_memory_channel(100)
    done_send, done_receive = trio.open_memory_channel(100)
    total = 0

    async def source(send: trio.MemorySendChannel[int]) -> None:
        async with send:
            for i in range(n):
                await send.send(i)

    async def transform(
        receive: trio.MemoryReceiveChannel[int], send: trio.MemorySendChannel[int]
    ) -> None:
        async with receive, send:
            async for item in receive:
                await send.send(item * 2)

    async def sink(receive: trio.MemoryReceiveChannel[int]) -> None:
        nonlocal total
        async with receive:
            async for item in receive:
                total += item

    t0 = now()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(source, raw_send)
        for _ in range(PIPELINE_WORKERS):
            nursery.start_soon(transform, raw_receive.clone(), done_send.clone())
        raw_receive.close()
        done_send.close()
        nursery.start_soon(sink, done_receive)
    elapsed = now() - t0
    assert total == n * (n - 1)
    return elapsed, n


register(
    Workload(
        name="pipeline",
        title="3-stage pipeline, fan-out to 4 and fan-in over streams, per item",
        group="shape",
        kind="time",
        sizes=(1_000, 8_000),
        requires=("create_memory_object_stream", "create_task_group"),
        anyio=anyio_pipeline,
        raw_asyncio=asyncio_pipeline,
        raw_asyncio_label="asyncio.Queue(100) x2 + sentinels",
        raw_trio=trio_pipeline,
        raw_trio_label="trio memory channels, cloned",
    )
)

# -- fan-in: 10 producers, one consumer -----------------------------------------------

PRODUCERS = 10


async def anyio_fan_in(n: int) -> Result:
    import anyio

    send, receive = anyio.create_memory_object_stream(100)
    per_producer = max(1, n // PRODUCERS)
    received = 0

    async def producer(send: object) -> None:
        async with send:  # type: ignore[attr-defined]
            for i in range(per_producer):
                await send.send(i)  # type: ignore[attr-defined]

    t0 = now()
    async with anyio.create_task_group() as tg:
        for _ in range(PRODUCERS):
            tg.start_soon(producer, send.clone())
        send.close()
        async with receive:
            async for _ in receive:
                received += 1
    elapsed = now() - t0
    assert received == per_producer * PRODUCERS
    return elapsed, received


async def asyncio_fan_in(n: int) -> Result:
    import asyncio

    queue: asyncio.Queue[int | None] = asyncio.Queue(100)
    per_producer = max(1, n // PRODUCERS)
    received = 0

    async def producer() -> None:
        for i in range(per_producer):
            await queue.put(i)
        await queue.put(None)

    t0 = now()
    async with asyncio.TaskGroup() as tg:
        for _ in range(PRODUCERS):
            tg.create_task(producer())
        finished = 0
        while finished < PRODUCERS:
            if await queue.get() is None:
                finished += 1
            else:
                received += 1
    elapsed = now() - t0
    assert received == per_producer * PRODUCERS
    return elapsed, received


async def trio_fan_in(n: int) -> Result:
    import trio

    send, receive = trio.open_memory_channel(100)
    per_producer = max(1, n // PRODUCERS)
    received = 0

    async def producer(send: trio.MemorySendChannel[int]) -> None:
        async with send:
            for i in range(per_producer):
                await send.send(i)

    t0 = now()
    async with trio.open_nursery() as nursery:
        for _ in range(PRODUCERS):
            nursery.start_soon(producer, send.clone())
        send.close()
        async with receive:
            async for _ in receive:
                received += 1
    elapsed = now() - t0
    assert received == per_producer * PRODUCERS
    return elapsed, received


register(
    Workload(
        name="fan_in",
        title="fan-in: 10 producers -> 1 consumer (buffer 100), per item",
        group="shape",
        kind="time",
        sizes=(2_000, 20_000),
        requires=("create_memory_object_stream", "create_task_group"),
        anyio=anyio_fan_in,
        raw_asyncio=asyncio_fan_in,
        raw_asyncio_label="asyncio.Queue(100) + sentinels",
        raw_trio=trio_fan_in,
        raw_trio_label="trio memory channel, cloned senders",
    )
)

# -- thread offload loop: 8 tasks offload short calls, results over a stream ------

OFFLOADERS = 8


async def anyio_offload(n: int) -> Result:
    import anyio
    from anyio import to_thread

    send, receive = anyio.create_memory_object_stream(100)
    per_task = max(1, n // OFFLOADERS)
    results = 0

    async def offloader(send: object) -> None:
        async with send:  # type: ignore[attr-defined]
            for i in range(per_task):
                await send.send(await to_thread.run_sync(small_work, i))  # type: ignore[attr-defined]

    t0 = now()
    async with anyio.create_task_group() as tg:
        for _ in range(OFFLOADERS):
            tg.start_soon(offloader, send.clone())
        send.close()
        async with receive:
            async for _ in receive:
                results += 1
    elapsed = now() - t0
    assert results == per_task * OFFLOADERS
    return elapsed, results


async def asyncio_offload(n: int) -> Result:
    import asyncio

    queue: asyncio.Queue[int | None] = asyncio.Queue(100)
    per_task = max(1, n // OFFLOADERS)
    results = 0

    async def offloader() -> None:
        for i in range(per_task):
            await queue.put(await asyncio.to_thread(small_work, i))
        await queue.put(None)

    t0 = now()
    async with asyncio.TaskGroup() as tg:
        for _ in range(OFFLOADERS):
            tg.create_task(offloader())
        finished = 0
        while finished < OFFLOADERS:
            if await queue.get() is None:
                finished += 1
            else:
                results += 1
    elapsed = now() - t0
    assert results == per_task * OFFLOADERS
    return elapsed, results


async def trio_offload(n: int) -> Result:
    import trio

    send, receive = trio.open_memory_channel(100)
    per_task = max(1, n // OFFLOADERS)
    results = 0

    async def offloader(send: trio.MemorySendChannel[int]) -> None:
        async with send:
            for i in range(per_task):
                await send.send(await trio.to_thread.run_sync(small_work, i))

    t0 = now()
    async with trio.open_nursery() as nursery:
        for _ in range(OFFLOADERS):
            nursery.start_soon(offloader, send.clone())
        send.close()
        async with receive:
            async for _ in receive:
                results += 1
    elapsed = now() - t0
    assert results == per_task * OFFLOADERS
    return elapsed, results


register(
    Workload(
        name="offload",
        title="thread offload loop: 8 tasks to_thread -> stream -> collector, per call",
        group="shape",
        kind="time",
        sizes=(200, 2_000),
        requires=(
            "to_thread.run_sync",
            "create_memory_object_stream",
            "create_task_group",
        ),
        anyio=anyio_offload,
        raw_asyncio=asyncio_offload,
        raw_asyncio_label="asyncio.to_thread + Queue(100)",
        raw_trio=trio_offload,
        raw_trio_label="trio.to_thread + memory channel",
    )
)

# -- many tasks parked on one Event, then woken ---------------------------------------


async def anyio_park_wake(n: int) -> Result:
    import anyio
    from anyio.lowlevel import checkpoint

    event = anyio.Event()
    parked = woken = 0

    async def park() -> None:
        nonlocal parked, woken
        parked += 1
        await event.wait()
        woken += 1

    t0 = now()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(park)
        while parked < n:
            await checkpoint()
        event.set()
    elapsed = now() - t0
    assert woken == n
    return elapsed, n


async def asyncio_park_wake(n: int) -> Result:
    import asyncio

    event = asyncio.Event()
    parked = woken = 0

    async def park() -> None:
        nonlocal parked, woken
        parked += 1
        await event.wait()
        woken += 1

    t0 = now()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(park())
        while parked < n:
            await asyncio.sleep(0)
        event.set()
    elapsed = now() - t0
    assert woken == n
    return elapsed, n


async def trio_park_wake(n: int) -> Result:
    import trio

    event = trio.Event()
    parked = woken = 0

    async def park() -> None:
        nonlocal parked, woken
        parked += 1
        await event.wait()
        woken += 1

    t0 = now()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(park)
        while parked < n:
            await trio.lowlevel.checkpoint()
        event.set()
    elapsed = now() - t0
    assert woken == n
    return elapsed, n


register(
    Workload(
        name="park_wake",
        title="10,000 tasks spawned, parked on one Event, woken; per task",
        group="shape",
        kind="time",
        sizes=(1_000, 10_000),
        requires=("Event", "create_task_group", "lowlevel.checkpoint"),
        anyio=anyio_park_wake,
        raw_asyncio=asyncio_park_wake,
        raw_asyncio_label="asyncio.Event in a TaskGroup",
        raw_trio=trio_park_wake,
        raw_trio_label="trio.Event in a nursery",
    )
)

# -- TCP echo on loopback ----------------------------------------------------------------
# 127.0.0.1 only, a bounded number of round trips, the whole run under a deadline.

PAYLOAD = b"x" * 64
ECHO_DEADLINE = 60


async def anyio_tcp_echo(n: int) -> Result:
    import anyio
    from anyio.abc import SocketAttribute

    async def echo(stream: object) -> None:
        async with stream:  # type: ignore[attr-defined]
            try:
                async for chunk in stream:  # type: ignore[attr-defined]
                    await stream.send(chunk)  # type: ignore[attr-defined]
            except anyio.BrokenResourceError:
                pass

    with anyio.fail_after(ECHO_DEADLINE):
        listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
        port = listener.extra(SocketAttribute.local_port)
        async with anyio.create_task_group() as tg:
            tg.start_soon(listener.serve, echo)
            async with await anyio.connect_tcp("127.0.0.1", port) as client:
                t0 = now()
                for _ in range(n):
                    await client.send(PAYLOAD)
                    got = 0
                    while got < len(PAYLOAD):
                        got += len(await client.receive())
                elapsed = now() - t0
            tg.cancel_scope.cancel()
        await listener.aclose()
    return elapsed, n


async def asyncio_tcp_echo(n: int) -> Result:
    import asyncio

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while chunk := await reader.read(65536):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()

    async with asyncio.timeout(ECHO_DEADLINE):
        server = await asyncio.start_server(echo, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        t0 = now()
        for _ in range(n):
            writer.write(PAYLOAD)
            await writer.drain()
            got = 0
            while got < len(PAYLOAD):
                got += len(await reader.read(65536))
        elapsed = now() - t0
        writer.close()
        await writer.wait_closed()
        server.close()
        await server.wait_closed()
    return elapsed, n


async def trio_tcp_echo(n: int) -> Result:
    import trio

    async def echo(stream: trio.SocketStream) -> None:
        async with stream:
            try:
                async for chunk in stream:
                    await stream.send_all(chunk)
            except trio.BrokenResourceError:
                pass

    with trio.fail_after(ECHO_DEADLINE):
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(
                partial(trio.serve_tcp, echo, 0, host="127.0.0.1")
            )
            port = listeners[0].socket.getsockname()[1]
            async with await trio.open_tcp_stream("127.0.0.1", port) as client:
                t0 = now()
                for _ in range(n):
                    await client.send_all(PAYLOAD)
                    got = 0
                    while got < len(PAYLOAD):
                        got += len(await client.receive_some())
                elapsed = now() - t0
            nursery.cancel_scope.cancel()
    return elapsed, n


register(
    Workload(
        name="tcp_echo",
        title="TCP echo on 127.0.0.1, 64-byte round trip",
        group="shape",
        kind="time",
        sizes=(100, 2_000),
        requires=(
            "create_tcp_listener",
            "connect_tcp",
            "abc.SocketAttribute",
            "fail_after",
        ),
        anyio=anyio_tcp_echo,
        raw_asyncio=asyncio_tcp_echo,
        raw_asyncio_label="asyncio streams (start_server/open_connection)",
        raw_trio=trio_tcp_echo,
        raw_trio_label="trio.serve_tcp / open_tcp_stream",
    )
)
