"""Socket streams, listeners and datagram sockets over plain non-blocking sockets.

One implementation serves both backends: each operation first tries the
non-blocking system call and only parks on :mod:`anyio._fdwait` when the kernel
says it would block. That keeps the semantics the tests of anyio demand
without per-backend transports:

- a ``send()`` cancelled while waiting has handed nothing to the kernel, so it
  can never leak data into the next ``send()``;
- ``aclose()`` releases the descriptor before it returns;
- every operation is a checkpoint, cancellable before it does anything, and
  not cancellable once data has moved (the system call succeeded).

On asyncio each wrapper keeps its reader and writer registrations
(:class:`anyio._fdwait.Watch`) from one wait to the next instead of paying for
a registration per wait; closing the wrapper removes them before the
descriptor is closed.
"""

from __future__ import annotations

import array
import asyncio
import errno
import os
import socket
from collections.abc import Callable, Collection
from io import IOBase
from typing import Any

from ._cpp import cancel_shielded_checkpoint as _cancel_shielded_checkpoint
from ._cpp import checkpoint as _checkpoint
from ._cpp import checkpoint_if_cancelled as _checkpoint_if_cancelled
from ._cpp import running_loop as _running_loop
from ._exceptions import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    EndOfStream,
)
from ._fdwait import Watch, notify_closing, trio_wait
from .abc import (
    ConnectedUDPSocket,
    ConnectedUNIXDatagramSocket,
    SocketListener,
    SocketStream,
    UDPSocket,
    UNIXDatagramSocket,
    UNIXSocketStream,
)

_IP_FAMILIES = (socket.AF_INET, socket.AF_INET6)
_RECEIVE_SIZE = 65536
# accept() failures that concern only the connection being accepted
_ACCEPT_RETRY = {errno.ECONNABORTED, errno.EPROTO, errno.EPERM}


def convert_address(address: Any) -> Any:
    """IPv6 socket addresses carry flow info and scope id; anyio reports
    ``(host, port)`` for both IP families, and paths unchanged."""
    if isinstance(address, tuple) and len(address) > 2:
        return address[:2]

    return address


class _SocketHolder:
    """Shared state and closing logic of every socket wrapper below."""

    _sock: socket.socket
    _closed: bool
    _reading: bool
    _writing: bool
    # asyncio registrations of the descriptor, kept between waits
    _rwatch: Watch | None
    _wwatch: Watch | None

    def _init_socket(self, sock: socket.socket) -> None:
        sock.setblocking(False)
        self._sock = sock
        self._closed = False
        self._reading = False
        self._writing = False
        self._rwatch = None
        self._wwatch = None

    @property
    def _raw_socket(self) -> socket.socket:
        return self._sock

    def _close_now(self) -> None:
        if not self._closed:
            self._closed = True
            try:
                # Our registrations go whatever the descriptor's state: the
                # loop must not keep watching a number that may be reused.
                for watch in (self._rwatch, self._wwatch):
                    if watch is not None:
                        watch.close()

                if self._sock.fileno() >= 0:
                    notify_closing(self._sock)
            finally:
                self._sock.close()

    async def aclose(self) -> None:
        self._close_now()
        await _checkpoint()

    def _start(self, reading: bool) -> None:
        if reading:
            if self._reading:
                raise BusyResourceError("reading from")

            self._reading = True
        else:
            if self._writing:
                raise BusyResourceError("writing to")

            self._writing = True

    def _error(self, exc: OSError) -> Exception:
        """Map an OS error of an I/O call: after our own close it means
        ClosedResourceError, otherwise the connection broke."""
        if self._closed:
            return ClosedResourceError()

        return BrokenResourceError()

    def _new_watch(self, loop: asyncio.AbstractEventLoop, reading: bool) -> Watch:
        fd = self._sock.fileno()
        if fd < 0:
            raise ClosedResourceError

        old = self._rwatch if reading else self._wwatch
        if old is not None:
            # left registered with a loop this socket was used on before
            old.drop()

        watch = Watch(loop, fd, reading, self._sock)
        if reading:
            self._rwatch = watch
        else:
            self._wwatch = watch

        return watch

    async def _wait(self, reading: bool) -> None:
        """Park until the socket is readable (or writable)."""
        loop = _running_loop()
        if loop is None:
            await trio_wait(self._sock, reading)
            return

        watch = self._rwatch if reading else self._wwatch
        if watch is None or watch.loop is not loop:
            watch = self._new_watch(loop, reading)

        fut = watch.arm()
        try:
            await fut
        finally:
            watch.waiter = None

    async def _io_call(self, call: Callable[[], Any], reading: bool) -> Any:
        """Run ``call`` (a non-blocking socket operation) until it stops saying
        EAGAIN, waiting for readiness in between; a checkpoint either way."""
        self._start(reading)
        try:
            await _checkpoint_if_cancelled()
            waited = False
            while True:
                if self._closed:
                    raise ClosedResourceError

                try:
                    result = call()
                except (BlockingIOError, InterruptedError):
                    await self._wait(reading)
                    waited = True
                except OSError as exc:
                    raise self._error(exc) from exc
                else:
                    break

            if not waited:
                await _cancel_shielded_checkpoint()

            return result
        finally:
            if reading:
                self._reading = False
            else:
                self._writing = False

    async def _recv_call(self, call: Callable[[], Any]) -> Any:
        return await self._io_call(call, True)

    async def _send_call(self, call: Callable[[], Any]) -> Any:
        return await self._io_call(call, False)


def _check_max_bytes(max_bytes: int) -> None:
    if not isinstance(max_bytes, int) or max_bytes < 1:
        raise ValueError("max_bytes must be a positive integer")


class _StreamMixin(_SocketHolder):
    async def receive(self, max_bytes: int = _RECEIVE_SIZE) -> bytes:
        # _io_call() spelled out: this is the hottest path of every protocol
        _check_max_bytes(max_bytes)
        if self._reading:
            raise BusyResourceError("reading from")

        self._reading = True
        try:
            await _checkpoint_if_cancelled()
            waited = False
            while True:
                if self._closed:
                    raise ClosedResourceError

                try:
                    data = self._sock.recv(max_bytes)
                except (BlockingIOError, InterruptedError):
                    await self._wait(True)
                    waited = True
                except OSError as exc:
                    raise self._error(exc) from exc
                else:
                    break

            if not waited:
                await _cancel_shielded_checkpoint()
        finally:
            self._reading = False

        if not data:
            raise EndOfStream

        return data

    async def send(self, item: bytes) -> None:
        if self._writing:
            raise BusyResourceError("writing to")

        self._writing = True
        try:
            await _checkpoint_if_cancelled()
            view = memoryview(item).cast("B")
            waited = False
            while True:
                if self._closed:
                    raise ClosedResourceError

                try:
                    sent = self._sock.send(view)
                except (BlockingIOError, InterruptedError):
                    await self._wait(False)
                    waited = True
                except OSError as exc:
                    raise self._error(exc) from exc
                else:
                    if sent == len(view):
                        break

                    view = view[sent:]

            if not waited:
                await _cancel_shielded_checkpoint()
        finally:
            self._writing = False

    async def send_eof(self) -> None:
        if self._closed:
            return

        try:
            self._sock.shutdown(socket.SHUT_WR)
        except OSError as exc:
            # The peer may already have dropped the connection
            if exc.errno != errno.ENOTCONN:
                raise BrokenResourceError from exc


class SocketStreamImpl(_StreamMixin, SocketStream):
    """A connected TCP (or other stream-type) socket."""

    def __init__(self, sock: socket.socket):
        self._init_socket(sock)


class UNIXSocketStreamImpl(_StreamMixin, UNIXSocketStream):
    """A connected UNIX stream (or seqpacket) socket, able to pass descriptors."""

    def __init__(self, sock: socket.socket):
        self._init_socket(sock)

    async def receive_fds(self, msglen: int, maxfds: int) -> tuple[bytes, list[int]]:
        if not isinstance(msglen, int) or msglen < 0:
            raise ValueError("msglen must be a non-negative integer")

        if not isinstance(maxfds, int) or maxfds < 1:
            raise ValueError("maxfds must be a positive integer")

        fds = array.array("i")
        ancbufsize = socket.CMSG_SPACE(maxfds * fds.itemsize)
        message, ancdata, _flags, _addr = await self._recv_call(
            lambda: self._sock.recvmsg(msglen, ancbufsize)
        )
        if not message and not ancdata:
            raise EndOfStream

        for level, kind, data in ancdata:
            if level != socket.SOL_SOCKET or kind != socket.SCM_RIGHTS:
                raise RuntimeError(
                    f"Received unexpected ancillary data; message = {message!r}, "
                    f"cmsg_level = {level}, cmsg_type = {kind}"
                )

            fds.frombytes(data[: len(data) - (len(data) % fds.itemsize)])

        return message, list(fds)

    async def send_fds(self, message: bytes, fds: Collection[int | IOBase]) -> None:
        if not message:
            raise ValueError("message must not be empty")

        if not fds:
            raise ValueError("fds must not be empty")

        fdarray = array.array(
            "i", (fd if isinstance(fd, int) else fd.fileno() for fd in fds)
        )
        cmsg = [(socket.SOL_SOCKET, socket.SCM_RIGHTS, fdarray)]
        view = memoryview(message).cast("B")
        # The descriptors ride along with the first chunk the kernel accepts;
        # whatever it did not take goes out as ordinary data.
        sent = await self._send_call(lambda: self._sock.sendmsg([view], cmsg))
        if sent < len(view):
            await self.send(bytes(view[sent:]))


class SocketListenerImpl(_SocketHolder, SocketListener):
    """A listening socket; accepted connections become socket streams."""

    def __init__(self, sock: socket.socket):
        self._init_socket(sock)

    async def accept(self) -> SocketStream:
        def accept_one() -> socket.socket:
            while True:
                try:
                    return self._sock.accept()[0]
                except OSError as exc:
                    if exc.errno not in _ACCEPT_RETRY:
                        raise

        self._start(True)
        try:
            await _checkpoint_if_cancelled()
            waited = False
            while True:
                if self._closed:
                    raise ClosedResourceError

                try:
                    client = accept_one()
                except (BlockingIOError, InterruptedError):
                    await self._wait(True)
                    waited = True
                except OSError:
                    if self._closed:
                        raise ClosedResourceError from None

                    raise
                else:
                    break

            if not waited:
                await _cancel_shielded_checkpoint()
        finally:
            self._reading = False

        return wrap_accepted(client)

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__} {self._sock!r}>"


def wrap_accepted(client: socket.socket) -> SocketStream:
    client.setblocking(False)
    if client.family in _IP_FAMILIES:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return SocketStreamImpl(client)

    if client.family == getattr(socket, "AF_UNIX", None):
        return UNIXSocketStreamImpl(client)

    return SocketStreamImpl(client)


class UDPSocketImpl(_SocketHolder, UDPSocket):
    """An unconnected UDP socket: datagrams come with their sender's address."""

    def __init__(self, sock: socket.socket):
        self._init_socket(sock)

    async def receive(self) -> tuple[bytes, tuple[str, int]]:
        data, addr = await self._recv_call(lambda: self._sock.recvfrom(_RECEIVE_SIZE))
        return data, convert_address(addr)

    async def send(self, item: tuple[bytes, tuple[str, int]]) -> None:
        data, addr = item
        await self._send_call(lambda: self._sock.sendto(data, addr))


class ConnectedUDPSocketImpl(_SocketHolder, ConnectedUDPSocket):
    """A UDP socket connected to one peer."""

    def __init__(self, sock: socket.socket):
        self._init_socket(sock)

    async def receive(self) -> bytes:
        data: bytes = await self._recv_call(lambda: self._sock.recv(_RECEIVE_SIZE))
        return data

    async def send(self, item: bytes) -> None:
        await self._send_call(lambda: self._sock.send(item))


class UNIXDatagramSocketImpl(_SocketHolder, UNIXDatagramSocket):
    """An unconnected UNIX datagram socket."""

    def __init__(self, sock: socket.socket):
        self._init_socket(sock)

    async def receive(self) -> tuple[bytes, str]:
        data, addr = await self._recv_call(lambda: self._sock.recvfrom(_RECEIVE_SIZE))
        return data, addr

    async def send(self, item: tuple[bytes, str]) -> None:
        data, path = item
        target = os.fspath(path) if not isinstance(path, (str, bytes)) else path
        await self._send_call(lambda: self._sock.sendto(data, target))


class ConnectedUNIXDatagramSocketImpl(_SocketHolder, ConnectedUNIXDatagramSocket):
    """A UNIX datagram socket connected to one peer."""

    def __init__(self, sock: socket.socket):
        self._init_socket(sock)

    async def receive(self) -> bytes:
        data: bytes = await self._recv_call(lambda: self._sock.recv(_RECEIVE_SIZE))
        return data

    async def send(self, item: bytes) -> None:
        await self._send_call(lambda: self._sock.send(item))


# -- adopting existing sockets (the abc classes' from_socket()) ---------------


def _kind_name(kind: int) -> str:
    try:
        return socket.SocketKind(kind).name
    except ValueError:
        return str(kind)


def _family_name(family: int) -> str:
    try:
        return socket.AddressFamily(family).name
    except ValueError:
        return str(family)


def validate_socket(
    sock_or_fd: socket.socket | int,
    kind: socket.SocketKind,
    family: socket.AddressFamily | None = None,
    *,
    require_connected: bool = False,
    require_bound: bool = False,
) -> socket.socket:
    """Turn ``sock_or_fd`` into a socket object and check that it is what the
    wrapper needs. On a mismatch the caller's descriptor is left open."""
    if isinstance(sock_or_fd, int):
        try:
            sock = socket.socket(fileno=sock_or_fd)
        except OSError as exc:
            if exc.errno == errno.ENOTSOCK:
                raise ValueError(
                    "the file descriptor does not refer to a socket"
                ) from None

            raise

        owned = True
    elif isinstance(sock_or_fd, socket.socket):
        sock = sock_or_fd
        owned = False
    else:
        raise TypeError(
            f"expected an int or socket, got {type(sock_or_fd).__qualname__} instead"
        )

    try:
        if require_connected:
            try:
                sock.getpeername()
            except OSError:
                raise ValueError("the socket must be connected") from None

        if require_bound:
            try:
                name = sock.getsockname()
            except OSError:
                name = None

            unbound = (
                not name
                or (isinstance(name, tuple) and name[1] == 0)
                or (sock.family == getattr(socket, "AF_UNIX", None) and not name)
            )
            if unbound:
                raise ValueError("the socket must be bound")

        if family is not None and sock.family != family:
            raise ValueError(
                f"address family mismatch: expected {_family_name(family)}, "
                f"got {_family_name(sock.family)}"
            )

        if sock.type != kind:
            raise ValueError(
                f"socket type mismatch: expected {_kind_name(kind)}, "
                f"got {_kind_name(sock.type)}"
            )
    except BaseException:
        if owned:
            # Give the descriptor back untouched rather than closing it
            sock.detach()

        raise

    sock.setblocking(False)
    return sock


async def wrap_stream_socket(sock: socket.socket | int) -> SocketStream:
    raw = validate_socket(sock, socket.SOCK_STREAM, require_connected=True)
    await _checkpoint()
    if raw.family in _IP_FAMILIES:
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    if raw.family == getattr(socket, "AF_UNIX", None):
        return UNIXSocketStreamImpl(raw)

    return SocketStreamImpl(raw)


async def wrap_unix_stream_socket(sock: socket.socket | int) -> UNIXSocketStream:
    raw = validate_socket(
        sock, socket.SOCK_STREAM, socket.AF_UNIX, require_connected=True
    )
    await _checkpoint()
    return UNIXSocketStreamImpl(raw)


async def wrap_listener_socket(sock: socket.socket | int) -> SocketListener:
    raw = validate_socket(sock, socket.SOCK_STREAM, require_bound=True)
    await _checkpoint()
    return SocketListenerImpl(raw)


async def wrap_udp_socket(sock: socket.socket | int) -> UDPSocket:
    raw = validate_socket(sock, socket.SOCK_DGRAM, require_bound=True)
    await _checkpoint()
    return UDPSocketImpl(raw)


async def wrap_connected_udp_socket(sock: socket.socket | int) -> ConnectedUDPSocket:
    raw = validate_socket(sock, socket.SOCK_DGRAM, require_connected=True)
    await _checkpoint()
    return ConnectedUDPSocketImpl(raw)


async def wrap_unix_datagram_socket(sock: socket.socket | int) -> UNIXDatagramSocket:
    raw = validate_socket(sock, socket.SOCK_DGRAM, socket.AF_UNIX)
    await _checkpoint()
    return UNIXDatagramSocketImpl(raw)


async def wrap_connected_unix_datagram_socket(
    sock: socket.socket | int,
) -> ConnectedUNIXDatagramSocket:
    raw = validate_socket(
        sock, socket.SOCK_DGRAM, socket.AF_UNIX, require_connected=True
    )
    await _checkpoint()
    return ConnectedUNIXDatagramSocketImpl(raw)
