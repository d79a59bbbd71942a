"""gather(), as_completed() and amap()."""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import pytest

import anyio
from anyio import Event, TaskHandle, amap, as_completed, gather, get_current_task

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


async def after(events: dict[str, Event], wait_for: str | None, name: str) -> str:
    """Finish once ``wait_for`` is set (if given), then set this task's own event."""
    if wait_for is not None:
        await events[wait_for].wait()

    events[name].set()
    return name


def make_events(*names: str) -> dict[str, Event]:
    return {name: Event() for name in names}


class TestGather:
    async def test_results_follow_argument_order(self) -> None:
        events = make_events("a", "b", "c")
        # Completion order is c, b, a.
        results = await gather(
            after(events, "b", "a"), after(events, "c", "b"), after(events, None, "c")
        )
        assert results == ("a", "b", "c")

    async def test_no_coroutines(self) -> None:
        assert await gather() == ()

    async def test_runs_concurrently(self) -> None:
        started = Event()

        async def waiter() -> str:
            await started.wait()
            return "waited"

        async def starter() -> str:
            started.set()
            return "started"

        with anyio.fail_after(5):
            assert await gather(waiter(), starter()) == ("waited", "started")

    async def test_failure_cancels_the_rest(self) -> None:
        cancelled = False

        async def forever() -> None:
            nonlocal cancelled
            try:
                await anyio.sleep_forever()
            finally:
                cancelled = True

        async def fail() -> None:
            raise KeyError("bad")

        with pytest.raises(ExceptionGroup) as excinfo:
            await gather(forever(), fail())

        assert excinfo.group_contains(KeyError)
        assert cancelled

    async def test_task_names_come_from_the_coroutines(self) -> None:
        async def whoami() -> str:
            return get_current_task().name

        (name,) = await gather(whoami())
        assert name.endswith("test_task_names_come_from_the_coroutines.<locals>.whoami")


class TestAsCompleted:
    async def test_handles_arrive_in_completion_order(self) -> None:
        events = make_events("x", "y", "z")
        order: list[str] = []
        async with as_completed(
            after(events, "z", "x"), after(events, None, "y"), after(events, "y", "z")
        ) as stream:
            async for handle in stream:
                assert isinstance(handle, TaskHandle)
                assert handle.status is TaskHandle.Status.FINISHED
                order.append(handle.return_value)

        assert order == ["y", "z", "x"]

    async def test_plain_awaitables(self) -> None:
        class Ready:
            def __await__(self) -> Generator[Any, Any, int]:
                return self._value().__await__()

            async def _value(self) -> int:
                return 42

        async def coro() -> int:
            return 7

        async with as_completed(Ready(), coro()) as stream:
            handles = [handle async for handle in stream]

        assert sorted(handle.return_value for handle in handles) == [7, 42]
        # Each task gets a name of its own (here: the awaitable's type's name).
        assert len({handle.name for handle in handles}) == 2

    async def test_leaving_early_cancels_unfinished_tasks(self) -> None:
        cancelled = False

        async def quick() -> str:
            return "quick"

        async def slow() -> str:
            nonlocal cancelled
            try:
                await anyio.sleep_forever()
            finally:
                cancelled = True

        with anyio.fail_after(5):
            async with as_completed(slow(), quick()) as stream:
                first = await stream.receive()

        assert first.return_value == "quick"
        assert cancelled

    async def test_failure_propagates(self) -> None:
        async def fail() -> None:
            raise OSError("broken")

        async def forever() -> None:
            await anyio.sleep_forever()

        with pytest.raises(ExceptionGroup) as excinfo:
            async with as_completed(forever(), fail()) as stream:
                async for _ in stream:
                    pass

        assert excinfo.group_contains(OSError, match="broken")

    async def test_requires_an_awaitable(self) -> None:
        with pytest.raises(ValueError, match="at least one awaitable"):
            async with as_completed():
                pass


class TestAmap:
    async def test_results_follow_argument_order(self) -> None:
        gates = {n: Event() for n in range(4)}
        gates[3].set()

        async def countdown(n: int) -> int:
            # Each call releases the one before it: completion order 3, 2, 1, 0.
            await gates[n].wait()
            if n:
                gates[n - 1].set()
            return n * 10

        assert await amap(countdown, range(4)) == [0, 10, 20, 30]

    async def test_accepts_any_iterable(self) -> None:
        async def echo(value: str) -> str:
            return value

        assert await amap(echo, (c for c in "abc")) == ["a", "b", "c"]
        assert await amap(echo, []) == []

    async def test_failure_propagates(self) -> None:
        async def check(value: int) -> int:
            if value < 0:
                raise ValueError(f"negative: {value}")
            return value

        with pytest.raises(ExceptionGroup) as excinfo:
            await amap(check, [1, -2, 3])

        assert excinfo.group_contains(ValueError, match="negative: -2")
