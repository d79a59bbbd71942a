"""Bad arguments to ``throw()`` on the core's awaitables raise TypeError, as on
generators, and leave the awaitable where it was."""

from __future__ import annotations

import sys
import types
import warnings
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import pytest

import anyio
from anyio.lowlevel import cancel_shielded_checkpoint, checkpoint

pytestmark = pytest.mark.anyio

NOT_EXC = "exceptions must be classes or instances deriving from BaseException"
BAD_TB = "throw() third argument must be a traceback object"
SEPARATE = "instance exception may not have a separate value"

BAD_CALLS: list[tuple[tuple[Any, ...], str]] = [
    ((1,), NOT_EXC + ", not int"),
    ((None,), NOT_EXC + ", not NoneType"),
    (("x",), NOT_EXC + ", not str"),
    ((int,), NOT_EXC + ", not type"),
    ((ValueError, 1, 5), BAD_TB),
    ((ValueError("a"), None, 5), BAD_TB),
    ((ValueError("a"), 1), SEPARATE),
    ((), "throw expected at least 1 argument, got 0"),
    ((ValueError, None, None, None), "throw expected at most 3 arguments, got 4"),
]


def _makers() -> dict[str, Callable[[], Awaitable[Any]]]:
    event = anyio.Event()
    lock = anyio.Lock()
    send, receive = anyio.create_memory_object_stream[int](1)
    return {
        "checkpoint": checkpoint,
        "cancel_shielded_checkpoint": cancel_shielded_checkpoint,
        "send": lambda: send.send(1),
        "receive": receive.receive,
        "event.wait": event.wait,
        "lock.acquire": lock.acquire,
        "task_group.__aenter__": lambda: anyio.create_task_group().__aenter__(),
    }


def _iterator(awaitable: Awaitable[Any]) -> Generator[Any, Any, Any]:
    return awaitable.__await__()  # type: ignore[return-value]


def _throw(it: Generator[Any, Any, Any], *args: Any) -> Any:
    # From Python 3.12 on, throw() with more than one argument warns first
    # (DeprecationWarning, an error under this suite's settings), as
    # generators do; what is checked here is what follows the warning.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return it.throw(*args)


@pytest.mark.parametrize("name", list(_makers()))
async def test_bad_throw_raises_type_error(name: str) -> None:
    for args, message in BAD_CALLS:
        it = _iterator(_makers()[name]())
        with pytest.raises(TypeError) as info:
            _throw(it, *args)
        assert str(info.value) == message, (name, args)
        it.close()


@pytest.mark.parametrize("name", ["checkpoint", "event.wait", "lock.acquire"])
async def test_valid_throw_forms_still_raise_the_exception(name: str) -> None:
    tb: types.TracebackType | None
    try:
        raise KeyError("t")
    except KeyError:
        tb = sys.exc_info()[2]
    for args in [
        (ValueError,),
        (ValueError("a"),),
        (ValueError, "a"),
        (ValueError, ("a", 1)),
        (ValueError, ValueError("a")),
        (ValueError("a"), None, None),
        (ValueError, "a", tb),
    ]:
        it = _iterator(_makers()[name]())
        with pytest.raises(ValueError):
            _throw(it, *args)


class _BadThrowAfterFirstStep:
    """Awaits `awaitable`, sending it a bad throw() after its first suspension
    and then driving it as a plain ``await`` would."""

    def __init__(self, awaitable: Awaitable[Any]) -> None:
        self.it = _iterator(awaitable)
        self.error: TypeError | None = None

    def __await__(self) -> Generator[Any, Any, Any]:
        it = self.it
        try:
            value = it.send(None)
        except StopIteration as stop:
            return stop.value
        try:
            it.throw(1)
        except TypeError as exc:
            self.error = exc
        while True:
            try:
                sent = yield value
            except BaseException as exc:
                try:
                    value = it.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = it.send(sent)
                except StopIteration as stop:
                    return stop.value


async def test_bad_throw_leaves_the_operation_pending() -> None:
    # A generator refuses the call before resuming its frame: the queued
    # acquisition stays queued and completes once the holder lets go.
    lock = anyio.Lock()
    holding = anyio.Event()
    done = anyio.Event()
    probe = _BadThrowAfterFirstStep(lock.acquire())

    async def holder() -> None:
        async with lock:
            holding.set()
            await done.wait()

    async def waiter() -> None:
        await probe
        lock.release()

    async with anyio.create_task_group() as tg:
        tg.start_soon(holder)
        await holding.wait()
        tg.start_soon(waiter)
        await anyio.wait_all_tasks_blocked()
        assert isinstance(probe.error, TypeError)
        assert lock.statistics().tasks_waiting == 1
        done.set()
    assert not lock.locked()
