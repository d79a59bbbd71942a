"""Trio side of the C++ cancel scopes.

Trio already does level cancellation, so on Trio an anyio ``CancelScope``
wraps a ``trio.CancelScope``: the C++ type calls these hooks when it is
entered, left or cancelled there, and keeps its own fields (deadline, shield,
cancel_called) in step through ``_trio_scope``. Trio is imported on first use,
never when this module is: importing anyio must not import Trio.
"""

from __future__ import annotations

from typing import Any

from . import _cpp


def trio_scope_enter(scope: Any) -> Any:
    import trio

    deadline, shield, cancel_called, reason = scope._raw
    trio_scope = trio.CancelScope(deadline=deadline, shield=shield)
    if cancel_called:
        trio_scope.cancel(reason)

    scope._trio_scope = trio_scope
    trio_scope.__enter__()
    return scope


def trio_scope_exit(scope: Any, exc_type: Any, exc: Any, tb: Any) -> bool:
    import trio

    trio_scope = scope._trio_scope
    swallowed = bool(trio_scope.__exit__(exc_type, exc, tb))
    if (
        swallowed
        and scope._fail_on_timeout
        and trio_scope.cancelled_caught
        and trio.current_time() >= trio_scope.deadline
    ):
        reason = scope._reason
        raise TimeoutError(reason) if reason is not None else TimeoutError()

    return swallowed


def trio_scope_cancel(scope: Any, reason: str | None) -> None:
    scope._trio_scope.cancel(reason)


_cpp.register_hooks(
    trio_scope_enter=trio_scope_enter,
    trio_scope_exit=trio_scope_exit,
    trio_scope_cancel=trio_scope_cancel,
)
