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
}


def __getattr__(name: str) -> Any:
    return resolve_alias(__name__, _ALIASES, name)
