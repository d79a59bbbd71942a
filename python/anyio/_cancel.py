"""Cancel scopes and timeouts: the C++ types, registered where asyncio looks."""

from __future__ import annotations

import collections.abc

from . import _cpp

# asyncio.Task only accepts coroutines; the wrapper every spawned task runs
# through is one by registration.
collections.abc.Coroutine.register(_cpp.TaskCoro)

CancelScope = _cpp.CancelScope
fail_after = _cpp.fail_after
fail_at = _cpp.fail_at
move_on_after = _cpp.move_on_after
move_on_at = _cpp.move_on_at
current_effective_deadline = _cpp.current_effective_deadline
