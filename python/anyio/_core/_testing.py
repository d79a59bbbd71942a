"""Aliases for ``anyio._core._testing``."""

from __future__ import annotations

from typing import Any

from . import resolve_alias

_ALIASES: dict[str, tuple[str, ...]] = {
    # install checks import TaskInfo and get_current_task from here
    "TaskInfo": ("anyio.TaskInfo",),
    "get_current_task": ("anyio.get_current_task",),
    "get_running_tasks": ("anyio.get_running_tasks",),
    "wait_all_tasks_blocked": ("anyio.wait_all_tasks_blocked",),
}


def __getattr__(name: str) -> Any:
    return resolve_alias(__name__, _ALIASES, name)
