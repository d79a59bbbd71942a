"""Running synchronous functions in worker processes.

Workers are plain Python interpreters started with :func:`anyio.open_process`
and kept in a per-event-loop pool; idle ones are reused for up to
:data:`WORKER_MAX_IDLE_TIME` seconds. Parent and worker talk over the worker's
stdin and stdout in length-prefixed pickle frames:

- parent to worker: ``("init", sys.path, main_module_path)`` once, then
  ``("run", func, args)`` for each call;
- worker to parent: ``("return", value)`` or ``("raise", exception)``.

The worker points file descriptors 0 and 1 at ``os.devnull`` before running
anything, so code that prints cannot corrupt the frames, and its stderr goes
to ``os.devnull`` too, so nothing can block on an undrained pipe.
"""

from __future__ import annotations

import os
import pickle
import struct
import subprocess
import sys
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar, cast

from ._backend import get_cancelled_exc_class
from ._cancel import CancelScope
from ._exceptions import BrokenWorkerProcess
from ._time import current_time
from .abc import ByteReceiveStream, ByteSendStream, Process
from .lowlevel import RunVar, checkpoint_if_cancelled

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

if TYPE_CHECKING:
    from ._sync import CapacityLimiter

T_Retval = TypeVar("T_Retval")
PosArgsT = TypeVarTuple("PosArgsT")

#: Seconds an idle worker process is kept before it is shut down.
WORKER_MAX_IDLE_TIME = 300

_HEADER = struct.Struct("!Q")
# The worker must import this very package before it learns our sys.path, so
# the directory holding it goes first (the init message then replaces sys.path)
_PACKAGE_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_WORKER_COMMAND = (
    f"import sys; sys.path.insert(0, {_PACKAGE_ROOT!r}); "
    "from anyio.to_process import process_worker; process_worker()"
)

_process_pool_workers: RunVar[set[Process]] = RunVar("_process_pool_workers")
_process_pool_idle_workers: RunVar[deque[tuple[Process, float]]] = RunVar(
    "_process_pool_idle_workers"
)
_default_process_limiter: RunVar[CapacityLimiter] = RunVar("_default_process_limiter")
_process_pool_reaper: RunVar[object] = RunVar("_process_pool_reaper")


def _frame(message: Any) -> bytes:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


async def _receive_exactly(stream: ByteReceiveStream, size: int) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        chunks += await stream.receive(size - len(chunks))

    return bytes(chunks)


async def _exchange(process: Process, request: bytes) -> Any:
    """Send one request frame and read the reply frame."""
    stdin = cast(ByteSendStream, process.stdin)
    stdout = cast(ByteReceiveStream, process.stdout)
    await stdin.send(request)
    (size,) = _HEADER.unpack(await _receive_exactly(stdout, _HEADER.size))
    return pickle.loads(await _receive_exactly(stdout, size))


def _main_module_path() -> str | None:
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    return path if isinstance(path, str) else None


async def _spawn_worker(workers: set[Process]) -> Process:
    from ._subprocesses import open_process

    process = await open_process(
        [sys.executable, "-c", _WORKER_COMMAND],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    workers.add(process)
    return process


def _shut_down(workers: set[Process]) -> None:
    """Kill and reap every worker of a pool whose event loop is ending."""
    from ._subprocesses import _Process

    for process in list(workers):
        try:
            process.kill()
        except ProcessLookupError:
            pass

        if isinstance(process, _Process):
            for stream in (process._stdin, process._stdout, process._stderr):
                if stream is not None:
                    stream._close_now()

            process._popen.wait()

    workers.clear()


def _install_pool_reaper(workers: set[Process]) -> None:
    """Have the worker processes killed when the event loop finishes: a
    background task that sleeps until the run cancels it on the way out."""
    from ._backend import current_backend

    if current_backend() == "asyncio":
        import asyncio

        async def reaper() -> None:
            try:
                await asyncio.get_running_loop().create_future()
            finally:
                _shut_down(workers)

        # asyncio keeps only weak references to tasks; a reaper collected while
        # pending would run its cleanup in the middle of the run
        task = asyncio.get_running_loop().create_task(
            reaper(), name="anyio process reaper"
        )
        _process_pool_reaper.set(task)
    else:
        import trio

        async def trio_reaper() -> None:
            try:
                await trio.sleep_forever()
            finally:
                _shut_down(workers)

        trio.lowlevel.spawn_system_task(trio_reaper, name="anyio process reaper")


async def run_sync(
    func: Callable[[Unpack[PosArgsT]], T_Retval],
    *args: Unpack[PosArgsT],
    cancellable: bool = False,
    limiter: CapacityLimiter | None = None,
) -> T_Retval:
    """Call ``func(*args)`` in a worker process and return its result.

    The function, its arguments and its result (or exception) travel by
    pickle, so they must be picklable; the function must be importable by
    name in the worker (not a lambda or a local function).

    :param cancellable: if ``True``, cancelling this call kills the worker
        process (and the call raises the cancellation exception); otherwise
        the call is shielded from cancellation until the function returns
    :param limiter: capacity limiter for the number of worker processes in use
        (default: :func:`current_default_process_limiter`)
    :raises BrokenWorkerProcess: if the worker died or answered nonsense
    """
    await checkpoint_if_cancelled()
    request = _frame(("run", func, args))

    try:
        workers = _process_pool_workers.get()
        idle_workers = _process_pool_idle_workers.get()
    except LookupError:
        workers = set()
        idle_workers = deque()
        _process_pool_workers.set(workers)
        _process_pool_idle_workers.set(idle_workers)
        _install_pool_reaper(workers)

    async with limiter or current_default_process_limiter():
        # The most recently used idle worker is the warmest; take it, and
        # retire those idle for too long (the oldest sit on the left)
        process: Process | None = None
        while idle_workers:
            candidate, _since = idle_workers.pop()
            if candidate.returncode is None:
                process = candidate
                break

            workers.discard(candidate)

        now = current_time()
        while idle_workers and now - idle_workers[0][1] > WORKER_MAX_IDLE_TIME:
            stale, _since = idle_workers.popleft()
            workers.discard(stale)
            _shut_down({stale})

        with CancelScope(shield=not cancellable):
            try:
                if process is None:
                    process = await _spawn_worker(workers)
                    reply = await _exchange(
                        process,
                        _frame(("init", list(sys.path), _main_module_path())),
                    )
                    if reply != ("return", None):
                        raise RuntimeError(f"unexpected worker reply: {reply!r}")

                status, value = await _exchange(process, request)
            except BaseException as exc:
                if process is not None:
                    workers.discard(process)
                    try:
                        process.kill()
                    except ProcessLookupError:
                        pass

                    with CancelScope(shield=True):
                        await process.aclose()

                if isinstance(exc, get_cancelled_exc_class()):
                    raise

                raise BrokenWorkerProcess from exc
            else:
                idle_workers.append((process, current_time()))

    if status == "raise":
        raise value

    return cast(T_Retval, value)


def current_default_process_limiter() -> CapacityLimiter:
    """The capacity limiter :func:`run_sync` uses by default: as many worker
    processes at a time as the machine has CPUs."""
    from ._sync import CapacityLimiter

    try:
        return _default_process_limiter.get()
    except LookupError:
        limiter = CapacityLimiter(os.cpu_count() or 2)
        _default_process_limiter.set(limiter)
        return limiter


# -- the worker side -----------------------------------------------------------


def _read_exactly(stream: BinaryIO, size: int) -> bytes | None:
    data = bytearray()
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None

        data += chunk

    return bytes(data)


def _load_main_module(path: str | None) -> None:
    """Make the parent's main module importable as ``__mp_main__`` (aliased to
    ``__main__``, as multiprocessing does), so functions defined there can be
    unpickled. A main module that cannot be found or run is skipped."""
    if not path or not os.path.isfile(path):
        return

    import runpy

    try:
        namespace = runpy.run_path(path, run_name="__mp_main__")
    except BaseException:
        return

    import types

    module = types.ModuleType("__mp_main__")
    module.__dict__.update(namespace)
    module.__file__ = path
    sys.modules["__mp_main__"] = sys.modules["__main__"] = module


def process_worker() -> None:
    """The worker process's main loop (run via ``python -c``)."""
    # Keep private copies of the channel and park fds 0 and 1 on devnull
    channel_in = os.fdopen(os.dup(0), "rb", buffering=0)
    channel_out = os.fdopen(os.dup(1), "wb", buffering=0)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    os.close(devnull)
    sys.stdin = open(os.devnull)
    sys.stdout = open(os.devnull, "w")

    while True:
        header = _read_exactly(channel_in, _HEADER.size)
        if header is None:
            return

        (size,) = _HEADER.unpack(header)
        payload = _read_exactly(channel_in, size)
        if payload is None:
            return

        reply: tuple[str, Any]
        try:
            command, *rest = pickle.loads(payload)
            if command == "init":
                path, main_path = rest
                sys.path[:] = path
                _load_main_module(main_path)
                reply = ("return", None)
            elif command == "run":
                func, args = rest
                reply = ("return", func(*args))
            else:
                raise RuntimeError(f"unknown command {command!r}")
        except BaseException as exc:
            reply = ("raise", exc)

        try:
            data = _frame(reply)
        except BaseException as exc:
            # The result or exception cannot be pickled: report that instead
            data = _frame(("raise", RuntimeError(f"cannot send the result: {exc!r}")))

        channel_out.write(data)


if __name__ == "__main__":  # pragma: no cover
    process_worker()


__all__ = (
    "current_default_process_limiter",
    "process_worker",
    "run_sync",
)
