"""Waiting for a file descriptor to become readable or writable.

Every socket, pipe and process stream of this package is a plain non-blocking
file descriptor driven by this module, so the stream classes are the same code
on both backends; only this module knows how each event loop watches
descriptors.

asyncio: an ``add_reader``/``add_writer`` registration (a :class:`Watch`) with
a loop future to park on. Both the stock loop and uvloop accept raw
descriptors there, so no transports are involved and nothing is ever buffered
on our behalf: a send that is cancelled while waiting has sent nothing. The
public functions register for the duration of one wait; the socket wrappers,
which own their descriptors, keep a watch registered between waits.

Trio: ``trio.lowlevel.wait_readable``/``wait_writable``/``notify_closing``,
with Trio's exceptions translated to anyio's.
"""

from __future__ import annotations

import asyncio
import weakref
from asyncio.selector_events import BaseSelectorEventLoop
from functools import partial
from typing import TYPE_CHECKING, Protocol

from ._backend import current_backend
from ._exceptions import BusyResourceError, ClosedResourceError

if TYPE_CHECKING:
    # the protocol type checkers already know (what upstream's annotations use)
    from _typeshed import HasFileno as _HasFileno
else:

    class _HasFileno(Protocol):
        def fileno(self) -> int: ...


FileDescriptorLike = int | _HasFileno


def _fileno(obj: FileDescriptorLike) -> int:
    if isinstance(obj, int):
        return obj

    return obj.fileno()


class Watch:
    """The reader (or writer) registration of one descriptor with one asyncio
    loop, and the future of the task waiting on it, if any.

    Owners of a descriptor (the socket wrappers) keep their watch registered
    between waits: registering and removing it around every wait costs two
    ``epoll_ctl`` calls per wait, plus a poll handle on uvloop, which was the
    largest cost of request/response traffic there. The loop polls
    level-triggered, so a registration nobody waits on would fire on every
    iteration: the first readiness that finds no waiter removes it, and the
    next wait registers again. An owner must call :meth:`close` before it
    closes the descriptor; the watch holds ``owner`` (the socket) so the
    descriptor cannot be closed by garbage collection while registered.
    """

    __slots__ = (
        "loop",
        "fd",
        "for_read",
        "owner",
        "waiter",
        "registered",
        "stale_prone",
        "skip",
        "__weakref__",
    )

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        fd: int,
        for_read: bool,
        owner: object,
    ) -> None:
        self.loop = loop
        self.fd = fd
        self.for_read = for_read
        self.owner = owner
        self.waiter: asyncio.Future[None] | None = None
        self.registered = False
        # The stock loop polls again before the woken task runs, so the
        # readiness it just reported (not consumed yet) comes back once more,
        # queued behind the task's wake-up. Acting on that stale event would
        # wake the task's next wait for nothing, or drop the registration
        # the next wait needs, so the first event after a wake-up is ignored
        # there: if it was real, the level-triggered poll reports it again on
        # the following iteration. uvloop runs the woken task before it polls
        # again, so it gets no stale events.
        self.stale_prone = isinstance(loop, BaseSelectorEventLoop)
        self.skip = False

    def _fire(self) -> None:
        if self.skip:
            self.skip = False
            return

        waiter = self.waiter
        if waiter is None:
            self.drop()
        elif not waiter.done():
            waiter.set_result(None)
            self.skip = self.stale_prone

    def arm(self) -> asyncio.Future[None]:
        """Register if needed and return the future the next readiness
        completes; the caller awaits it and then resets ``waiter`` to None."""
        if self.waiter is not None:
            raise BusyResourceError("reading from" if self.for_read else "writing to")

        if not self.registered:
            self._register()

        fut = self.loop.create_future()
        self.waiter = fut
        return fut

    def _register(self) -> None:
        key = (id(self.loop), self.fd, self.for_read)
        other = _current_watch(self.loop, self.fd, self.for_read)
        if other is not None and other is not self:
            if other.waiter is not None:
                raise BusyResourceError(
                    "reading from" if self.for_read else "writing to"
                )

            # An idle registration of another watch (the owner's lingering
            # one, met by a plain wait_readable() call): take it over.
            other.drop()

        if self.for_read:
            self.loop.add_reader(self.fd, self._fire)
        else:
            self.loop.add_writer(self.fd, self._fire)

        self.registered = True
        self.skip = False
        _registered[key] = weakref.ref(self, partial(_forget, key))

    def drop(self) -> None:
        """Remove the registration (the waiter, if any, stays parked)."""
        if not self.registered:
            return

        self.registered = False
        if _current_watch(self.loop, self.fd, self.for_read) is self:
            del _registered[id(self.loop), self.fd, self.for_read]

        if self.for_read:
            self.loop.remove_reader(self.fd)
        else:
            self.loop.remove_writer(self.fd)

    def close(self) -> None:
        """Remove the registration and fail the waiter, if any, with
        :exc:`~anyio.ClosedResourceError`: the descriptor is about to close."""
        self.drop()
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(ClosedResourceError())


# (id(loop), fd, for_read) -> the watch registered with that loop for that
# descriptor and direction. Weak, so that a loop that goes away without its
# watches being dropped is not kept alive through this table; an entry leaves
# when its watch dies.
_registered: dict[tuple[int, int, bool], weakref.ref[Watch]] = {}


def _forget(key: tuple[int, int, bool], ref: weakref.ref[Watch]) -> None:
    if _registered.get(key) is ref:
        del _registered[key]


def _current_watch(
    loop: asyncio.AbstractEventLoop, fd: int, for_read: bool
) -> Watch | None:
    ref = _registered.get((id(loop), fd, for_read))
    watch = ref() if ref is not None else None
    # the id of a loop that is gone may have been reused by this one
    return watch if watch is not None and watch.loop is loop else None


async def _asyncio_wait(obj: FileDescriptorLike, for_read: bool) -> None:
    loop = asyncio.get_running_loop()
    fd = _fileno(obj)
    if fd < 0:
        raise ClosedResourceError

    watch = _current_watch(loop, fd, for_read)
    if watch is None:
        watch = Watch(loop, fd, for_read, obj)

    fut = watch.arm()
    try:
        await fut
    finally:
        watch.waiter = None
        # The caller owns the descriptor and may close it right after this
        # wait without telling us: never leave a registration behind.
        watch.drop()


def _asyncio_notify_closing(fd: int) -> None:
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return

    for for_read in (True, False):
        watch = _current_watch(loop, fd, for_read)
        if watch is not None:
            watch.close()


async def trio_wait(obj: FileDescriptorLike, for_read: bool) -> None:
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
        await trio_wait(obj, True)


async def wait_writable(obj: FileDescriptorLike) -> None:
    """Wait until ``obj`` can accept more data to write.

    The same rules as for :func:`wait_readable` apply.
    """
    if current_backend() == "asyncio":
        await _asyncio_wait(obj, False)
    else:
        await trio_wait(obj, False)


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
