"""Reference ownership of the C++ primitives: long loops must not leave
objects or references behind (C++ allocations are invisible to tracemalloc, so
count live objects and reference counts instead)."""

from __future__ import annotations

import gc
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

import anyio
from anyio import (
    CancelScope,
    CapacityLimiter,
    Event,
    Lock,
    Semaphore,
    create_task_group,
    wait_all_tasks_blocked,
)


async def churn(prim: Any, rounds: int) -> None:
    """Uncontended and contended acquires, some cancelled while waiting and
    some cancelled after being granted."""
    for _ in range(rounds):
        async with prim:
            pass

    async def waiter(scope: CancelScope) -> None:
        with scope:
            async with prim:
                await anyio.lowlevel.checkpoint()

    for _ in range(rounds // 10):
        async with create_task_group() as tg:
            await prim.acquire()
            scopes = [CancelScope() for _ in range(3)]
            for scope in scopes:
                tg.start_soon(waiter, scope)
            await wait_all_tasks_blocked()
            scopes[0].cancel()
            prim.release()
            scopes[1].cancel()


async def cancellable_wait(ev: Event, scope: CancelScope) -> None:
    with scope:
        await ev.wait()


async def event_churn(event: Event, rounds: int) -> None:
    for _ in range(rounds):
        ev = Event()
        async with create_task_group() as tg:
            tg.start_soon(ev.wait)
            scope = CancelScope()
            tg.start_soon(cancellable_wait, ev, scope)
            await wait_all_tasks_blocked()
            scope.cancel()
            ev.set()
        await event.wait()


def measure(
    backend: str, options: dict[str, Any], fn: Callable[[int], Awaitable[None]]
) -> tuple[int, int]:
    def live() -> int:
        gc.collect()
        return len(gc.get_objects())

    anyio.run(fn, 50, backend=backend, backend_options=options)  # warm caches
    before = live()
    anyio.run(fn, 50, backend=backend, backend_options=options)
    small = live() - before
    before = live()
    anyio.run(fn, 500, backend=backend, backend_options=options)
    large = live() - before
    return small, large


@pytest.mark.parametrize(
    "factory",
    [Lock, lambda: Semaphore(1), lambda: CapacityLimiter(1)],
    ids=["lock", "semaphore", "limiter"],
)
def test_pools_do_not_leak(
    factory: Callable[[], Any],
    anyio_backend_name: str,
    anyio_backend_options: dict[str, Any],
) -> None:
    prim = factory()
    refs = sys.getrefcount(prim)

    async def run(rounds: int) -> None:
        await churn(prim, rounds)

    small, large = measure(anyio_backend_name, anyio_backend_options, run)
    # Ten times the work must not leave ten times the objects behind.
    assert large < 200, (small, large)
    assert sys.getrefcount(prim) == refs


def test_event_does_not_leak(
    anyio_backend_name: str, anyio_backend_options: dict[str, Any]
) -> None:
    event = Event()
    event.set()
    refs = sys.getrefcount(event)

    async def run(rounds: int) -> None:
        await event_churn(event, rounds)

    small, large = measure(anyio_backend_name, anyio_backend_options, run)
    assert large < 200, (small, large)
    assert sys.getrefcount(event) == refs
