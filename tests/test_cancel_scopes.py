"""Cancel scopes, timeouts and their interplay with native asyncio."""

from __future__ import annotations

import asyncio
import gc
import math
import selectors
import sys
import weakref

import pytest
from tests._backends import ASYNCIO_IDS, backend, on_backends, run_plain_loop

import anyio
from anyio import (
    CancelScope,
    current_effective_deadline,
    current_time,
    fail_after,
    fail_at,
    get_cancelled_exc_class,
    move_on_after,
    move_on_at,
)
from anyio.lowlevel import checkpoint

pytestmark = pytest.mark.anyio


async def test_cancel_before_checkpoint() -> None:
    with CancelScope() as scope:
        scope.cancel()
        await checkpoint()
        pytest.fail("not cancelled")

    assert scope.cancel_called
    assert scope.cancelled_caught


async def test_scope_not_cancelled() -> None:
    with CancelScope() as scope:
        await checkpoint()

    assert not scope.cancel_called
    assert not scope.cancelled_caught


async def test_cancel_reason_in_message() -> None:
    with CancelScope() as scope:
        scope.cancel("test reason")
        with pytest.raises(get_cancelled_exc_class(), match="test reason"):
            await checkpoint()


async def test_level_cancellation_repeats() -> None:
    caught = 0
    with CancelScope() as scope:
        scope.cancel()
        for _ in range(3):
            try:
                await anyio.sleep(1)
            except get_cancelled_exc_class():
                caught += 1

    assert caught == 3


async def test_shield_blocks_outer_cancellation() -> None:
    with CancelScope() as outer:
        with CancelScope(shield=True) as inner:
            outer.cancel()
            await anyio.sleep(0.01)
            assert inner.shield

        assert not inner.cancelled_caught
        await checkpoint()
        pytest.fail("outer cancellation was lost")

    assert outer.cancelled_caught


async def test_unshielding_delivers() -> None:
    with CancelScope() as outer:
        with CancelScope(shield=True) as inner:
            outer.cancel()
            await checkpoint()
            inner.shield = False
            await checkpoint()
            pytest.fail("not cancelled after dropping the shield")

    assert not inner.cancelled_caught
    assert outer.cancelled_caught


async def test_nested_outer_catches() -> None:
    with CancelScope() as outer:
        with CancelScope() as inner:
            outer.cancel()
            await checkpoint()

    assert not inner.cancelled_caught
    assert outer.cancelled_caught


async def test_move_on_after() -> None:
    reached = False
    with move_on_after(0.01) as scope:
        await anyio.sleep(1)
        reached = True

    assert not reached
    assert scope.cancel_called
    assert scope.cancelled_caught


async def test_move_on_after_none() -> None:
    with move_on_after(None) as scope:
        assert scope.deadline == math.inf
        await anyio.sleep(0.01)

    assert not scope.cancel_called


async def test_move_on_at_past_deadline() -> None:
    with move_on_at(current_time() - 1) as scope:
        await checkpoint()
        pytest.fail("not cancelled")

    assert scope.cancelled_caught


async def test_fail_after_raises_timeout() -> None:
    with pytest.raises(TimeoutError):
        with fail_after(0.01) as scope:
            await anyio.sleep(1)

    assert scope.cancelled_caught


async def test_fail_after_reason() -> None:
    with pytest.raises(TimeoutError, match="oopsies"):
        with fail_after(0, reason="oopsies"):
            await anyio.sleep(1)


async def test_fail_at_manual_cancel_is_not_timeout() -> None:
    with fail_at(current_time() + 10) as scope:
        scope.cancel()
        await checkpoint()

    assert scope.cancelled_caught


async def test_fail_after_no_timeout() -> None:
    with fail_after(1):
        await checkpoint()


async def test_deadline_change_reschedules() -> None:
    with CancelScope() as scope:
        scope.deadline = current_time() + 0.01
        await anyio.sleep(1)

    assert scope.cancelled_caught
    with CancelScope(deadline=current_time() + 0.01) as scope:
        scope.deadline = math.inf
        await anyio.sleep(0.03)

    assert not scope.cancel_called


async def test_current_effective_deadline() -> None:
    assert current_effective_deadline() == math.inf
    with move_on_after(10) as outer:
        with move_on_after(20):
            assert current_effective_deadline() == outer.deadline
        with CancelScope(shield=True):
            assert current_effective_deadline() == math.inf
        outer.cancel()
        assert current_effective_deadline() == -math.inf


async def test_scope_reuse_raises() -> None:
    scope = CancelScope()
    with scope:
        pass

    with pytest.raises(RuntimeError, match="single 'with' block"):
        with scope:
            pass


ASYNCIO_ONLY = on_backends(*ASYNCIO_IDS)


# On Trio the scopes are Trio's own, which report (and recover from) this
# misuse with their own "Cancel scope stack corrupted" error.
@ASYNCIO_ONLY
async def test_exit_out_of_order_raises() -> None:
    outer = CancelScope()
    inner = CancelScope()
    outer.__enter__()
    inner.__enter__()
    with pytest.raises(RuntimeError, match="current cancel scope"):
        outer.__exit__(None, None, None)

    inner.__exit__(None, None, None)
    outer.__exit__(None, None, None)


async def test_exit_in_another_task_raises(anyio_backend_name: str) -> None:
    if anyio_backend_name == "trio":
        pytest.skip("Trio checks this itself, with its own error")

    scope = CancelScope()
    errors: list[BaseException] = []

    async def exit_elsewhere() -> None:
        try:
            scope.__exit__(None, None, None)
        except RuntimeError as exc:
            errors.append(exc)

    with scope:
        async with anyio.create_task_group() as tg:
            tg.start_soon(exit_elsewhere)

    assert "different task" in str(errors[0])


async def test_cancel_task_group_children() -> None:
    finished: list[str] = []

    async def child(name: str) -> None:
        try:
            await anyio.sleep_forever()
        finally:
            finished.append(name)

    async with anyio.create_task_group() as tg:
        tg.start_soon(child, "a")
        tg.start_soon(child, "b")
        await anyio.wait_all_tasks_blocked()
        tg.cancel_scope.cancel()

    assert sorted(finished) == ["a", "b"]


async def test_shielded_cleanup_with_timeout() -> None:
    cleaned = False
    with CancelScope() as scope:
        try:
            scope.cancel()
            await checkpoint()
        finally:
            with move_on_after(1, shield=True):
                await anyio.sleep(0.01)
                cleaned = True

    assert cleaned


@pytest.mark.skipif(
    sys.version_info < (3, 11), reason="asyncio.timeout() is new in Python 3.11"
)
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_native_timeout_inside_scope() -> None:
    with CancelScope() as scope:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await asyncio.sleep(1)

    assert not scope.cancelled_caught
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


@pytest.mark.skipif(
    sys.version_info < (3, 11), reason="asyncio.TaskGroup is new in Python 3.11"
)
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_scope_inside_native_taskgroup() -> None:
    results: list[str] = []

    async def child() -> None:
        with move_on_after(0.01) as scope:
            await asyncio.sleep(1)
        results.append(f"caught={scope.cancelled_caught}")

    async with asyncio.TaskGroup() as tg:
        tg.create_task(child())

    assert results == ["caught=True"]


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_result_not_lost_when_cancelled() -> None:
    received: list[str] = []

    async def receive(fut: asyncio.Future[str]) -> None:
        received.append(await fut)
        await asyncio.sleep(1)
        received.append("not reached")

    fut = asyncio.get_running_loop().create_future()
    async with anyio.create_task_group() as tg:
        tg.start_soon(receive, fut)
        await asyncio.sleep(0)
        fut.set_result("hello")
        tg.cancel_scope.cancel()

    assert received == ["hello"]


class CountingSelector(selectors.DefaultSelector):
    """Counts how often the event loop polls: one select() per iteration."""

    def __init__(self) -> None:
        super().__init__()
        self.selects = 0

    def select(self, timeout: float | None = None) -> list:  # type: ignore[type-arg]
        self.selects += 1
        return super().select(timeout)


@pytest.mark.parametrize("child_kind", ["shielded", "swallowing"])
def test_cancelled_waiters_cost_no_iterations(child_kind: str) -> None:
    """While the cancelled host waits for a child that cannot be cancelled now
    (it sits in a shielded scope, possibly after swallowing its cancellation),
    the loop must idle: no call_soon re-delivery every iteration."""
    selector = CountingSelector()

    async def shielded_child() -> None:
        if child_kind == "swallowing":
            try:
                await anyio.sleep_forever()
            except BaseException:
                pass
        with CancelScope(shield=True):
            await asyncio.sleep(0.2)

    async def main() -> int:
        with CancelScope() as outer:
            async with anyio.create_task_group() as tg:
                tg.start_soon(shielded_child)
                await anyio.wait_all_tasks_blocked()
                before = selector.selects
                outer.cancel()
        return selector.selects - before

    spent = anyio.run(
        main,
        backend_options={"loop_factory": lambda: asyncio.SelectorEventLoop(selector)},
    )
    # A handful of iterations to deliver and wake; a polling design spends one
    # per loop pass for 0.2 s (thousands).
    assert spent <= 8, f"{spent} loop iterations while nothing could be delivered"


@pytest.mark.parametrize("backend_id", ASYNCIO_IDS)
@pytest.mark.parametrize("host", ["anyio.run", "plain loop"])
def test_loop_with_pending_deadline_timer_is_freed(backend_id: str, host: str) -> None:
    """A deadline scope leaves the loop's timer armed for the next scope; once
    the loop closes, nothing here may keep the loop (or its state) alive."""
    loops: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def main() -> None:
        loops.append(weakref.ref(asyncio.get_running_loop()))
        with fail_after(3600):
            await checkpoint()

    for _ in range(3):
        if host == "anyio.run":
            anyio.run(main, backend_options=backend(backend_id)[1])
        else:
            run_plain_loop(backend_id, main)
    gc.collect()
    assert [ref() for ref in loops] == [None, None, None]


if sys.version_info >= (3, 11):

    def test_plain_asyncio_run_host_level_cancellation() -> None:
        """The root task of asyncio.run is not ours; level cancellation still
        reaches it at raw asyncio awaits, and cancelling() ends balanced."""
        caught: list[str] = []

        async def main() -> int:
            with CancelScope() as scope:
                scope.cancel()
                for label in ("first", "second"):
                    try:
                        await asyncio.sleep(1)
                    except asyncio.CancelledError:
                        caught.append(label)
                await asyncio.sleep(1)
            assert scope.cancelled_caught
            task = asyncio.current_task()
            assert task is not None
            return task.cancelling()

        assert asyncio.run(main()) == 0
        assert caught == ["first", "second"]
