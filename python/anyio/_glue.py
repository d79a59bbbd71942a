"""Python side of the C++ cancel scopes and task groups: the cold paths.

The extension calls these functions where Python is the clearer tool:
exception group splitting, error messages and rare branches. ``anyio._cancel``
registers them as hooks (``_cpp.register_hooks``) beside the scope type they
serve. The Trio side of cancel scopes is ``anyio._cancel_trio``. ``in_trio``,
``raise_no_event_loop`` and ``current_time`` serve the Python modules that
import them.
"""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from typing import Any, NoReturn

from . import _cpp

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


def in_trio() -> bool:
    trio = sys.modules.get("trio")
    return trio is not None and bool(trio.lowlevel.in_trio_run())


def raise_no_event_loop() -> NoReturn:
    # The message has one home, the C++ runtime.
    _cpp.raise_no_event_loop()
    raise AssertionError("unreachable")


def current_time() -> float:
    if in_trio():
        import trio

        return float(trio.current_time())

    raise_no_event_loop()


def split_scope_cancellations(
    group: BaseExceptionGroup[BaseException],
) -> tuple[bool, BaseException | None]:
    """Take the cancel scopes' CancelledErrors out of an exception group.

    Returns whether there were any, and the group of what remains (or None).
    """
    from . import _cpp

    matched, rest = group.split(lambda exc: _cpp.is_scope_cancelled_error(exc))
    return matched is not None, rest


def check_coroutine(func: Any, coro: object) -> None:
    if not isinstance(coro, Coroutine):
        from ._callables import callable_name

        raise TypeError(
            f"Expected {callable_name(func)}() to return a coroutine, but the return "
            f"value ({coro!r}) is not a coroutine object"
        )


def finish_start_future(future: Any, task: Any, exc: BaseException | None) -> bool:
    """Route the outcome of a task spawned by start() to its caller.

    Returns True if the caller was still waiting (the outcome was its), False if
    the task had already called ``task_status.started()``.
    """
    if future.done():
        return False

    if task.cancelled():
        future.cancel()
    elif exc is not None:
        future.set_exception(exc)
    else:
        future.set_exception(
            RuntimeError("Child exited without calling task_status.started()")
        )

    return True
