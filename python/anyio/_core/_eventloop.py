"""Aliases for ``anyio._core._eventloop``."""

from __future__ import annotations

import threading
from typing import Any

from . import resolve_alias


class _WorkerThreadLocals(threading.local):
    """Per-thread state of anyio worker threads.

    asyncer, Starlette helpers and others probe ``current_token`` and
    ``current_async_backend`` on it to tell an anyio worker thread (both set)
    from any other thread (AttributeError). The worker-thread code sets them.
    """


# asyncer (syncify), esmerald, lazyops: detect anyio worker threads.
threadlocals = _WorkerThreadLocals()

_ALIASES: dict[str, tuple[str, ...]] = {
    # upstream's tests/conftest.py, asyncer and pytest plugins of other projects
    "current_async_library": ("anyio._backend.current_async_library",),
    # code that calls the private spellings of these public functions
    "get_all_backends": ("anyio.get_all_backends",),
    "get_available_backends": ("anyio.get_available_backends",),
    "get_cancelled_exc_class": ("anyio.get_cancelled_exc_class",),
    "current_time": ("anyio.current_time",),
    "sleep": ("anyio.sleep",),
    "run": ("anyio.run",),
}


def __getattr__(name: str) -> Any:
    return resolve_alias(__name__, _ALIASES, name)
