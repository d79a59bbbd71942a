"""Aliases for ``anyio._core._eventloop``."""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Any, cast

from . import resolve_alias

if TYPE_CHECKING:
    from ..abc._eventloop import AsyncBackend


class _WorkerThreadLocals(threading.local):
    """Per-thread state of anyio worker threads.

    asyncer, Starlette helpers and others probe ``current_token`` on it to tell
    an anyio worker thread running a job (an EventLoopToken of the caller's
    loop) from any other thread (AttributeError). The token is made when first
    read, so idle workers hold no event loop alive.
    """

    @property
    def current_token(self) -> Any:
        value = self.__dict__.get("current_token", _UNSET)
        if value is not _UNSET:
            return value

        from .. import _cpp

        return _cpp.current_worker_token()

    @current_token.setter
    def current_token(self, value: Any) -> None:
        self.__dict__["current_token"] = value

    @current_token.deleter
    def current_token(self) -> None:
        try:
            del self.__dict__["current_token"]
        except KeyError:
            raise AttributeError("current_token") from None


_UNSET = object()


# asyncer (syncify), esmerald, lazyops: detect anyio worker threads.
threadlocals = _WorkerThreadLocals()


def get_async_backend(asynclib_name: str | None = None) -> type[AsyncBackend]:
    """The backend class of the running event loop (or of the named backend).

    Published code calls its class methods (``run_sync_in_worker_thread``,
    ``current_time``, ``cancelled_exception_class``...); here they are the
    public functions, on either backend.

    :raises NoEventLoopError: if no name is given and no event loop is running
    """
    if asynclib_name is None:
        from .._backend import current_async_library

        asynclib_name = current_async_library()
        if asynclib_name is None:
            from .._glue import raise_no_event_loop

            raise_no_event_loop()

    module = importlib.import_module(f"anyio._backends._{asynclib_name}")
    return cast("type[AsyncBackend]", module.backend_class)


_ALIASES: dict[str, tuple[str, ...]] = {
    # upstream's tests/conftest.py, asyncer and pytest plugins of other projects
    "current_async_library": ("anyio._backend.current_async_library",),
    # code that calls the private spellings of these public functions
    "get_all_backends": ("anyio.get_all_backends",),
    "get_available_backends": ("anyio.get_available_backends",),
    "get_cancelled_exc_class": ("anyio.get_cancelled_exc_class",),
    "current_time": ("anyio.current_time",),
    "sleep": ("anyio.sleep",),
    "sleep_forever": ("anyio.sleep_forever",),
    "sleep_until": ("anyio.sleep_until",),
    "NoEventLoopError": ("anyio.NoEventLoopError",),
    "run": ("anyio.run",),
}


def __getattr__(name: str) -> Any:
    return resolve_alias(__name__, _ALIASES, name)
