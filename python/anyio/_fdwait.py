"""Waiting for a file descriptor to become readable or writable.

Every socket, pipe and process stream of this package is a plain non-blocking
file descriptor driven by these three functions, so the stream classes are the
same code on both backends; only this module knows how each event loop watches
descriptors.

asyncio: one ``add_reader``/``add_writer`` registration per waiting task, with a
loop future to park on. Both the stock loop and uvloop accept raw descriptors
there, so no transports are involved and nothing is ever buffered on our
behalf: a send that is cancelled while waiting has sent nothing.

Trio: ``trio.lowlevel.wait_readable``/``wait_writable``/``notify_closing``,
with Trio's exceptions translated to anyio's.
"""

from __future__ import annotations

import asyncio
import socket
from typing import Any, Protocol

from ._backend import current_backend
from ._exceptions import BusyResourceError, ClosedResourceError


class _HasFileno(Protocol):
    def fileno(self) -> int: ...


FileDescriptorLike = int | _HasFileno

# (loop, fd) -> future of the task waiting for that event. Entries live only as
# long as the wait, so closed loops are never kept alive by this table.
_readers: dict[tuple[asyncio.AbstractEventLoop, int], asyncio.Future[None]] = {}
_writers: dict[tuple[asyncio.AbstractEventLoop, int], asyncio.Future[None]] = {}


def _fileno(obj: FileDescriptorLike) -> int:
    if isinstance(obj, int):
        return obj

    return obj.fileno()


def _wake(fut: asyncio.Future[None]) -> None:
    if not fut.done():
        fut.set_result(None)


async def _asyncio_wait(obj: FileDescriptorLike, for_read: bool) -> None:
    loop = asyncio.get_running_loop()
    fd = _fileno(obj)
    if fd < 0:
        raise ClosedResourceError

    table = _readers if for_read else _writers
    key = (loop, fd)
    if key in table:
        raise BusyResourceError("reading from" if for_read else "writing to")

    fut: asyncio.Future[None] = loop.create_future()
    table[key] = fut
    if for_read:
        loop.add_reader(fd, _wake, fut)
    else:
        loop.add_writer(fd, _wake, fut)

    try:
        await fut
    finally:
        # notify_closing() may already have taken the registration away
        if table.get(key) is fut:
            del table[key]
            if for_read:
                loop.remove_reader(fd)
            else:
                loop.remove_writer(fd)


def _asyncio_notify_closing(fd: int) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return

    key = (loop, fd)
    fut = _readers.pop(key, None)
    if fut is not None:
        loop.remove_reader(fd)
        if not fut.done():
            fut.set_exception(ClosedResourceError())

    fut = _writers.pop(key, None)
    if fut is not None:
        loop.remove_writer(fd)
        if not fut.done():
            fut.set_exception(ClosedResourceError())


async def _trio_wait(obj: FileDescriptorLike, for_read: bool) -> None:
    import trio

    try:
        if for_read:
            await trio.lowlevel.wait_readable(obj)
        else:
            await trio.lowlevel.wait_writable(obj)
    except trio.ClosedResourceError:
        raise ClosedResourceError from None
    except trio.BusyResourceError:
        raise BusyResourceError("reading from" if for_read else "writing to") from None
    except ValueError:
        # Trio refuses negative descriptors (an already closed socket)
        if _fileno(obj) < 0:
            raise ClosedResourceError from None

        raise


async def wait_readable(obj: FileDescriptorLike) -> None:
    """Wait until ``obj`` (a socket, an object with ``fileno()`` or a raw file
    descriptor) has data to read or a connection to accept.

    Only one task may wait for a given descriptor to become readable at a time
    (:exc:`~anyio.BusyResourceError` otherwise). If another task calls
    :func:`notify_closing` on it meanwhile, this raises
    :exc:`~anyio.ClosedResourceError`.

    This is a checkpoint: it always yields to the event loop at least once.
    """
    if current_backend() == "asyncio":
        await _asyncio_wait(obj, True)
    else:
        await _trio_wait(obj, True)


async def wait_writable(obj: FileDescriptorLike) -> None:
    """Wait until ``obj`` can accept more data to write.

    The same rules as for :func:`wait_readable` apply.
    """
    if current_backend() == "asyncio":
        await _asyncio_wait(obj, False)
    else:
        await _trio_wait(obj, False)


def notify_closing(obj: FileDescriptorLike) -> None:
    """Tell tasks waiting on ``obj`` that it is about to be closed.

    Call this before closing a descriptor that other tasks may be waiting on;
    their :func:`wait_readable`/:func:`wait_writable` calls then raise
    :exc:`~anyio.ClosedResourceError` instead of hanging (or watching whatever
    the descriptor number gets reused for).
    """
    if current_backend() == "asyncio":
        _asyncio_notify_closing(_fileno(obj))
    else:
        import trio

        trio.lowlevel.notify_closing(obj)


def notify_closing_quietly(sock: socket.socket | Any) -> None:
    """:func:`notify_closing`, tolerating a missing event loop (used from
    ``close()`` paths that may run during garbage collection)."""
    try:
        fd = sock.fileno()
    except (OSError, ValueError):
        return

    if fd < 0:
        return

    try:
        notify_closing(fd)
    except Exception:
        pass
