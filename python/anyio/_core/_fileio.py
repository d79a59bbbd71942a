"""Aliases for ``anyio._core._fileio``."""

from __future__ import annotations

from typing import Any

from . import resolve_alias

_ALIASES: dict[str, tuple[str, ...]] = {
    # older Starlette (FileResponse) imports AnyStr from here
    "AnyStr": ("typing.AnyStr",),
    # textual apps and others import Path from here
    "Path": ("anyio.Path",),
    # starlette-web and typed wrappers around open_file
    "AsyncFile": ("anyio.AsyncFile",),
    "open_file": ("anyio.open_file",),
}


def __getattr__(name: str) -> Any:
    return resolve_alias(__name__, _ALIASES, name)
