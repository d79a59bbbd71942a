"""Opening network connections, listeners and datagram sockets; name resolution.

Sockets are created, bound and connected here with the standard library (all
non-blocking), then handed to the wrappers of :mod:`anyio._socket_streams`.
Name resolution goes through the running backend's resolver, which runs the
blocking ``getaddrinfo()`` off the event loop thread.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import stat
import sys
import warnings
from collections.abc import Awaitable
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address, ip_address
from os import PathLike
from typing import TYPE_CHECKING, Any, Literal, cast, overload

from . import to_thread
from ._backend import current_backend
from ._cancel import CancelScope, move_on_after
from ._exceptions import ConnectionFailed
from ._fdwait import notify_closing as notify_closing
from ._fdwait import wait_readable as wait_readable
from ._fdwait import wait_writable as wait_writable
from ._socket_streams import (
    ConnectedUDPSocketImpl,
    ConnectedUNIXDatagramSocketImpl,
    SocketListenerImpl,
    SocketStreamImpl,
    UDPSocketImpl,
    UNIXDatagramSocketImpl,
    UNIXSocketStreamImpl,
    convert_address,
)
from ._taskgroup import create_task_group
from ._time import sleep, sleep_forever
from .abc import (
    ByteStreamConnectable,
    ConnectedUDPSocket,
    ConnectedUNIXDatagramSocket,
    SocketListener,
    SocketStream,
    UDPSocket,
    UNIXDatagramSocket,
    UNIXSocketStream,
)
from .lowlevel import checkpoint, checkpoint_if_cancelled

if TYPE_CHECKING:
    import ssl

    from .streams.stapled import MultiListener
    from .streams.tls import TLSStream

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

IPAddressType = str | IPv4Address | IPv6Address
AnyIPAddressFamily = Literal[
    socket.AddressFamily.AF_UNSPEC,
    socket.AddressFamily.AF_INET,
    socket.AddressFamily.AF_INET6,
]
IPAddressFamily = Literal[socket.AddressFamily.AF_INET, socket.AddressFamily.AF_INET6]
GetAddrInfoReturnType = list[
    tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int]]
]

# How many times create_tcp_listener() tries to find a port free on every
# address when the kernel picks it
_CONSISTENT_PORT_ATTEMPTS = 10
_MAX_BACKLOG = 65536


def _new_socket(family: int, kind: int) -> socket.socket:
    """A new socket object. On Trio it comes from ``trio.socket.socket()``, so
    a custom socket factory installed there sees it being created."""
    if current_backend() == "trio":
        import trio

        trio_sock = trio.socket.socket(family, kind)
        return socket.socket(family, kind, fileno=trio_sock.detach())

    return socket.socket(family, kind)


# -- name resolution -----------------------------------------------------------


def _encode_host(host: bytes | str | None) -> bytes | str | None:
    """Host names go to the resolver as ASCII; international names are
    encoded with IDNA 2008 (UTS 46 mapping), not the standard library's
    outdated IDNA 2003 codec, which maps some names to different domains."""
    if isinstance(host, str):
        try:
            return host.encode("ascii")
        except UnicodeEncodeError:
            import idna

            return idna.encode(host, uts46=True)

    return host


def _is_numeric_host(host: bytes | str) -> bool:
    text = host.decode("ascii", "replace") if isinstance(host, bytes) else host
    try:
        ip_address(text.partition("%")[0])
    except ValueError:
        return False

    return True


async def _resolve(
    host: bytes | str | None,
    port: str | int | None,
    family: int = 0,
    type: int = 0,
    proto: int = 0,
    flags: int = 0,
) -> list[tuple[Any, Any, int, str, Any]]:
    """The backend's resolver, with socket addresses as the OS gives them."""
    encoded = _encode_host(host)
    if encoded is not None and _is_numeric_host(encoded):
        # Nothing to look up, so no worker thread needed. (This also keeps the
        # scope id of a link-local address, which uvloop's resolver drops.)
        results = socket.getaddrinfo(
            encoded, port, family, type, proto, flags | socket.AI_NUMERICHOST
        )
        await checkpoint()
        return results

    if current_backend() == "asyncio":
        loop = asyncio.get_running_loop()
        return await loop.getaddrinfo(
            encoded, port, family=family, type=type, proto=proto, flags=flags
        )

    import trio

    return cast(
        "list[tuple[Any, Any, int, str, Any]]",
        await trio.socket.getaddrinfo(encoded, port, family, type, proto, flags),
    )


async def getaddrinfo(
    host: bytes | str | None,
    port: str | int | None,
    *,
    family: int | socket.AddressFamily = 0,
    type: int | socket.SocketKind = 0,
    proto: int = 0,
    flags: int = 0,
) -> GetAddrInfoReturnType:
    """Look up a host name (or numeric address) and port asynchronously.

    Works like :func:`socket.getaddrinfo`, except that international host
    names are encoded with IDNA 2008 and IPv6 socket addresses are reduced to
    ``(host, port)``. Results the OS returns for a disabled IPv6 stack (with no
    usable address) are left out.
    """
    results = await _resolve(host, port, family, type, proto, flags)
    return [
        (
            socket.AddressFamily(fam),
            socket.SocketKind(kind),
            prot,
            canonname,
            convert_address(sockaddr),
        )
        for fam, kind, prot, canonname, sockaddr in results
        if not isinstance(sockaddr[0], int)
    ]


def getnameinfo(
    sockaddr: tuple[str, int] | tuple[str, int, int, int], flags: int = 0
) -> Awaitable[tuple[str, str]]:
    """Look up the host name and service name of a socket address, as
    :func:`socket.getnameinfo` does, without blocking the event loop."""
    if current_backend() == "asyncio":
        return asyncio.get_running_loop().getnameinfo(sockaddr, flags)

    import trio

    return cast("Awaitable[tuple[str, str]]", trio.socket.getnameinfo(sockaddr, flags))


# -- waiting on sockets (deprecated spellings) ---------------------------------


def wait_socket_readable(sock: socket.socket) -> Awaitable[None]:
    """Deprecated alias of :func:`wait_readable` (for sockets only)."""
    warnings.warn(
        "This function is deprecated; use `wait_readable` instead",
        DeprecationWarning,
        stacklevel=2,
    )
    return wait_readable(sock)


def wait_socket_writable(sock: socket.socket) -> Awaitable[None]:
    """Deprecated alias of :func:`wait_writable` (for sockets only)."""
    warnings.warn(
        "This function is deprecated; use `wait_writable` instead",
        DeprecationWarning,
        stacklevel=2,
    )
    return wait_writable(sock)


# -- TCP -------------------------------------------------------------------------


def _interleave(
    targets: list[tuple[Any, Any, int, str, Any]],
) -> list[tuple[socket.AddressFamily, Any]]:
    """Order the addresses to try as RFC 8305 suggests: alternate between
    the families, IPv6 first, each family keeping the resolver's order."""
    seen: set[tuple[int, Any]] = set()
    v6: list[tuple[socket.AddressFamily, Any]] = []
    v4: list[tuple[socket.AddressFamily, Any]] = []
    for fam, _kind, _proto, _canon, sockaddr in targets:
        key = (fam, sockaddr)
        if key in seen:
            continue

        seen.add(key)
        if fam == socket.AF_INET6:
            v6.append((socket.AF_INET6, sockaddr))
        elif fam == socket.AF_INET:
            v4.append((socket.AF_INET, sockaddr))

    ordered: list[tuple[socket.AddressFamily, Any]] = []
    for index in range(max(len(v6), len(v4))):
        ordered.extend(v6[index : index + 1])
        ordered.extend(v4[index : index + 1])

    return ordered


async def _connect_socket(
    family: socket.AddressFamily, sockaddr: Any, local_address: Any
) -> socket.socket:
    """Connect one TCP socket without blocking; closes it on any failure."""
    sock = _new_socket(family, socket.SOCK_STREAM)
    try:
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if local_address is not None:
            sock.bind(local_address)

        try:
            sock.connect(sockaddr)
        except BlockingIOError:
            await wait_writable(sock)
            code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if code:
                # OSError() picks the matching subclass (ConnectionRefusedError...)
                raise OSError(
                    code,
                    f"Error connecting to {convert_address(sockaddr)!r}: "
                    f"{os.strerror(code)}",
                ) from None
        return sock
    except BaseException:
        sock.close()
        raise


def _wildcard(family: int) -> str:
    return "::" if family == socket.AF_INET6 else "0.0.0.0"


@overload
async def connect_tcp(
    remote_host: IPAddressType,
    remote_port: int,
    *,
    local_host: IPAddressType | None = ...,
    local_port: int | None = ...,
    ssl_context: ssl.SSLContext | None = ...,
    tls_standard_compatible: bool = ...,
    tls_hostname: str,
    happy_eyeballs_delay: float = ...,
) -> TLSStream: ...


@overload
async def connect_tcp(
    remote_host: IPAddressType,
    remote_port: int,
    *,
    local_host: IPAddressType | None = ...,
    local_port: int | None = ...,
    ssl_context: ssl.SSLContext,
    tls_standard_compatible: bool = ...,
    tls_hostname: str | None = ...,
    happy_eyeballs_delay: float = ...,
) -> TLSStream: ...


@overload
async def connect_tcp(
    remote_host: IPAddressType,
    remote_port: int,
    *,
    local_host: IPAddressType | None = ...,
    local_port: int | None = ...,
    tls: Literal[True],
    ssl_context: ssl.SSLContext | None = ...,
    tls_standard_compatible: bool = ...,
    tls_hostname: str | None = ...,
    happy_eyeballs_delay: float = ...,
) -> TLSStream: ...


@overload
async def connect_tcp(
    remote_host: IPAddressType,
    remote_port: int,
    *,
    local_host: IPAddressType | None = ...,
    local_port: int | None = ...,
    tls: Literal[False],
    ssl_context: ssl.SSLContext | None = ...,
    tls_standard_compatible: bool = ...,
    tls_hostname: str | None = ...,
    happy_eyeballs_delay: float = ...,
) -> SocketStream: ...


@overload
async def connect_tcp(
    remote_host: IPAddressType,
    remote_port: int,
    *,
    local_host: IPAddressType | None = ...,
    local_port: int | None = ...,
    happy_eyeballs_delay: float = ...,
) -> SocketStream: ...


async def connect_tcp(
    remote_host: IPAddressType,
    remote_port: int,
    *,
    local_host: IPAddressType | None = None,
    local_port: int | None = None,
    tls: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    tls_standard_compatible: bool = True,
    tls_hostname: str | None = None,
    happy_eyeballs_delay: float = 0.25,
) -> SocketStream | TLSStream:
    """Open a TCP connection to ``remote_host:remote_port``.

    When the name resolves to several addresses, they are tried with the
    "happy eyeballs" algorithm (RFC 8305): IPv6 and IPv4 alternately, a new
    attempt starting whenever the previous one fails or has been pending for
    ``happy_eyeballs_delay`` seconds. The first connection to succeed wins; the
    others are abandoned and closed.

    :param local_host: the interface address to connect from
    :param local_port: the local port to connect from
    :param tls: wrap the connection in TLS (implied by ``ssl_context`` or
        ``tls_hostname``)
    :param ssl_context: the client-side SSL context (default: the system
        trust store, as :func:`ssl.create_default_context` makes it)
    :param tls_standard_compatible: see :meth:`~anyio.streams.tls.TLSStream.wrap`
    :param tls_hostname: the name to verify the server's certificate against
        (default: ``remote_host``)
    :raises OSError: ``"All connection attempts failed"``, with the failure
        (or an exception group of all of them) as ``__cause__``
    """
    if ssl_context is not None or tls_hostname:
        tls = True

    local_address: Any = None
    if local_host is not None:
        local_results = await _resolve(
            str(local_host), local_port or 0, type=socket.SOCK_STREAM
        )
        if local_results:
            local_address = local_results[0][-1]

    target_host = str(remote_host)
    try:
        address = ip_address(target_host)
    except ValueError:
        # Not raised from inside an except block: a resolver error should not
        # carry this ValueError as its context
        address = None

    if address is not None:
        fam = socket.AF_INET6 if address.version == 6 else socket.AF_INET
        targets: list[tuple[socket.AddressFamily, Any]] = [
            (fam, (target_host, remote_port))
        ]
    else:
        results = await _resolve(target_host, remote_port, type=socket.SOCK_STREAM)
        targets = _interleave(results)

    if not targets:
        raise OSError(f"{target_host!r} has no IPv4 or IPv6 address to connect to")

    winner: socket.socket | None = None
    oserrors: list[OSError] = []

    async def attempt(
        family: socket.AddressFamily, sockaddr: Any, wake: CancelScope
    ) -> None:
        nonlocal winner
        bind_address = local_address
        if bind_address is None and local_port:
            bind_address = (_wildcard(family), local_port)

        try:
            sock = await _connect_socket(family, sockaddr, bind_address)
        except OSError as exc:
            oserrors.append(exc)
            # Start the next attempt right away instead of after the delay
            wake.cancel()
            return

        if winner is None:
            winner = sock
            tg.cancel_scope.cancel()
        else:
            sock.close()

    try:
        async with create_task_group() as tg:
            for index, (family, sockaddr) in enumerate(targets):
                wake = move_on_after(happy_eyeballs_delay)
                tg.start_soon(attempt, family, sockaddr, wake)
                if index < len(targets) - 1:
                    with wake:
                        await sleep_forever()
        # A cancellation that arrived while the last attempt connected: on
        # Trio the group's exit leaves it to the next checkpoint, which must
        # not come after the stream is handed out.
        await checkpoint_if_cancelled()
    except BaseException:
        # Cancelled from outside after an attempt had already won
        if winner is not None:
            winner.close()
            winner = None

        oserrors.clear()
        raise

    if winner is None:
        try:
            if len(oserrors) == 1:
                raise OSError("All connection attempts failed") from oserrors[0]

            raise OSError("All connection attempts failed") from ExceptionGroup(
                "multiple connection attempts failed", oserrors
            )
        finally:
            # Break the cycles through this frame (the exceptions' tracebacks
            # reach the attempt frames, whose closures reach this list)
            del oserrors

    stream: SocketStream = SocketStreamImpl(winner)
    if tls:
        from .streams.tls import TLSStream

        try:
            return await TLSStream.wrap(
                stream,
                server_side=False,
                hostname=tls_hostname or target_host,
                ssl_context=ssl_context,
                standard_compatible=tls_standard_compatible,
            )
        except BaseException:
            stream._close_now()  # type: ignore[attr-defined]
            raise

    return stream


async def create_tcp_listener(
    *,
    local_host: IPAddressType | None = None,
    local_port: int = 0,
    family: AnyIPAddressFamily = socket.AddressFamily.AF_UNSPEC,
    backlog: int = 65536,
    reuse_port: bool = False,
) -> MultiListener[SocketStream]:
    """Listen for TCP connections on every address ``local_host`` resolves to.

    With no ``local_host``, listens on all interfaces: one dual-stack IPv6
    socket where the OS supports that, otherwise one socket per family. All the
    listening sockets share one port; with ``local_port=0`` the kernel picks
    one that is free on every address.

    :param backlog: the most connections the kernel queues before they are
        accepted (capped at 65536)
    :param reuse_port: set ``SO_REUSEPORT``, so several processes can listen on
        the same port
    """
    from .streams.stapled import MultiListener

    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port is not supported on this platform")

    backlog = min(backlog, _MAX_BACKLOG)
    host = str(local_host) if local_host is not None else None
    results = await _resolve(
        host,
        local_port,
        family,
        socket.SOCK_STREAM if sys.platform != "win32" else 0,
        0,
        socket.AI_PASSIVE | socket.AI_ADDRCONFIG,
    )
    addresses: list[tuple[socket.AddressFamily, Any]] = []
    for fam, _kind, _proto, _canon, sockaddr in results:
        if fam not in (socket.AF_INET, socket.AF_INET6):
            continue

        if (fam, sockaddr) not in addresses:
            addresses.append((socket.AddressFamily(fam), sockaddr))

    dualstack = (
        host is None
        and family == socket.AF_UNSPEC
        and socket.has_dualstack_ipv6()
        and any(fam == socket.AF_INET6 for fam, _ in addresses)
    )
    if dualstack:
        addresses = [entry for entry in addresses if entry[0] == socket.AF_INET6][:1]

    for _ in range(_CONSISTENT_PORT_ATTEMPTS):
        sockets: list[socket.socket] = []
        port = local_port
        try:
            for fam, sockaddr in addresses:
                sock = socket.socket(fam, socket.SOCK_STREAM)
                sockets.append(sock)
                if sys.platform == "win32":
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_EXCLUSIVEADDRUSE, 1)
                else:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

                if reuse_port:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)

                if fam == socket.AF_INET6:
                    sock.setsockopt(
                        socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0 if dualstack else 1
                    )

                sock.bind((sockaddr[0], port, *sockaddr[2:]))
                if not port:
                    port = sock.getsockname()[1]

                sock.listen(backlog)
        except OSError as exc:
            for sock in sockets:
                sock.close()

            # A port the kernel picked for the first address may be taken on
            # another one; pick again. An explicit port is the caller's choice.
            if exc.errno == errno.EADDRINUSE and local_port == 0 and len(sockets) > 1:
                continue

            raise
        except BaseException:
            for sock in sockets:
                sock.close()

            raise

        listeners = [SocketListenerImpl(sock) for sock in sockets]
        await checkpoint()
        return MultiListener(listeners)

    raise OSError(
        errno.EADDRINUSE,
        f"Could not create {len(addresses)} listeners with a consistent port",
    )


# -- UNIX stream sockets -----------------------------------------------------


def _unix_path(path: str | bytes | PathLike[Any]) -> str | bytes:
    return os.fspath(path)


def _is_abstract(path: str | bytes) -> bool:
    return path[:1] in ("\0", b"\0")


def _bind_unix(sock: socket.socket, path: str | bytes, mode: int | None) -> None:
    """Bind to a filesystem path, replacing a stale socket file left by an
    earlier listener; then apply ``mode`` to the new socket file."""
    if not _is_abstract(path):
        try:
            if stat.S_ISSOCK(os.stat(path).st_mode):
                os.unlink(path)
        except FileNotFoundError:
            pass

    sock.bind(path)
    if mode is not None and not _is_abstract(path):
        os.chmod(path, mode)


async def _bind_unix_off_loop(
    sock: socket.socket, path: str | bytes, mode: int | None
) -> None:
    """:func:`_bind_unix`, in a worker thread when it touches the filesystem
    (the stat/unlink/bind/chmod of a socket file can block on a slow disk).
    Shielded: abandoning it half-way would leave a socket file behind."""
    if _is_abstract(path):
        _bind_unix(sock, path, mode)
        return

    with CancelScope(shield=True):
        await to_thread.run_sync(_bind_unix, sock, path, mode)


async def connect_unix(
    path: str | bytes | PathLike[Any],
    kind: Literal[
        socket.SocketKind.SOCK_STREAM, socket.SocketKind.SOCK_SEQPACKET
    ] = socket.SocketKind.SOCK_STREAM,
) -> UNIXSocketStream:
    """Connect to the UNIX socket at ``path`` (a leading NUL byte names an
    abstract socket on Linux).

    :param kind: ``SOCK_STREAM`` or, on Linux, ``SOCK_SEQPACKET`` (which keeps
        message boundaries)
    """
    target = _unix_path(path)
    sock = _new_socket(socket.AF_UNIX, kind)
    try:
        sock.setblocking(False)
        while True:
            try:
                sock.connect(target)
            except BlockingIOError:
                # A UNIX socket says EAGAIN when the listener's backlog is
                # full; nothing is in progress then, so try again shortly
                await sleep(0.01)
            else:
                break

        await checkpoint()
    except BaseException:
        sock.close()
        raise

    return UNIXSocketStreamImpl(sock)


async def create_unix_listener(
    path: str | bytes | PathLike[Any],
    *,
    mode: int | None = None,
    backlog: int = 65536,
    kind: Literal[
        socket.SocketKind.SOCK_STREAM, socket.SocketKind.SOCK_SEQPACKET
    ] = socket.SocketKind.SOCK_STREAM,
) -> SocketListener:
    """Listen on a UNIX socket at ``path``.

    A socket file already at ``path`` (left by an earlier listener) is
    replaced.

    :param mode: permissions to give the socket file (e.g. ``0o600``)
    :param backlog: the most connections the kernel queues (capped at 65536)
    """
    backlog = min(backlog, _MAX_BACKLOG)
    target = _unix_path(path)
    sock = _new_socket(socket.AF_UNIX, kind)
    try:
        sock.setblocking(False)
        await _bind_unix_off_loop(sock, target, mode)
        sock.listen(backlog)
        await checkpoint()
    except BaseException:
        sock.close()
        raise

    return SocketListenerImpl(sock)


# -- UDP -------------------------------------------------------------------------


async def _udp_socket(
    family: int,
    local_address: Any,
    remote_address: Any,
    reuse_port: bool,
) -> socket.socket:
    sock = _new_socket(family, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)

        if local_address is not None:
            sock.bind(local_address)

        if remote_address is not None:
            sock.connect(remote_address)

        await checkpoint()
    except BaseException:
        sock.close()
        raise

    return sock


async def create_udp_socket(
    family: AnyIPAddressFamily = socket.AddressFamily.AF_UNSPEC,
    *,
    local_host: IPAddressType | None = None,
    local_port: int = 0,
    reuse_port: bool = False,
) -> UDPSocket:
    """Create a UDP socket bound to ``local_host:local_port``.

    With no ``local_host``, the socket is bound to all interfaces of
    ``family``. ``local_port=0`` lets the kernel pick a free port.

    :raises ValueError: if neither ``family`` nor ``local_host`` is given
    """
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port is not supported on this platform")

    if family == socket.AF_UNSPEC and local_host is None:
        raise ValueError('Either "family" or "local_host" must be given')

    if local_host is not None:
        results = await _resolve(str(local_host), local_port, family, socket.SOCK_DGRAM)
        family = results[0][0]
        local_address = results[0][-1]
    else:
        local_address = (_wildcard(family), local_port)

    sock = await _udp_socket(family, local_address, None, reuse_port)
    return UDPSocketImpl(sock)


async def create_connected_udp_socket(
    remote_host: IPAddressType,
    remote_port: int,
    *,
    family: AnyIPAddressFamily = socket.AddressFamily.AF_UNSPEC,
    local_host: IPAddressType | None = None,
    local_port: int = 0,
    reuse_port: bool = False,
) -> ConnectedUDPSocket:
    """Create a UDP socket connected to ``remote_host:remote_port``: it sends
    only there and receives only from there.

    :param local_host: the interface address to bind to (default: all
        interfaces of the remote address's family, only if ``local_port`` is
        given)
    """
    if reuse_port and not hasattr(socket, "SO_REUSEPORT"):
        raise ValueError("reuse_port is not supported on this platform")

    local_address: Any = None
    if local_host is not None:
        results = await _resolve(str(local_host), local_port, family, socket.SOCK_DGRAM)
        family = results[0][0]
        local_address = results[0][-1]

    remote_results = await _resolve(
        str(remote_host), remote_port, family, socket.SOCK_DGRAM
    )
    remote_family = remote_results[0][0]
    remote_address = remote_results[0][-1]
    if local_address is None and (local_port or reuse_port):
        local_address = (_wildcard(remote_family), local_port)

    sock = await _udp_socket(remote_family, local_address, remote_address, reuse_port)
    return ConnectedUDPSocketImpl(sock)


# -- UNIX datagram sockets ---------------------------------------------------


async def _unix_datagram_socket(
    local_path: None | str | bytes | PathLike[Any],
    local_mode: int | None,
    remote_path: None | str | bytes | PathLike[Any],
) -> socket.socket:
    sock = _new_socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        sock.setblocking(False)
        if local_path is not None:
            await _bind_unix_off_loop(sock, _unix_path(local_path), local_mode)

        if remote_path is not None:
            sock.connect(_unix_path(remote_path))

        await checkpoint()
    except BaseException:
        sock.close()
        raise

    return sock


async def create_unix_datagram_socket(
    *,
    local_path: None | str | bytes | PathLike[Any] = None,
    local_mode: int | None = None,
) -> UNIXDatagramSocket:
    """Create an unconnected UNIX datagram socket, bound to ``local_path`` if
    given (a socket file already there is replaced).

    :param local_mode: permissions to give the socket file
    """
    sock = await _unix_datagram_socket(local_path, local_mode, None)
    return UNIXDatagramSocketImpl(sock)


async def create_connected_unix_datagram_socket(
    remote_path: str | bytes | PathLike[Any],
    *,
    local_path: None | str | bytes | PathLike[Any] = None,
    local_mode: int | None = None,
) -> ConnectedUNIXDatagramSocket:
    """Create a UNIX datagram socket connected to ``remote_path``."""
    sock = await _unix_datagram_socket(local_path, local_mode, remote_path)
    return ConnectedUNIXDatagramSocketImpl(sock)


# -- connectables ----------------------------------------------------------------


@dataclass
class TCPConnectable(ByteStreamConnectable):
    """Connects to a TCP host and port with :func:`connect_tcp`."""

    host: str | IPv4Address | IPv6Address
    port: int

    def __post_init__(self) -> None:
        if self.port < 1 or self.port > 65535:
            raise ValueError("TCP port number out of range")

    async def connect(self) -> SocketStream:
        try:
            return await connect_tcp(self.host, self.port)
        except OSError as exc:
            raise ConnectionFailed(
                f"error connecting to {self.host}:{self.port}: {exc}"
            ) from exc


@dataclass
class UNIXConnectable(ByteStreamConnectable):
    """Connects to a UNIX socket path with :func:`connect_unix`."""

    path: str | bytes | PathLike[str] | PathLike[bytes]

    async def connect(self) -> UNIXSocketStream:
        try:
            return await connect_unix(self.path)
        except OSError as exc:
            raise ConnectionFailed(f"error connecting to {self.path!r}: {exc}") from exc


def as_connectable(
    remote: ByteStreamConnectable
    | tuple[str | IPv4Address | IPv6Address, int]
    | str
    | bytes
    | PathLike[str],
    /,
    *,
    tls: bool = False,
    ssl_context: ssl.SSLContext | None = None,
    tls_hostname: str | None = None,
    tls_standard_compatible: bool = True,
) -> ByteStreamConnectable:
    """Make a connectable out of a ``(host, port)`` tuple (TCP), a path (UNIX
    socket) or an existing connectable, optionally wrapped in TLS.

    :param tls: wrap the connection in TLS (implied by ``ssl_context``)
    :param tls_hostname: the name to verify the server's certificate against
        (default: the host of a TCP address)
    """
    connectable: ByteStreamConnectable
    if isinstance(remote, ByteStreamConnectable):
        connectable = remote
    elif isinstance(remote, tuple) and len(remote) == 2:
        connectable = TCPConnectable(*remote)
    elif isinstance(remote, (str, bytes, PathLike)):
        connectable = UNIXConnectable(remote)
    else:
        raise TypeError(f"cannot convert {remote!r} to a connectable")

    if tls or ssl_context is not None:
        from .streams.tls import TLSConnectable

        if tls_hostname is None and isinstance(connectable, TCPConnectable):
            tls_hostname = str(connectable.host)

        return TLSConnectable(
            connectable,
            ssl_context=ssl_context,
            hostname=tls_hostname,
            standard_compatible=tls_standard_compatible,
        )

    return connectable
