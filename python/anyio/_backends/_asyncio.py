"""Names of upstream's ``anyio._backends._asyncio`` that published code uses.

Importing the module (PyInstaller hooks, start-up pre-imports), its backend
class, and its task group, cancel scope and primitives, which here are the
public classes every backend uses.
"""

from __future__ import annotations

import asyncio

from .._cancel import CancelScope as CancelScope
from .._sync import CapacityLimiter as CapacityLimiter
from .._sync import Event as Event
from .._sync import Lock as Lock
from .._sync import Semaphore as Semaphore
from .._taskgroup import TaskGroup as TaskGroup
from .._taskgroup import TaskHandle as TaskHandle
from ..lowlevel import _AsyncIOBackend
from ._base import PublicAPIBackend


class AsyncIOBackend(PublicAPIBackend, _AsyncIOBackend):
    """The asyncio backend's operations (stock loop or uvloop)."""

    name = "asyncio"

    @classmethod
    def cancelled_exception_class(cls) -> type[BaseException]:
        return asyncio.CancelledError


backend_class = AsyncIOBackend
