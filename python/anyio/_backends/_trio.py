"""Names of upstream's ``anyio._backends._trio`` that published code uses.

Importing the module, its backend class, and its task group, cancel scope and
primitives, which here are the public classes every backend uses. Importing
it needs Trio, as upstream's does.
"""

from __future__ import annotations

import trio

from .._cancel import CancelScope as CancelScope
from .._sync import CapacityLimiter as CapacityLimiter
from .._sync import Event as Event
from .._sync import Lock as Lock
from .._sync import Semaphore as Semaphore
from .._taskgroup import TaskGroup as TaskGroup
from ..lowlevel import _TrioBackend
from ._base import PublicAPIBackend


class TrioBackend(PublicAPIBackend, _TrioBackend):
    """The Trio backend's operations."""

    name = "trio"

    @classmethod
    def cancelled_exception_class(cls) -> type[BaseException]:
        return trio.Cancelled


backend_class = TrioBackend
