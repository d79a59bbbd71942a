"""Which async library runs the current thread, and the backends we support."""

from __future__ import annotations

import sys
from asyncio import CancelledError
from typing import Literal

from ._cpp import running_loop as _get_running_loop
from ._glue import in_trio, raise_no_event_loop

BackendName = Literal["asyncio", "trio"]
_ALL_BACKENDS: tuple[str, ...] = ("asyncio", "trio")


def current_async_library() -> str | None:
    """The name of the async library running in this thread, or None."""
    if _get_running_loop() is not None:
        return "asyncio"

    if in_trio():
        return "trio"

    sniffio = sys.modules.get("sniffio")
    if sniffio is not None:
        # Libraries that set sniffio's override (e.g. curio adapters) still count.
        try:
            return str(sniffio.current_async_library())
        except Exception:
            return None

    return None


def current_backend() -> str:
    """Like :func:`current_async_library` but raises NoEventLoopError if none."""
    if _get_running_loop() is not None:
        return "asyncio"

    if in_trio():
        return "trio"

    raise_no_event_loop()
    raise AssertionError("unreachable")


def get_all_backends() -> tuple[str, ...]:
    """The names of every backend this package supports."""
    return _ALL_BACKENDS


def get_available_backends() -> tuple[str, ...]:
    """The supported backends whose libraries can be imported here."""
    available = ["asyncio"]
    try:
        import trio  # noqa: F401
    except ImportError:
        pass
    else:
        available.append("trio")

    return tuple(available)


def get_cancelled_exc_class() -> type[BaseException]:
    """The exception class the current backend raises on cancellation."""
    if current_backend() == "trio":
        import trio

        return trio.Cancelled  # type: ignore[no-any-return]

    return CancelledError
