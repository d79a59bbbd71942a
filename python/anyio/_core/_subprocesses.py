"""Aliases for ``anyio._core._subprocesses``."""

from __future__ import annotations

from typing import Any

from . import resolve_alias

_ALIASES: dict[str, tuple[str, ...]] = {
    # tests of published packages import the module to patch or call these
    "open_process": ("anyio.open_process",),
    "run_process": ("anyio.run_process",),
    "create_task_group": ("anyio.create_task_group",),
    "Process": ("anyio.abc.Process",),
}


def __getattr__(name: str) -> Any:
    return resolve_alias(__name__, _ALIASES, name)
