"""Blocking portals: BlockingPortal, start_blocking_portal, BlockingPortalProvider."""

from __future__ import annotations

import threading
from concurrent.futures import CancelledError, ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

import pytest

from anyio import (
    TASK_STATUS_IGNORED,
    Event,
    get_cancelled_exc_class,
    get_current_task,
    sleep,
    to_thread,
    wait_all_tasks_blocked,
)
from anyio.abc import TaskStatus
from anyio.from_thread import (
    BlockingPortal,
    BlockingPortalProvider,
    start_blocking_portal,
)
from anyio.lowlevel import checkpoint

pytestmark = pytest.mark.anyio


async def test_portal_in_running_loop() -> None:
    async def add(a: int, b: int) -> int:
        await checkpoint()
        return a + b

    async with BlockingPortal() as portal:
        assert await to_thread.run_sync(portal.call, add, 1, 2) == 3
        assert await to_thread.run_sync(portal.call, len, "abcd") == 4


async def test_call_from_loop_thread_is_refused() -> None:
    async with BlockingPortal() as portal:
        with pytest.raises(
            RuntimeError, match="cannot be called from the event loop thread"
        ):
            portal.call(int)


async def test_aexit_waits_for_tasks() -> None:
    results: list[str] = []

    async def slow() -> None:
        await sleep(0.05)
        results.append("done")

    async with BlockingPortal() as portal:
        await to_thread.run_sync(portal.start_task_soon, slow)

    assert results == ["done"]


def test_start_blocking_portal(
    anyio_backend_name: str, anyio_backend_options: dict[str, Any]
) -> None:
    async def where() -> tuple[int, str]:
        return threading.get_ident(), threading.current_thread().name

    with start_blocking_portal(anyio_backend_name, anyio_backend_options) as portal:
        ident, name = portal.call(where)

    assert ident != threading.get_ident()
    assert name == f"{anyio_backend_name}-portal-{id(portal):x}"
    with pytest.raises(RuntimeError, match="This portal is not running"):
        portal.call(int)


def test_thread_name_and_unknown_backend(
    anyio_backend_name: str, anyio_backend_options: dict[str, Any]
) -> None:
    with start_blocking_portal(
        anyio_backend_name, anyio_backend_options, name="mine"
    ) as portal:
        assert portal.call(lambda: threading.current_thread().name) == "mine"

    with pytest.raises(LookupError, match="No such backend: nope"):
        with start_blocking_portal("nope"):
            pass


def test_start_task_soon_and_cancel(
    anyio_backend_name: str, anyio_backend_options: dict[str, Any]
) -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await sleep(10)
        except get_cancelled_exc_class():
            cancelled.set()
            raise

    async def named() -> str:
        return get_current_task().name

    with start_blocking_portal(anyio_backend_name, anyio_backend_options) as portal:
        assert portal.start_task_soon(named, name="custom").result() == "custom"
        future = portal.start_task_soon(forever)
        portal.call(wait_all_tasks_blocked)
        assert future.cancel()
        assert cancelled.wait(5)

    assert future.cancelled()


def test_start_task(
    anyio_backend_name: str, anyio_backend_options: dict[str, Any]
) -> None:
    async def service(*, task_status: TaskStatus[str] = TASK_STATUS_IGNORED) -> str:
        task_status.started("ready")
        await sleep(0)
        return "finished"

    async def no_start(*, task_status: TaskStatus[None]) -> None:
        pass

    async def crash(*, task_status: TaskStatus[None]) -> None:
        raise ValueError("early")

    with start_blocking_portal(anyio_backend_name, anyio_backend_options) as portal:
        future, value = portal.start_task(service)
        assert value == "ready"
        assert future.result() == "finished"
        with pytest.raises(RuntimeError, match="Task exited"):
            portal.start_task(no_start)
        with pytest.raises(ValueError, match="early"):
            portal.start_task(crash)


def test_wrap_async_context_manager(
    anyio_backend_name: str, anyio_backend_options: dict[str, Any]
) -> None:
    log: list[str] = []

    @asynccontextmanager
    async def resource(name: str) -> Any:
        log.append(f"enter {name}")
        try:
            yield name.upper()
        finally:
            log.append(f"exit {name}")

    with start_blocking_portal(anyio_backend_name, anyio_backend_options) as portal:
        with portal.wrap_async_context_manager(resource("a")) as value:
            assert value == "A"
            log.append("body")

        with pytest.raises(KeyError):
            with portal.wrap_async_context_manager(resource("b")):
                raise KeyError("b")

    assert log == ["enter a", "body", "exit a", "enter b", "exit b"]


def test_exception_in_block_cancels_tasks(
    anyio_backend_name: str, anyio_backend_options: dict[str, Any]
) -> None:
    with pytest.raises(ZeroDivisionError):
        with start_blocking_portal(anyio_backend_name, anyio_backend_options) as portal:
            future = portal.start_task_soon(sleep, 10)
            portal.call(wait_all_tasks_blocked)
            raise ZeroDivisionError

    with pytest.raises(CancelledError):
        future.result(5)


def test_portal_provider_shares_one_portal(
    anyio_backend_name: str, anyio_backend_options: dict[str, Any]
) -> None:
    provider = BlockingPortalProvider(anyio_backend_name, anyio_backend_options)
    threads: set[int] = set()

    async def record() -> None:
        threads.add(threading.get_ident())

    def use() -> None:
        with provider as portal:
            portal.call(record)

    with provider as outer:
        with ThreadPoolExecutor(4) as executor:
            for future in [executor.submit(use) for _ in range(8)]:
                future.result()
        outer.call(record)

    assert len(threads) == 1


async def test_call_async_between_loops(anyio_backend_name: str) -> None:
    async def where() -> int:
        await checkpoint()
        return threading.get_ident()

    cm = start_blocking_portal("asyncio")
    portal = await to_thread.run_sync(cm.__enter__)
    try:
        ident = await portal.call_async(where)
        assert ident != threading.get_ident()
    finally:
        await to_thread.run_sync(cm.__exit__, None, None, None)


async def test_events_set_through_portal() -> None:
    event = Event()
    async with BlockingPortal() as portal:
        await to_thread.run_sync(portal.call, event.set)
        await event.wait()
