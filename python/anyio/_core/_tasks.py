"""Aliases for ``anyio._core._tasks``."""

from __future__ import annotations

from typing import Any

from . import resolve_alias

_ALIASES: dict[str, tuple[str, ...]] = {
    # starlette-web and other apps annotate with it
    "TaskGroup": ("anyio.abc.TaskGroup", "anyio.TaskGroup"),
    # typing-only imports in libraries (e.g. under TYPE_CHECKING)
    "CancelScope": ("anyio.CancelScope",),
    # upstream's test_concurrency_utils.py (annotation) and gather helpers
    "TaskHandle": ("anyio.TaskHandle",),
    # code that calls these through the private module path
    "create_task_group": ("anyio.create_task_group",),
    "move_on_after": ("anyio.move_on_after",),
    "fail_after": ("anyio.fail_after",),
    "fail_at": ("anyio.fail_at",),
    "move_on_at": ("anyio.move_on_at",),
    "current_effective_deadline": ("anyio.current_effective_deadline",),
    "get_cancelled_exc_class": ("anyio.get_cancelled_exc_class",),
    "TASK_STATUS_IGNORED": ("anyio.TASK_STATUS_IGNORED",),
    "TaskStatus": ("anyio.abc.TaskStatus",),
    "TaskCancelled": ("anyio.TaskCancelled",),
    "TaskFailed": ("anyio.TaskFailed",),
    "TaskNotFinished": ("anyio.TaskNotFinished",),
}


def __getattr__(name: str) -> Any:
    return resolve_alias(__name__, _ALIASES, name)
