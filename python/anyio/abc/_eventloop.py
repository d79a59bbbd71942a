"""``anyio.abc.AsyncBackend``: the interface of the backend classes that
``anyio._core._eventloop.get_async_backend()`` returns.

This package has no pluggable backends: its two backend classes
(``anyio._backends._asyncio.AsyncIOBackend`` and
``anyio._backends._trio.TrioBackend``) are thin façades over the public API,
kept for code written against upstream's private backend objects. The
interface lists the class methods they provide; every one is a class method,
so the classes are used without being instantiated.
"""

from __future__ import annotations

import math
from abc import ABCMeta, abstractmethod
from collections.abc import Awaitable, Callable, Sequence
from typing import Any


class AsyncBackend(metaclass=ABCMeta):
    """A backend's operations, as class methods."""

    @classmethod
    @abstractmethod
    def run(
        cls,
        func: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
    ) -> Any:
        """Run ``func(*args, **kwargs)`` in a new event loop of this backend."""

    @classmethod
    @abstractmethod
    def current_token(cls) -> object:
        """The native token of the running loop (asyncio loop or TrioToken)."""

    @classmethod
    @abstractmethod
    def current_time(cls) -> float:
        """The event loop's clock."""

    @classmethod
    @abstractmethod
    def cancelled_exception_class(cls) -> type[BaseException]:
        """The exception this backend cancels tasks with."""

    @classmethod
    @abstractmethod
    async def checkpoint(cls) -> None:
        """Check for cancellation and let other tasks run."""

    @classmethod
    @abstractmethod
    async def checkpoint_if_cancelled(cls) -> None:
        """Check for cancellation without yielding otherwise."""

    @classmethod
    @abstractmethod
    async def cancel_shielded_checkpoint(cls) -> None:
        """Let other tasks run without checking for cancellation."""

    @classmethod
    @abstractmethod
    async def sleep(cls, delay: float) -> None:
        """Sleep for ``delay`` seconds."""

    @classmethod
    @abstractmethod
    def create_cancel_scope(
        cls, *, deadline: float = math.inf, shield: bool = False
    ) -> Any:
        """A new :class:`anyio.CancelScope`."""

    @classmethod
    @abstractmethod
    def current_effective_deadline(cls) -> float:
        """The nearest deadline among the enclosing cancel scopes."""

    @classmethod
    @abstractmethod
    def create_task_group(cls) -> Any:
        """A new task group."""

    @classmethod
    @abstractmethod
    def create_event(cls) -> Any:
        """A new :class:`anyio.Event`."""

    @classmethod
    @abstractmethod
    def create_lock(cls, *, fast_acquire: bool) -> Any:
        """A new :class:`anyio.Lock`."""

    @classmethod
    @abstractmethod
    def create_semaphore(
        cls,
        initial_value: int,
        *,
        max_value: int | None = None,
        fast_acquire: bool = False,
    ) -> Any:
        """A new :class:`anyio.Semaphore`."""

    @classmethod
    @abstractmethod
    def create_capacity_limiter(cls, total_tokens: float) -> Any:
        """A new :class:`anyio.CapacityLimiter`."""

    @classmethod
    @abstractmethod
    async def run_sync_in_worker_thread(
        cls,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        abandon_on_cancel: bool = False,
        limiter: Any = None,
    ) -> Any:
        """:func:`anyio.to_thread.run_sync`."""

    @classmethod
    @abstractmethod
    def check_cancelled(cls) -> None:
        """:func:`anyio.from_thread.check_cancelled`."""

    @classmethod
    @abstractmethod
    def current_default_thread_limiter(cls) -> Any:
        """:func:`anyio.to_thread.current_default_thread_limiter`."""

    @classmethod
    @abstractmethod
    async def open_process(cls, command: Any, **kwargs: Any) -> Any:
        """:func:`anyio.open_process`."""

    @classmethod
    @abstractmethod
    async def connect_tcp(cls, host: str, port: int, local_address: Any = None) -> Any:
        """A TCP connection to ``host``:``port``."""

    @classmethod
    @abstractmethod
    async def connect_unix(cls, path: str | bytes) -> Any:
        """A connection to a UNIX socket."""

    @classmethod
    @abstractmethod
    async def getaddrinfo(
        cls,
        host: Any,
        port: Any,
        *,
        family: int = 0,
        type: int = 0,
        proto: int = 0,
        flags: int = 0,
    ) -> Any:
        """:func:`anyio.getaddrinfo`."""

    @classmethod
    @abstractmethod
    async def getnameinfo(cls, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        """:func:`anyio.getnameinfo`."""

    @classmethod
    @abstractmethod
    async def wait_readable(cls, obj: Any) -> None:
        """:func:`anyio.wait_readable`."""

    @classmethod
    @abstractmethod
    async def wait_writable(cls, obj: Any) -> None:
        """:func:`anyio.wait_writable`."""

    @classmethod
    @abstractmethod
    def notify_closing(cls, obj: Any) -> None:
        """:func:`anyio.notify_closing`."""

    @classmethod
    @abstractmethod
    def open_signal_receiver(cls, *signals: Any) -> Any:
        """:func:`anyio.open_signal_receiver`."""

    @classmethod
    @abstractmethod
    def get_current_task(cls) -> Any:
        """:func:`anyio.get_current_task`."""

    @classmethod
    @abstractmethod
    def get_running_tasks(cls) -> Sequence[Any]:
        """:func:`anyio.get_running_tasks`."""

    @classmethod
    @abstractmethod
    async def wait_all_tasks_blocked(cls) -> None:
        """:func:`anyio.wait_all_tasks_blocked`."""

    @classmethod
    @abstractmethod
    def create_test_runner(cls, options: dict[str, Any]) -> Any:
        """A test runner of this backend (what the pytest plugin uses)."""
