"""Cancel scopes and timeouts: the C++ types, registered where asyncio looks."""

from __future__ import annotations

import collections.abc

from . import (
    _cancel_trio,  # noqa: F401  (registers the Trio side's hooks)
    _cpp,
)
from ._glue import check_coroutine, finish_start_future, split_scope_cancellations

# The Python the C++ scopes and task groups call back into. Every path to them
# goes through this module (anyio._taskgroup imports it too).
_cpp.register_hooks(
    split_scope_cancellations=split_scope_cancellations,
    check_coroutine=check_coroutine,
    finish_start_future=finish_start_future,
)

# asyncio.Task only accepts coroutines; the wrapper every spawned task runs
# through is one by registration.
collections.abc.Coroutine.register(_cpp.TaskCoro)

CancelScope = _cpp.CancelScope
fail_after = _cpp.fail_after
fail_at = _cpp.fail_at
move_on_after = _cpp.move_on_after
move_on_at = _cpp.move_on_at
current_effective_deadline = _cpp.current_effective_deadline
