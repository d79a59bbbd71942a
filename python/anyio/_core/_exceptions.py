"""Aliases for ``anyio._core._exceptions``."""

from __future__ import annotations

from typing import Any

from . import resolve_alias

_ALIASES: dict[str, tuple[str, ...]] = {
    # BrokenWorkerProcess in build tools around to_process, and the other exception classes
    "BrokenResourceError": ("anyio.BrokenResourceError",),
    "BrokenWorkerInterpreter": ("anyio.BrokenWorkerInterpreter",),
    "BrokenWorkerProcess": ("anyio.BrokenWorkerProcess",),
    "BusyResourceError": ("anyio.BusyResourceError",),
    "ClosedResourceError": ("anyio.ClosedResourceError",),
    "ConnectionFailed": ("anyio.ConnectionFailed",),
    "DelimiterNotFound": ("anyio.DelimiterNotFound",),
    "EndOfStream": ("anyio.EndOfStream",),
    "FutureAlreadyFinished": ("anyio.FutureAlreadyFinished",),
    "FutureCancelled": ("anyio.FutureCancelled",),
    "FutureFailed": ("anyio.FutureFailed",),
    "FutureNotFinished": ("anyio.FutureNotFinished",),
    "IncompleteRead": ("anyio.IncompleteRead",),
    "NoEventLoopError": ("anyio.NoEventLoopError",),
    "RunFinishedError": ("anyio.RunFinishedError",),
    "TaskCancelled": ("anyio.TaskCancelled",),
    "TaskFailed": ("anyio.TaskFailed",),
    "TaskNotFinished": ("anyio.TaskNotFinished",),
    "TypedAttributeLookupError": ("anyio.TypedAttributeLookupError",),
    "WouldBlock": ("anyio.WouldBlock",),
}


def __getattr__(name: str) -> Any:
    return resolve_alias(__name__, _ALIASES, name)
