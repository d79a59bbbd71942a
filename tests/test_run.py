"""anyio.run, backends, sleeping and the clock."""

from __future__ import annotations

import asyncio
import math

import pytest

import anyio
from anyio import NoEventLoopError


def test_run_returns_value_on_each_backend() -> None:
    async def add(a: int, b: int) -> int:
        await anyio.sleep(0)
        return a + b

    assert anyio.run(add, 1, 2) == 3
    assert (
        anyio.run(add, 1, 2, backend="asyncio", backend_options={"use_uvloop": True})
        == 3
    )
    assert anyio.run(add, 1, 2, backend="trio") == 3


def test_run_unknown_backend() -> None:
    async def noop() -> None:
        pass

    with pytest.raises(LookupError, match="No such backend: foo"):
        anyio.run(noop, backend="foo")


def test_run_unknown_asyncio_option_is_ignored() -> None:
    # As upstream: the asyncio backend ignores options it does not know.
    async def answer() -> int:
        return 42

    assert anyio.run(answer, backend_options={"bogus": True}) == 42
    assert anyio.run(answer, backend_options={"debug": False, "bogus": 1}) == 42


def test_run_inside_running_loop_raises() -> None:
    async def inner() -> None:
        pass

    async def outer() -> None:
        with pytest.raises(
            RuntimeError, match="Already running asyncio in this thread"
        ):
            anyio.run(inner)

    anyio.run(outer)


def test_asyncio_loop_factory_and_debug() -> None:
    seen: list[object] = []

    def factory() -> asyncio.AbstractEventLoop:
        loop = asyncio.new_event_loop()
        seen.append(loop)
        return loop

    async def main() -> bool:
        assert asyncio.get_running_loop() is seen[0]
        return asyncio.get_running_loop().get_debug()

    assert anyio.run(main, backend_options={"loop_factory": factory, "debug": True})


def test_uvloop_option_uses_uvloop() -> None:
    async def main() -> str:
        return type(asyncio.get_running_loop()).__module__

    assert anyio.run(main, backend_options={"use_uvloop": True}).startswith("uvloop")


def test_main_task_named_after_function() -> None:
    async def main() -> str | None:
        return anyio.get_current_task().name

    assert (
        anyio.run(main)
        == f"{__name__}.test_main_task_named_after_function.<locals>.main"
    )


def test_backends() -> None:
    assert anyio.get_all_backends() == ("asyncio", "trio")
    assert anyio.get_available_backends() == ("asyncio", "trio")


def test_no_event_loop_errors() -> None:
    with pytest.raises(NoEventLoopError, match="Not currently running"):
        anyio.get_cancelled_exc_class()
    with pytest.raises(NoEventLoopError):
        anyio.current_time()
    with pytest.raises(NoEventLoopError):
        anyio.sleep(0).send(None)
    with pytest.raises(NoEventLoopError):
        anyio.lowlevel.checkpoint().send(None)


pytestmark_async = pytest.mark.anyio


@pytestmark_async
async def test_cancelled_exc_class(anyio_backend_name: str) -> None:
    exc_class = anyio.get_cancelled_exc_class()
    if anyio_backend_name == "trio":
        import trio

        assert exc_class is trio.Cancelled
    else:
        assert exc_class is asyncio.CancelledError


@pytestmark_async
async def test_sleep_and_clock() -> None:
    start = anyio.current_time()
    await anyio.sleep(0.05)
    elapsed = anyio.current_time() - start
    assert 0.04 <= elapsed < 1


@pytestmark_async
async def test_sleep_until() -> None:
    deadline = anyio.current_time() + 0.05
    await anyio.sleep_until(deadline)
    assert anyio.current_time() >= deadline - 0.01


@pytestmark_async
async def test_sleep_forever_is_cancellable() -> None:
    with anyio.move_on_after(0.01) as scope:
        await anyio.sleep_forever()

    assert scope.cancelled_caught
    assert anyio.current_effective_deadline() == math.inf
