"""Upstream's private module paths that published code imports.

Each path listed in docs/conformance.md ("Private paths") imports, names the
public object it stands for, and behaves: backend classes run their
operations, the task group and cancel scope classes are the real ones.
"""

from __future__ import annotations

import importlib
import re
import threading
from pathlib import Path
from typing import Any

import pytest

import anyio
import anyio.abc
from anyio import to_thread

DOC = Path(__file__).parent.parent / "docs" / "conformance.md"

# Every (module, name) this package provides, and the public object it is.
ALIASES: list[tuple[str, str, str]] = [
    ("anyio._backends._asyncio", "TaskGroup", "anyio._taskgroup.TaskGroup"),
    ("anyio._backends._asyncio", "TaskHandle", "anyio.TaskHandle"),
    ("anyio._backends._asyncio", "CancelScope", "anyio.CancelScope"),
    ("anyio._backends._asyncio", "Event", "anyio.Event"),
    ("anyio._backends._asyncio", "Lock", "anyio.Lock"),
    ("anyio._backends._asyncio", "Semaphore", "anyio.Semaphore"),
    ("anyio._backends._asyncio", "CapacityLimiter", "anyio.CapacityLimiter"),
    ("anyio._backends._trio", "TaskGroup", "anyio._taskgroup.TaskGroup"),
    ("anyio._backends._trio", "CancelScope", "anyio.CancelScope"),
    ("anyio._backends._trio", "Event", "anyio.Event"),
    ("anyio._backends._trio", "Lock", "anyio.Lock"),
    ("anyio._backends._trio", "Semaphore", "anyio.Semaphore"),
    ("anyio._backends._trio", "CapacityLimiter", "anyio.CapacityLimiter"),
    (
        "anyio._core._eventloop",
        "current_async_library",
        "anyio._backend.current_async_library",
    ),
    ("anyio._core._eventloop", "get_all_backends", "anyio.get_all_backends"),
    (
        "anyio._core._eventloop",
        "get_available_backends",
        "anyio.get_available_backends",
    ),
    (
        "anyio._core._eventloop",
        "get_cancelled_exc_class",
        "anyio.get_cancelled_exc_class",
    ),
    ("anyio._core._eventloop", "current_time", "anyio.current_time"),
    ("anyio._core._eventloop", "sleep", "anyio.sleep"),
    ("anyio._core._eventloop", "sleep_forever", "anyio.sleep_forever"),
    ("anyio._core._eventloop", "sleep_until", "anyio.sleep_until"),
    ("anyio._core._eventloop", "run", "anyio.run"),
    ("anyio._core._eventloop", "NoEventLoopError", "anyio.NoEventLoopError"),
    ("anyio._core._tasks", "TaskGroup", "anyio.abc.TaskGroup"),
    ("anyio._core._tasks", "CancelScope", "anyio.CancelScope"),
    ("anyio._core._tasks", "TaskHandle", "anyio.TaskHandle"),
    ("anyio._core._tasks", "TaskStatus", "anyio.abc.TaskStatus"),
    ("anyio._core._tasks", "TASK_STATUS_IGNORED", "anyio.TASK_STATUS_IGNORED"),
    ("anyio._core._tasks", "create_task_group", "anyio.create_task_group"),
    ("anyio._core._tasks", "move_on_after", "anyio.move_on_after"),
    ("anyio._core._tasks", "move_on_at", "anyio.move_on_at"),
    ("anyio._core._tasks", "fail_after", "anyio.fail_after"),
    ("anyio._core._tasks", "fail_at", "anyio.fail_at"),
    (
        "anyio._core._tasks",
        "current_effective_deadline",
        "anyio.current_effective_deadline",
    ),
    ("anyio._core._tasks", "get_cancelled_exc_class", "anyio.get_cancelled_exc_class"),
    ("anyio._core._tasks", "TaskCancelled", "anyio.TaskCancelled"),
    ("anyio._core._tasks", "TaskFailed", "anyio.TaskFailed"),
    ("anyio._core._tasks", "TaskNotFinished", "anyio.TaskNotFinished"),
    ("anyio._core._testing", "TaskInfo", "anyio.TaskInfo"),
    ("anyio._core._testing", "get_current_task", "anyio.get_current_task"),
    ("anyio._core._testing", "get_running_tasks", "anyio.get_running_tasks"),
    ("anyio._core._testing", "wait_all_tasks_blocked", "anyio.wait_all_tasks_blocked"),
    (
        "anyio._core._streams",
        "create_memory_object_stream",
        "anyio.create_memory_object_stream",
    ),
    ("anyio._core._fileio", "Path", "anyio.Path"),
    ("anyio._core._fileio", "AsyncFile", "anyio.AsyncFile"),
    ("anyio._core._fileio", "open_file", "anyio.open_file"),
    ("anyio._core._sockets", "SocketStream", "anyio.abc.SocketStream"),
    ("anyio._core._sockets", "connect_tcp", "anyio.connect_tcp"),
    ("anyio._core._sockets", "connect_unix", "anyio.connect_unix"),
    ("anyio._core._sockets", "create_tcp_listener", "anyio.create_tcp_listener"),
    ("anyio._core._sockets", "getaddrinfo", "anyio.getaddrinfo"),
    ("anyio._core._sockets", "getnameinfo", "anyio.getnameinfo"),
    ("anyio._core._subprocesses", "open_process", "anyio.open_process"),
    ("anyio._core._subprocesses", "run_process", "anyio.run_process"),
    ("anyio._core._subprocesses", "Process", "anyio.abc.Process"),
]
for _name in (
    "Event Lock Condition Semaphore CapacityLimiter ResourceGuard EventStatistics "
    "LockStatistics ConditionStatistics SemaphoreStatistics CapacityLimiterStatistics"
).split():
    ALIASES.append(("anyio._core._synchronization", _name, f"anyio.{_name}"))
for _name in (
    "BrokenResourceError BrokenWorkerInterpreter BrokenWorkerProcess BusyResourceError "
    "ClosedResourceError ConnectionFailed DelimiterNotFound EndOfStream IncompleteRead "
    "NoEventLoopError RunFinishedError TypedAttributeLookupError WouldBlock"
).split():
    ALIASES.append(("anyio._core._exceptions", _name, f"anyio.{_name}"))


def _public(path: str) -> Any:
    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize(
    ("module", "name", "public"), ALIASES, ids=[f"{m}.{n}" for m, n, _ in ALIASES]
)
def test_private_name_is_the_public_object(module: str, name: str, public: str) -> None:
    namespace: dict[str, Any] = {}
    exec(f"from {module} import {name}", namespace)
    assert namespace[name] is _public(public)


@pytest.mark.parametrize(
    ("module", "name"),
    [
        # Not in upstream 4.16 either: importing them fails the same way.
        ("anyio._core._exceptions", "ExceptionGroup"),
        ("anyio._core._compat", "DeprecatedAwaitable"),
        ("anyio._backends._asyncio", "BaseExceptionGroup"),
        ("anyio._core._eventloop", "no_such_name"),
    ],
)
def test_names_upstream_lacks_raise_import_error(module: str, name: str) -> None:
    with pytest.raises(ImportError):
        exec(f"from {module} import {name}", {})


def test_every_alias_is_listed_in_the_docs() -> None:
    text = DOC.read_text()
    section = text[text.index("## Private paths") :]
    listed = set(re.findall(r"`(anyio\._[\w.]+)`", section))
    for module, name, _ in ALIASES:
        assert f"{module}.{name}" in listed or module in listed, (module, name)
    for path in ("anyio._backends._asyncio", "anyio._backends._trio"):
        assert path in listed


def test_backend_modules_name_their_backend_class() -> None:
    from anyio._backends import _asyncio, _trio

    assert _asyncio.backend_class is _asyncio.AsyncIOBackend
    assert _trio.backend_class is _trio.TrioBackend
    for cls in (_asyncio.AsyncIOBackend, _trio.TrioBackend):
        assert issubclass(cls, anyio.abc.AsyncBackend)
        cls()  # instantiable (some code makes an instance to call through)


def test_get_async_backend_outside_a_loop_raises() -> None:
    from anyio._core._eventloop import get_async_backend

    with pytest.raises(anyio.NoEventLoopError):
        get_async_backend()
    from anyio._backends._trio import TrioBackend

    assert get_async_backend("trio") is TrioBackend


def test_backend_run() -> None:
    from anyio._backends._asyncio import AsyncIOBackend

    async def add(a: int, *, b: int) -> str:
        return f"{a + b} {anyio.get_current_task().name}"

    result = AsyncIOBackend.run(add, (1,), {"b": 2}, {})
    assert result.startswith("3 ")


@pytest.mark.anyio
async def test_get_async_backend_operations(anyio_backend_name: str) -> None:
    from anyio._core._eventloop import get_async_backend

    backend = get_async_backend()
    expected = {"asyncio": "AsyncIOBackend", "trio": "TrioBackend"}[anyio_backend_name]
    assert backend.__name__ == expected
    assert backend.cancelled_exception_class() is anyio.get_cancelled_exc_class()
    assert isinstance(backend.current_time(), float)
    await backend.checkpoint()
    await backend.checkpoint_if_cancelled()
    await backend.cancel_shielded_checkpoint()
    await backend.sleep(0)
    assert backend.current_token() is anyio.lowlevel.current_token().native_token

    # Starlette-era code runs blocking work through the backend class.
    assert (
        await backend.run_sync_in_worker_thread(threading.get_ident, ())
        != threading.get_ident()
    )
    assert (
        backend.current_default_thread_limiter()
        is to_thread.current_default_thread_limiter()
    )

    event = backend.create_event()
    assert isinstance(event, anyio.Event)
    lock = backend.create_lock(fast_acquire=False)
    semaphore = backend.create_semaphore(2, max_value=3)
    limiter = backend.create_capacity_limiter(4)
    assert (semaphore.value, semaphore.max_value, limiter.total_tokens) == (2, 3, 4)

    async def setter() -> None:
        event.set()

    async with backend.create_task_group() as tg:
        tg.start_soon(setter)
        async with lock:
            await event.wait()
    assert backend.get_current_task() == anyio.get_current_task()
    assert backend.get_current_task() in backend.get_running_tasks()

    with backend.create_cancel_scope() as scope:
        assert backend.current_effective_deadline() == float("inf")
        scope.cancel()
        await backend.checkpoint()
    assert scope.cancelled_caught


@pytest.mark.anyio
async def test_backend_cancel_scope_can_be_subclassed() -> None:
    from anyio._backends._asyncio import CancelScope

    class Recording(CancelScope):
        pass

    with Recording() as scope:
        scope.cancel()
        await anyio.sleep(1)
    assert scope.cancelled_caught


@pytest.mark.anyio
async def test_backend_task_group_is_the_real_one(anyio_backend_name: str) -> None:
    module = importlib.import_module(f"anyio._backends._{anyio_backend_name}")
    async with anyio.create_task_group() as tg:
        assert isinstance(tg, module.TaskGroup)


@pytest.mark.anyio
async def test_threadlocals_tell_worker_threads_apart() -> None:
    from anyio._core._eventloop import threadlocals

    def probe() -> bool:
        try:
            threadlocals.current_token  # noqa: B018
        except AttributeError:
            return False
        return True

    assert not probe()
    assert await to_thread.run_sync(probe)
