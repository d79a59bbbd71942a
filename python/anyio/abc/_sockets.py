"""Socket interfaces and the typed attributes every socket offers."""

from __future__ import annotations

import socket
from abc import abstractmethod
from collections.abc import Callable, Collection, Mapping
from contextlib import AsyncExitStack
from io import IOBase
from ipaddress import IPv4Address, IPv6Address
from socket import AddressFamily
from typing import TYPE_CHECKING, Any, TypeAlias

from .._typedattr import TypedAttributeProvider, TypedAttributeSet, typed_attribute
from ._streams import ByteStream, Listener, UnreliableObjectStream

if TYPE_CHECKING:
    from ._tasks import TaskGroup

#: A host given as text or as an IP address object.
IPAddressType: TypeAlias = str | IPv4Address | IPv6Address
#: An IP socket address: ``(host, port)``.
IPSockAddrType: TypeAlias = tuple[str, int]
SockAddrType: TypeAlias = IPSockAddrType | str
#: A received UDP datagram: ``(payload, (host, port))``.
UDPPacketType: TypeAlias = tuple[bytes, IPSockAddrType]
#: A received UNIX datagram: ``(payload, sender path)``.
UNIXDatagramPacketType: TypeAlias = tuple[bytes, str]


class SocketAttribute(TypedAttributeSet):
    """Typed attributes offered by every socket-based stream and listener."""

    #: the address family of the socket
    family: AddressFamily = typed_attribute()
    #: the local address (``(host, port)`` for IP sockets, a path for UNIX ones)
    local_address: SockAddrType = typed_attribute()
    #: the local port (IP sockets only)
    local_port: int = typed_attribute()
    #: the underlying socket object
    raw_socket: socket.socket = typed_attribute()
    #: the peer's address (connected sockets only)
    remote_address: SockAddrType = typed_attribute()
    #: the peer's port (connected IP sockets only)
    remote_port: int = typed_attribute()


def _host_and_port(sockaddr: Any) -> SockAddrType:
    # IPv6 addresses come as 4-tuples; the public attribute is (host, port),
    # keeping a non-zero scope id in the host as "host%scope".
    if isinstance(sockaddr, tuple) and len(sockaddr) == 4:
        host, port, _flowinfo, scope_id = sockaddr
        if scope_id:
            return f"{host.partition('%')[0]}%{scope_id}", port

        return host, port

    if isinstance(sockaddr, tuple):
        return sockaddr[0], sockaddr[1]

    return sockaddr  # type: ignore[no-any-return]


class _SocketProvider(TypedAttributeProvider):
    """Derives the :class:`SocketAttribute` values from ``_raw_socket``."""

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        sock = self._raw_socket
        attributes: dict[Any, Callable[[], Any]] = {
            SocketAttribute.family: lambda: sock.family,
            SocketAttribute.local_address: lambda: _host_and_port(sock.getsockname()),
            SocketAttribute.raw_socket: lambda: sock,
        }
        # The peer is looked up once, now: an unconnected socket has no remote
        # attributes at all rather than ones that fail when read.
        try:
            peername = sock.getpeername()
        except OSError:
            peername = None

        if peername is not None:
            attributes[SocketAttribute.remote_address] = lambda: _host_and_port(
                peername
            )

        if sock.family in (socket.AF_INET, socket.AF_INET6):
            attributes[SocketAttribute.local_port] = lambda: sock.getsockname()[1]
            if peername is not None:
                remote_port = peername[1]
                attributes[SocketAttribute.remote_port] = lambda: remote_port

        return attributes

    @property
    @abstractmethod
    def _raw_socket(self) -> socket.socket:
        """The socket object this provider describes."""


def _from_socket(wrapper: str) -> Any:
    """A ``from_socket()`` class method that wraps an existing socket (or file
    descriptor) in this class's implementation for the running backend."""

    async def from_socket(cls: type, sock_or_fd: socket.socket | int) -> Any:
        """Wrap an existing socket object or file descriptor.

        The socket must already be of the right family and type (and connected
        or listening, as the class requires); it is switched to non-blocking.
        """
        from .. import _socket_streams

        return await getattr(_socket_streams, wrapper)(sock_or_fd)

    return classmethod(from_socket)


class SocketStream(ByteStream, _SocketProvider):
    """A byte stream over a connected stream socket (TCP or UNIX).

    Offers the attributes of :class:`SocketAttribute`.
    """

    if TYPE_CHECKING:

        @classmethod
        async def from_socket(cls, sock_or_fd: socket.socket | int) -> SocketStream: ...

    else:
        from_socket = _from_socket("wrap_stream_socket")


class UNIXSocketStream(SocketStream):
    """A stream over a UNIX domain socket, which can also pass file descriptors."""

    if TYPE_CHECKING:

        @classmethod
        async def from_socket(
            cls, sock_or_fd: socket.socket | int
        ) -> UNIXSocketStream: ...

    else:
        from_socket = _from_socket("wrap_unix_stream_socket")

    @abstractmethod
    async def send_fds(self, message: bytes, fds: Collection[int | IOBase]) -> None:
        """Send `message` together with the given file descriptors.

        :param message: a non-empty bytestring
        :param fds: file descriptors, or objects that have one (``fileno()``)
        """

    @abstractmethod
    async def receive_fds(self, msglen: int, maxfds: int) -> tuple[bytes, list[int]]:
        """Receive a message together with file descriptors.

        :param msglen: the largest message to receive
        :param maxfds: the largest number of file descriptors to receive
        :return: the message and the received file descriptors
        """


class SocketListener(Listener[SocketStream], _SocketProvider):
    """Accepts connections on a listening socket.

    Offers the attributes of :class:`SocketAttribute`.
    """

    if TYPE_CHECKING:

        @classmethod
        async def from_socket(
            cls, sock_or_fd: socket.socket | int
        ) -> SocketListener: ...

    else:
        from_socket = _from_socket("wrap_listener_socket")

    @abstractmethod
    async def accept(self) -> SocketStream:
        """Wait for a new connection and return its stream."""

    async def serve(
        self,
        handler: Callable[[SocketStream], Any],
        task_group: TaskGroup | None = None,
    ) -> None:
        from .._taskgroup import create_task_group

        async with AsyncExitStack() as stack:
            if task_group is None:
                task_group = await stack.enter_async_context(create_task_group())

            while True:
                stream = await self.accept()
                task_group.start_soon(handler, stream)


class UDPSocket(UnreliableObjectStream[UDPPacketType], _SocketProvider):
    """An unconnected UDP socket: receives ``(data, (host, port))`` packets and
    sends them to explicit destinations.

    Offers the attributes of :class:`SocketAttribute`.
    """

    if TYPE_CHECKING:

        @classmethod
        async def from_socket(cls, sock_or_fd: socket.socket | int) -> UDPSocket: ...

    else:
        from_socket = _from_socket("wrap_udp_socket")

    async def sendto(self, data: bytes, host: str, port: int) -> None:
        """Send `data` to ``(host, port)``; the same as ``send((data, (host, port)))``."""
        return await self.send((data, (host, port)))


class ConnectedUDPSocket(UnreliableObjectStream[bytes], _SocketProvider):
    """A UDP socket connected to one peer: sends and receives plain payloads.

    Offers the attributes of :class:`SocketAttribute`.
    """

    if TYPE_CHECKING:

        @classmethod
        async def from_socket(
            cls, sock_or_fd: socket.socket | int
        ) -> ConnectedUDPSocket: ...

    else:
        from_socket = _from_socket("wrap_connected_udp_socket")


class UNIXDatagramSocket(
    UnreliableObjectStream[UNIXDatagramPacketType], _SocketProvider
):
    """An unconnected UNIX datagram socket: receives ``(data, path)`` packets.

    Offers the attributes of :class:`SocketAttribute`.
    """

    if TYPE_CHECKING:

        @classmethod
        async def from_socket(
            cls, sock_or_fd: socket.socket | int
        ) -> UNIXDatagramSocket: ...

    else:
        from_socket = _from_socket("wrap_unix_datagram_socket")

    async def sendto(self, data: bytes, path: str) -> None:
        """Send `data` to the socket at `path`; the same as ``send((data, path))``."""
        return await self.send((data, path))


class ConnectedUNIXDatagramSocket(UnreliableObjectStream[bytes], _SocketProvider):
    """A UNIX datagram socket connected to one peer.

    Offers the attributes of :class:`SocketAttribute`.
    """

    if TYPE_CHECKING:

        @classmethod
        async def from_socket(
            cls, sock_or_fd: socket.socket | int
        ) -> ConnectedUNIXDatagramSocket: ...

    else:
        from_socket = _from_socket("wrap_connected_unix_datagram_socket")
