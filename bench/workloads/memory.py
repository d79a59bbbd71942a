"""Memory per task parked on an Event, by resident set size.

Each sample is taken in a fresh process (the runner arranges that): memory
freed by an earlier sample would be reused by the next and hide its cost.
The worker parks a few tasks first so one-time allocations (code caches, the
first task group's machinery) are not billed to the measured tasks.
"""

from __future__ import annotations

from ._common import rss_bytes, settle
from ._registry import Workload, register

Result = tuple[float, int]


async def anyio_parked(n: int) -> Result:
    import anyio
    from anyio.lowlevel import checkpoint

    event = anyio.Event()
    parked = 0

    async def park() -> None:
        nonlocal parked
        parked += 1
        await event.wait()

    settle()
    before = rss_bytes()
    async with anyio.create_task_group() as tg:
        for _ in range(n):
            tg.start_soon(park)
        # A task counts itself and parks within one step, so once every task
        # has counted itself every task is parked.
        while parked < n:
            await checkpoint()
        after = rss_bytes()
        event.set()
    return float(after - before), n


async def asyncio_parked(n: int) -> Result:
    import asyncio

    event = asyncio.Event()
    parked = 0

    async def park() -> None:
        nonlocal parked
        parked += 1
        await event.wait()

    settle()
    before = rss_bytes()
    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(park())
        while parked < n:
            await asyncio.sleep(0)
        after = rss_bytes()
        event.set()
    return float(after - before), n


async def trio_parked(n: int) -> Result:
    import trio

    event = trio.Event()
    parked = 0

    async def park() -> None:
        nonlocal parked
        parked += 1
        await event.wait()

    settle()
    before = rss_bytes()
    async with trio.open_nursery() as nursery:
        for _ in range(n):
            nursery.start_soon(park)
        while parked < n:
            await trio.lowlevel.checkpoint()
        after = rss_bytes()
        event.set()
    return float(after - before), n


register(
    Workload(
        name="parked_memory",
        title="memory per task parked on an Event (RSS)",
        group="micro",
        kind="memory",
        sizes=(2_000, 10_000),
        requires=("Event", "create_task_group", "lowlevel.checkpoint"),
        anyio=anyio_parked,
        raw_asyncio=asyncio_parked,
        raw_asyncio_label="asyncio.Event in a TaskGroup",
        raw_trio=trio_parked,
        raw_trio_label="trio.Event in a nursery",
    )
)
