"""Aliases for ``anyio._core._sockets``."""

from __future__ import annotations

from typing import Any

from . import resolve_alias


# Socket wrappers in third-party code normalise getsockname()/getpeername().
def convert_ipv6_sockaddr(
    sockaddr: tuple[str, int, int, int] | tuple[str, int] | str,
) -> tuple[str, int] | str:
    """Reduce an IPv6 4-tuple address to ``(host, port)``.

    A non-zero scope ID stays part of the host as ``host%scope_id``; any other
    address is returned unchanged.
    """
    if isinstance(sockaddr, tuple) and len(sockaddr) == 4:
        host, port, _flowinfo, scope_id = sockaddr
        if scope_id:
            # Some platforms already append "%interface"; keep only the address.
            return f"{host.partition('%')[0]}%{scope_id}", port

        return host, port

    return sockaddr


_ALIASES: dict[str, tuple[str, ...]] = {
    # small TCP wrappers annotate with it
    "SocketStream": ("anyio.abc.SocketStream",),
    # test doubles for UDP sockets (annotation)
    "AnyIPAddressFamily": (
        "anyio.abc.AnyIPAddressFamily",
        "anyio._sockets.AnyIPAddressFamily",
    ),
    # tests of published packages import the module to patch or call these
    "connect_tcp": ("anyio.connect_tcp",),
    "connect_unix": ("anyio.connect_unix",),
    "create_tcp_listener": ("anyio.create_tcp_listener",),
    "create_unix_listener": ("anyio.create_unix_listener",),
    "create_udp_socket": ("anyio.create_udp_socket",),
    "create_connected_udp_socket": ("anyio.create_connected_udp_socket",),
    "create_unix_datagram_socket": ("anyio.create_unix_datagram_socket",),
    "create_connected_unix_datagram_socket": (
        "anyio.create_connected_unix_datagram_socket",
    ),
    "getaddrinfo": ("anyio.getaddrinfo",),
    "getnameinfo": ("anyio.getnameinfo",),
    "wait_readable": ("anyio.wait_readable",),
    "wait_writable": ("anyio.wait_writable",),
    "wait_socket_readable": ("anyio.wait_socket_readable",),
    "wait_socket_writable": ("anyio.wait_socket_writable",),
    "notify_closing": ("anyio.notify_closing",),
    "TCPConnectable": ("anyio.TCPConnectable",),
    "UNIXConnectable": ("anyio.UNIXConnectable",),
    "as_connectable": ("anyio.as_connectable",),
}


def __getattr__(name: str) -> Any:
    return resolve_alias(__name__, _ALIASES, name)
