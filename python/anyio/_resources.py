"""Helpers for asynchronous resources."""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._cancel import CancelScope

if TYPE_CHECKING:
    from .abc import AsyncResource


async def aclose_forcefully(resource: AsyncResource) -> None:
    """Close the resource without waiting for a graceful shutdown.

    ``aclose()`` runs inside an already cancelled scope, so any step of it that
    would wait (a TLS closing handshake, flushing a buffer) is abandoned.

    :param resource: the resource to close
    """
    with CancelScope() as scope:
        scope.cancel()
        await resource.aclose()
