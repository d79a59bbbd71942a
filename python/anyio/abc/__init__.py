"""Abstract interfaces of anyio (task groups now; streams and sockets join)."""

from __future__ import annotations

from ._tasks import TaskGroup as TaskGroup
from ._tasks import TaskStatus as TaskStatus
