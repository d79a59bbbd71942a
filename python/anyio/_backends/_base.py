"""The class methods of both backend classes, over the public API."""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from ..abc._eventloop import AsyncBackend


class PublicAPIBackend(AsyncBackend):
    """Each operation calls the public function that does it."""

    name = ""

    @classmethod
    def run(
        cls,
        func: Callable[..., Awaitable[Any]],
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        options: dict[str, Any],
    ) -> Any:
        from .._run import run

        return run(
            partial(func, *args, **kwargs), backend=cls.name, backend_options=options
        )

    @classmethod
    def current_token(cls) -> object:
        from ..lowlevel import current_token

        return current_token().native_token

    @classmethod
    def current_time(cls) -> float:
        from .._time import current_time

        return current_time()

    @classmethod
    async def checkpoint(cls) -> None:
        from ..lowlevel import checkpoint

        await checkpoint()

    @classmethod
    async def checkpoint_if_cancelled(cls) -> None:
        from ..lowlevel import checkpoint_if_cancelled

        await checkpoint_if_cancelled()

    @classmethod
    async def cancel_shielded_checkpoint(cls) -> None:
        from ..lowlevel import cancel_shielded_checkpoint

        await cancel_shielded_checkpoint()

    @classmethod
    async def sleep(cls, delay: float) -> None:
        from .._time import sleep

        await sleep(delay)

    @classmethod
    def create_cancel_scope(
        cls, *, deadline: float = math.inf, shield: bool = False
    ) -> Any:
        from .._cancel import CancelScope

        return CancelScope(deadline=deadline, shield=shield)

    @classmethod
    def current_effective_deadline(cls) -> float:
        from .._cancel import current_effective_deadline

        return current_effective_deadline()

    @classmethod
    def create_task_group(cls) -> Any:
        from .._taskgroup import create_task_group

        return create_task_group()

    @classmethod
    def create_event(cls) -> Any:
        from .._sync import Event

        return Event()

    @classmethod
    def create_lock(cls, *, fast_acquire: bool) -> Any:
        from .._sync import Lock

        return Lock(fast_acquire=fast_acquire)

    @classmethod
    def create_semaphore(
        cls,
        initial_value: int,
        *,
        max_value: int | None = None,
        fast_acquire: bool = False,
    ) -> Any:
        from .._sync import Semaphore

        return Semaphore(initial_value, max_value=max_value, fast_acquire=fast_acquire)

    @classmethod
    def create_capacity_limiter(cls, total_tokens: float) -> Any:
        from .._sync import CapacityLimiter

        return CapacityLimiter(total_tokens)

    @classmethod
    async def run_sync_in_worker_thread(
        cls,
        func: Callable[..., Any],
        args: tuple[Any, ...],
        abandon_on_cancel: bool = False,
        limiter: Any = None,
    ) -> Any:
        from ..to_thread import run_sync

        return await run_sync(
            func, *args, abandon_on_cancel=abandon_on_cancel, limiter=limiter
        )

    @classmethod
    def check_cancelled(cls) -> None:
        from ..from_thread import check_cancelled

        check_cancelled()

    @classmethod
    def current_default_thread_limiter(cls) -> Any:
        from ..to_thread import current_default_thread_limiter

        return current_default_thread_limiter()

    @classmethod
    async def open_process(cls, command: Any, **kwargs: Any) -> Any:
        from .._subprocesses import open_process

        return await open_process(command, **kwargs)

    @classmethod
    async def connect_tcp(cls, host: str, port: int, local_address: Any = None) -> Any:
        from .._sockets import connect_tcp

        local_host = local_address[0] if local_address else None
        return await connect_tcp(host, port, local_host=local_host)

    @classmethod
    async def connect_unix(cls, path: str | bytes) -> Any:
        from .._sockets import connect_unix

        return await connect_unix(path)

    @classmethod
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
        from .._sockets import getaddrinfo

        return await getaddrinfo(
            host, port, family=family, type=type, proto=proto, flags=flags
        )

    @classmethod
    async def getnameinfo(cls, sockaddr: Any, flags: int = 0) -> tuple[str, str]:
        from .._sockets import getnameinfo

        return await getnameinfo(sockaddr, flags)

    @classmethod
    async def wait_readable(cls, obj: Any) -> None:
        from .._sockets import wait_readable

        await wait_readable(obj)

    @classmethod
    async def wait_writable(cls, obj: Any) -> None:
        from .._sockets import wait_writable

        await wait_writable(obj)

    @classmethod
    def notify_closing(cls, obj: Any) -> None:
        from .._sockets import notify_closing

        notify_closing(obj)

    @classmethod
    def open_signal_receiver(cls, *signals: Any) -> Any:
        from .._signals import open_signal_receiver

        return open_signal_receiver(*signals)

    @classmethod
    def get_current_task(cls) -> Any:
        from .._tasks_info import get_current_task

        return get_current_task()

    @classmethod
    def get_running_tasks(cls) -> Sequence[Any]:
        from .._tasks_info import get_running_tasks

        return get_running_tasks()

    @classmethod
    async def wait_all_tasks_blocked(cls) -> None:
        from .._tasks_info import wait_all_tasks_blocked

        await wait_all_tasks_blocked()

    @classmethod
    def create_test_runner(cls, options: dict[str, Any]) -> Any:
        from .._testrunner import create_runner

        return create_runner(cls.name, options)
