"""Aliases for ``anyio._core._streams``."""

from __future__ import annotations

from typing import Any

from . import resolve_alias

_ALIASES: dict[str, tuple[str, ...]] = {
    # applications that import the factory from its private home
    "create_memory_object_stream": ("anyio.create_memory_object_stream",),
}


def __getattr__(name: str) -> Any:
    return resolve_alias(__name__, _ALIASES, name)
