"""Static checks of the public signatures: mypy --strict must accept this file.

Not a pytest module: ``tests/test_typing.py`` runs mypy over this directory
(through ``python -m conformance.typecheck``). Each ``assert_type`` states what
a type checker must infer for a call, as it does with upstream anyio 4.16; the
functions are never called.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncGenerator, Coroutine
from concurrent.futures import Future
from typing import Any

from typing_extensions import Never, assert_type

import anyio
import anyio.abc
import anyio.from_thread
import anyio.functools
import anyio.itertools
import anyio.lowlevel
import anyio.to_thread


async def one() -> int:
    return 1


async def two() -> str:
    return "2"


async def three() -> bytes:
    return b"3"


async def add(x: int, y: int) -> int:
    return x + y


def plain(x: int) -> str:
    return str(x)


async def started(*, task_status: anyio.abc.TaskStatus[str]) -> int:
    task_status.started("ready")
    return 1


async def gather_overloads() -> None:
    assert_type(await anyio.gather(one(), two()), tuple[int, str])
    assert_type(await anyio.gather(one(), two(), three()), tuple[int, str, bytes])
    assert_type(
        await anyio.gather(one(), two(), three(), one()), tuple[int, str, bytes, int]
    )
    assert_type(
        await anyio.gather(one(), two(), three(), one(), two()),
        tuple[int, str, bytes, int, str],
    )
    assert_type(
        await anyio.gather(one(), two(), three(), one(), two(), three()),
        tuple[int, str, bytes, int, str, bytes],
    )
    # one argument, or more than six: the variadic form
    assert_type(await anyio.gather(one()), tuple[int, ...])
    assert_type(
        await anyio.gather(one(), one(), one(), one(), one(), one(), one()),
        tuple[int, ...],
    )


async def temporary_files() -> None:
    # binary by default, as at run time
    async with anyio.TemporaryFile() as f:
        assert_type(f, anyio.AsyncFile[bytes])
        assert_type(await f.read(), bytes)
    async with anyio.TemporaryFile("w+") as text:
        assert_type(text, anyio.AsyncFile[str])
    async with anyio.TemporaryFile(mode="rb+") as binary:
        assert_type(binary, anyio.AsyncFile[bytes])

    async with anyio.NamedTemporaryFile() as named:
        assert_type(named, anyio.AsyncFile[bytes])
    async with anyio.NamedTemporaryFile("w+", delete=False) as named_text:
        assert_type(named_text, anyio.AsyncFile[str])

    spooled = anyio.SpooledTemporaryFile()
    assert_type(spooled, anyio.SpooledTemporaryFile[bytes])
    assert_type(await spooled.write(b"data"), int)
    spooled_text = anyio.SpooledTemporaryFile(max_size=10, mode="w+")
    assert_type(spooled_text, anyio.SpooledTemporaryFile[str])
    assert_type(await spooled_text.write("data"), int)
    assert_type(
        anyio.SpooledTemporaryFile(100, "w+b"), anyio.SpooledTemporaryFile[bytes]
    )


async def key_of(item: int) -> str:
    return str(item % 2)


async def groupby_overloads() -> None:
    without_key = anyio.itertools.groupby([1, 2, 3])
    assert_type(without_key, AsyncGenerator[tuple[int, list[int]], None])
    with_key = anyio.itertools.groupby([1, 2, 3], key_of)
    assert_type(with_key, AsyncGenerator[tuple[str, list[int]], None])
    async for key, group in anyio.itertools.groupby([1, 2, 3], key=key_of):
        assert_type(key, str)
        assert_type(group, list[int])


def portal_overloads(portal: anyio.from_thread.BlockingPortal) -> None:
    assert_type(portal.call(one), int)
    assert_type(portal.call(add, 1, 2), int)
    assert_type(portal.call(plain, 1), str)
    assert_type(portal.start_task_soon(one), Future[int])
    assert_type(portal.start_task_soon(add, 1, 2, name="adder"), Future[int])
    assert_type(portal.start_task_soon(plain, 1), Future[str])
    future, value = portal.start_task(started)
    assert_type(future, Future[int])
    assert_type(value, Any)


async def portal_call_async(portal: anyio.from_thread.BlockingPortal) -> None:
    assert_type(await portal.call_async(one), int)
    assert_type(await portal.call_async(plain, 1), str)
    assert_type(await portal.call_async(add, 1, 2, abandon_on_cancel=True), int)


async def portal_as_context_manager() -> None:
    async with anyio.from_thread.BlockingPortal() as portal:
        assert_type(portal, anyio.from_thread.BlockingPortal)
    with anyio.from_thread.start_blocking_portal() as blocking:
        assert_type(blocking, anyio.from_thread.BlockingPortal)


async def task_group_overloads() -> None:
    async with anyio.create_task_group() as tg:
        assert_type(tg, anyio.abc.TaskGroup)
        assert_type(tg.start_soon(add, 1, 2), anyio.TaskHandle[int, Never])
        assert_type(tg.create_task(one()), anyio.TaskHandle[int, Never])
        assert_type(await tg.start(started), Any)
        handle = await tg.start(started, return_handle=True)
        assert_type(handle, anyio.TaskHandle[int, Any])
        assert_type(await tg.start(started, return_handle=False), Any)
        assert_type(tg.start_soon(one).return_value, int)


async def lru_cache_overloads() -> None:
    @anyio.functools.lru_cache(always_checkpoint=True)
    async def sleeper(delay: float) -> None:
        pass

    @anyio.functools.lru_cache
    async def foo() -> str:
        return "bar"

    @anyio.functools.lru_cache(maxsize=4)
    def sync_double(x: int) -> int:
        return 2 * x

    assert_type(await sleeper(1), None)
    assert_type(await foo(), str)
    assert_type(sync_double(2), int)


async def checkpoints() -> None:
    # coroutines (registered as such at run time), not just awaitables
    for make in (
        anyio.lowlevel.checkpoint,
        anyio.lowlevel.checkpoint_if_cancelled,
        anyio.lowlevel.cancel_shielded_checkpoint,
    ):
        await assert_type(make(), Coroutine[Any, Any, None])


async def sockets(sock: socket.socket) -> None:
    assert_type(await anyio.abc.SocketStream.from_socket(sock), anyio.abc.SocketStream)
    assert_type(
        await anyio.abc.UNIXSocketStream.from_socket(sock), anyio.abc.UNIXSocketStream
    )
    assert_type(
        await anyio.abc.SocketListener.from_socket(sock), anyio.abc.SocketListener
    )
    assert_type(await anyio.abc.UDPSocket.from_socket(sock), anyio.abc.UDPSocket)
    assert_type(
        await anyio.abc.ConnectedUDPSocket.from_socket(sock),
        anyio.abc.ConnectedUDPSocket,
    )
    assert_type(
        await anyio.abc.UNIXDatagramSocket.from_socket(sock),
        anyio.abc.UNIXDatagramSocket,
    )
    assert_type(
        await anyio.abc.ConnectedUNIXDatagramSocket.from_socket(sock),
        anyio.abc.ConnectedUNIXDatagramSocket,
    )
    assert_type(await anyio.create_unix_datagram_socket(), anyio.abc.UNIXDatagramSocket)
    assert_type(
        await anyio.create_unix_datagram_socket(local_path="/tmp/sock"),
        anyio.abc.UNIXDatagramSocket,
    )


def running() -> None:
    assert_type(anyio.run(add, 1, 2), int)
    assert_type(anyio.run(one, backend="trio"), int)


async def threads() -> None:
    assert_type(await anyio.to_thread.run_sync(plain, 1), str)
    assert_type(anyio.from_thread.run(add, 1, 2), int)
    assert_type(anyio.from_thread.run_sync(plain, 1), str)
