"""Aliases for ``anyio._core._synchronization``."""

from __future__ import annotations

from typing import Any

from . import resolve_alias

_ALIASES: dict[str, tuple[str, ...]] = {
    # Lock in test doubles, ResourceGuard in websocket libraries, the primitives in bug reports and typing-only imports
    "Event": ("anyio.Event",),
    "Lock": ("anyio.Lock",),
    "Condition": ("anyio.Condition",),
    "Semaphore": ("anyio.Semaphore",),
    "CapacityLimiter": ("anyio.CapacityLimiter",),
    "ResourceGuard": ("anyio.ResourceGuard",),
    "EventStatistics": ("anyio.EventStatistics",),
    "LockStatistics": ("anyio.LockStatistics",),
    "ConditionStatistics": ("anyio.ConditionStatistics",),
    "SemaphoreStatistics": ("anyio.SemaphoreStatistics",),
    "CapacityLimiterStatistics": ("anyio.CapacityLimiterStatistics",),
    "BusyResourceError": ("anyio.BusyResourceError",),
    "NoEventLoopError": ("anyio.NoEventLoopError",),
    "CancelScope": ("anyio.CancelScope",),
    "TaskInfo": ("anyio.TaskInfo",),
    "get_current_task": ("anyio.get_current_task",),
}


def __getattr__(name: str) -> Any:
    return resolve_alias(__name__, _ALIASES, name)
