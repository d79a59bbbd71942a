"""anyio used from tasks anyio did not create.

Frameworks host anyio code in tasks of their own: uvicorn runs each request in
a ``loop.create_task``, applications use ``asyncio.TaskGroup``. Every test here
is a plain (sync) test that starts an event loop itself, stock asyncio or
uvloop, without ``anyio.run``, and uses anyio's primitives from tasks made by
``asyncio.create_task`` / ``asyncio.TaskGroup``. The expectations are those of
upstream anyio 4.16.0 run the same way.
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

import pytest
from tests._backends import ASYNCIO_IDS, run_plain_loop

import anyio
import anyio.lowlevel
from anyio import from_thread, to_thread
from anyio.abc import TaskStatus
from anyio.from_thread import BlockingPortal

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

T = TypeVar("T")


@pytest.fixture(params=ASYNCIO_IDS)
def run(request: pytest.FixtureRequest) -> Callable[[Callable[[], Awaitable[T]]], T]:
    """Run an async function as the main task of a fresh, plain event loop."""

    def runner(func: Callable[[], Awaitable[T]]) -> T:
        async def main() -> T:
            return await func()

        return run_plain_loop(request.param, main)

    return runner


async def in_tasks(*coros: Coroutine[Any, Any, Any]) -> list[Any]:
    """Run each coroutine in its own asyncio task (asyncio.TaskGroup where there is one)."""
    if sys.version_info >= (3, 11):
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(coro) for coro in coros]
        return [task.result() for task in tasks]
    tasks = [asyncio.create_task(coro) for coro in coros]
    return list(await asyncio.gather(*tasks))


# ------------------------------------------------------------------ cancel scopes


def test_cancel_scope_cancelled_in_task(run: Any) -> None:
    async def body() -> tuple[bool, bool]:
        with anyio.CancelScope() as scope:
            scope.cancel()
            await anyio.sleep(10)
        return scope.cancel_called, scope.cancelled_caught

    async def main() -> Any:
        return await asyncio.create_task(body())

    assert run(main) == (True, True)


def test_move_on_after_and_fail_after_in_task(run: Any) -> None:
    async def body() -> list[Any]:
        seen: list[Any] = []
        with anyio.move_on_after(0.01) as scope:
            assert scope.deadline <= anyio.current_time() + 0.01
            assert anyio.current_effective_deadline() == scope.deadline
            await anyio.sleep(10)
        seen.append(scope.cancelled_caught)
        try:
            with anyio.fail_after(0.01):
                await anyio.sleep(10)
        except TimeoutError:
            seen.append("timeout")
        seen.append(anyio.current_effective_deadline())
        return seen

    async def main() -> Any:
        return await in_tasks(body(), body())

    assert run(main) == [[True, "timeout", float("inf")]] * 2


def test_deadline_set_from_another_task(run: Any) -> None:
    async def main() -> Any:
        entered = anyio.Event()
        scopes: list[anyio.CancelScope] = []

        async def sleeper() -> bool:
            with anyio.CancelScope() as scope:
                scopes.append(scope)
                entered.set()
                await anyio.sleep(10)
            return scope.cancelled_caught

        async def setter() -> None:
            await entered.wait()
            scopes[0].deadline = anyio.current_time() + 0.01

        return await in_tasks(sleeper(), setter())

    assert run(main) == [True, None]


def test_scope_cancelled_from_another_task_and_shield(run: Any) -> None:
    async def main() -> Any:
        entered = anyio.Event()
        scopes: list[anyio.CancelScope] = []

        async def worker() -> list[str]:
            log = []
            with anyio.CancelScope() as outer:
                scopes.append(outer)
                with anyio.CancelScope(shield=True):
                    entered.set()
                    await anyio.sleep(0.01)  # the cancel arrives while shielded
                    log.append("shielded sleep done")
                log.append("after shield")
                await anyio.sleep(10)
                log.append("not reached")
            log.append(f"caught={outer.cancelled_caught}")
            return log

        async def canceller() -> None:
            await entered.wait()
            scopes[0].cancel()

        return await in_tasks(worker(), canceller())

    log, _ = run(main)
    assert log == ["shielded sleep done", "after shield", "caught=True"]


def test_native_cancellation_of_foreign_task_inside_scope(run: Any) -> None:
    async def main() -> Any:
        inside = asyncio.Event()

        async def body() -> None:
            with anyio.CancelScope():
                inside.set()
                await anyio.sleep(10)

        task = asyncio.create_task(body())
        await inside.wait()
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "finished"

    assert run(main) == "cancelled"


def test_current_task_is_the_foreign_task(run: Any) -> None:
    async def body() -> bool:
        info = anyio.get_current_task()
        running = {task.id for task in anyio.get_running_tasks()}
        return info.id == id(asyncio.current_task()) and info.id in running

    async def main() -> Any:
        return await in_tasks(*(body() for _ in range(5)))

    assert run(main) == [True] * 5


# ------------------------------------------------------------------ task groups


def test_task_groups_in_many_foreign_tasks(run: Any) -> None:
    async def child(results: list[int], value: int) -> None:
        await anyio.lowlevel.checkpoint()
        results.append(value)

    async def starter(*, task_status: TaskStatus[str]) -> None:
        task_status.started("ready")
        await anyio.sleep(10)

    async def body(n: int) -> tuple[list[int], str]:
        results: list[int] = []
        async with anyio.create_task_group() as tg:
            for index in range(5):
                tg.start_soon(child, results, n * 10 + index)
            value = await tg.start(starter)
            tg.cancel_scope.cancel()
        return sorted(results), value

    async def main() -> Any:
        return await in_tasks(*(body(n) for n in range(20)))

    assert run(main) == [
        ([n * 10 + index for index in range(5)], "ready") for n in range(20)
    ]


def test_task_group_error_in_foreign_task(run: Any) -> None:
    async def fail() -> None:
        await anyio.lowlevel.checkpoint()
        raise ValueError("boom")

    async def body() -> str:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(fail)
                tg.start_soon(anyio.sleep, 10)
        except ExceptionGroup as group:
            assert [type(exc) for exc in group.exceptions] == [ValueError]
            return "group"
        return "nothing"

    async def main() -> Any:
        return await in_tasks(body(), body())

    assert run(main) == ["group", "group"]


# ------------------------------------------------------------------ sync primitives


def test_event_between_foreign_tasks(run: Any) -> None:
    async def main() -> Any:
        event = anyio.Event()

        async def waiter() -> bool:
            await event.wait()
            return event.is_set()

        async def setter() -> None:
            for _ in range(3):
                await anyio.lowlevel.checkpoint()
            event.set()

        return await in_tasks(*(waiter() for _ in range(10)), setter())

    assert run(main) == [True] * 10 + [None]


def test_lock_is_fair_and_exclusive_across_foreign_tasks(run: Any) -> None:
    async def main() -> Any:
        lock = anyio.Lock()
        order: list[int] = []
        holders = 0

        async def user(n: int) -> None:
            nonlocal holders
            async with lock:
                holders += 1
                assert holders == 1
                order.append(n)
                await anyio.lowlevel.checkpoint()
                holders -= 1

        async with lock:
            tasks = [asyncio.create_task(user(n)) for n in range(10)]
            for _ in range(5):
                await anyio.lowlevel.checkpoint()  # every user is queued now
        await asyncio.gather(*tasks)
        return order

    assert run(main) == list(range(10))


def test_semaphore_bounds_foreign_tasks(run: Any) -> None:
    async def main() -> Any:
        semaphore = anyio.Semaphore(3)
        inside = peak = 0

        async def user() -> None:
            nonlocal inside, peak
            async with semaphore:
                inside += 1
                peak = max(peak, inside)
                for _ in range(3):
                    await anyio.lowlevel.checkpoint()
                inside -= 1

        await in_tasks(*(user() for _ in range(20)))
        return peak, semaphore.value

    assert run(main) == (3, 3)


def test_condition_across_foreign_tasks(run: Any) -> None:
    async def main() -> Any:
        condition = anyio.Condition()
        woken: list[int] = []
        waiting = 0

        async def waiter(n: int) -> None:
            nonlocal waiting
            async with condition:
                waiting += 1
                await condition.wait()
                woken.append(n)

        async def notifier() -> None:
            while waiting < 4:
                await anyio.lowlevel.checkpoint()
            async with condition:
                condition.notify(2)
            while len(woken) < 2:
                await anyio.lowlevel.checkpoint()
            async with condition:
                condition.notify_all()

        await in_tasks(*(waiter(n) for n in range(4)), notifier())
        return woken

    assert run(main) == [0, 1, 2, 3]


def test_capacity_limiter_borrowers_are_foreign_tasks(run: Any) -> None:
    async def main() -> Any:
        limiter = anyio.CapacityLimiter(2)
        inside = peak = 0
        errors: list[str] = []

        async def user() -> None:
            nonlocal inside, peak
            async with limiter:
                try:
                    await limiter.acquire()
                except RuntimeError:
                    errors.append("held")
                inside += 1
                peak = max(peak, inside)
                await anyio.lowlevel.checkpoint()
                inside -= 1

        await in_tasks(*(user() for _ in range(10)))
        return peak, len(errors), limiter.borrowed_tokens

    assert run(main) == (2, 10, 0)


# ------------------------------------------------------------------ memory streams


def test_memory_stream_between_foreign_tasks(run: Any) -> None:
    async def main() -> Any:
        send, receive = anyio.create_memory_object_stream[int](2)

        async def producer(start: int, stream: Any) -> None:
            async with stream:
                for value in range(start, start + 50):
                    await stream.send(value)

        async def consumer() -> list[int]:
            async with receive:
                return [value async for value in receive]

        second = send.clone()
        results = await in_tasks(producer(0, send), producer(50, second), consumer())
        return sorted(results[2])

    assert run(main) == list(range(100))


def test_memory_stream_closed_peer_is_a_checkpoint(run: Any) -> None:
    # send() to a stream without receivers checkpoints before raising, so a
    # loop that ignores the error still lets the deadline cancel it.
    async def body() -> tuple[bool, bool]:
        send, receive = anyio.create_memory_object_stream[int]()
        receive.close()
        with anyio.move_on_after(0.05) as send_scope:
            for _ in range(1_000_000):
                try:
                    await send.send(1)
                except anyio.BrokenResourceError:
                    pass
        send2, receive2 = anyio.create_memory_object_stream[int]()
        send2.close()
        with anyio.move_on_after(0.05) as receive_scope:
            for _ in range(1_000_000):
                try:
                    await receive2.receive()
                except anyio.EndOfStream:
                    pass
        send.close()
        receive2.close()
        return send_scope.cancelled_caught, receive_scope.cancelled_caught

    async def main() -> Any:
        return await asyncio.create_task(body())

    assert run(main) == (True, True)


def test_memory_stream_rendezvous_receiver_runs_first(run: Any) -> None:
    async def main() -> Any:
        send, receive = anyio.create_memory_object_stream[str](0)
        log: list[str] = []

        async def sender() -> None:
            await send.send("item")
            log.append("sender resumed")

        async def receiver() -> None:
            while not send.statistics().tasks_waiting_send:
                await anyio.lowlevel.checkpoint()
            log.append(await receive.receive())

        await in_tasks(sender(), receiver())
        send.close()
        receive.close()
        return log

    assert run(main) == ["item", "sender resumed"]


# ------------------------------------------------------------------ threads


def test_to_thread_from_many_short_lived_tasks(
    run: Any, keep_idle_workers: None
) -> None:
    native_ids: set[int] = set()

    def work(value: int) -> int:
        native_ids.add(threading.get_native_id())
        return value * 2

    async def short_lived(n: int) -> int:
        total = 0
        for index in range(40):
            total += await to_thread.run_sync(work, index)
        return total

    async def main() -> Any:
        results = []
        for _ in range(3):  # waves of 50 tasks, each wave's tasks all end
            results += await in_tasks(*(short_lived(n) for n in range(50)))
        # A task started after all the others ended still gets a worker.
        results.append(await asyncio.create_task(to_thread.run_sync(work, 1)))
        return results

    # keep_idle_workers: no worker leaves mid-test for a new one to replace it.
    assert run(main) == [sum(range(40)) * 2] * 150 + [2]
    # The default limiter allows 40 workers; a pool kept for the loop's
    # lifetime starts no more than that.
    assert len(native_ids) <= 40


def test_from_thread_run_and_run_sync_from_workers(run: Any) -> None:
    async def main() -> Any:
        loop_thread = threading.get_ident()

        async def coro(value: int) -> tuple[int, bool]:
            await anyio.lowlevel.checkpoint()
            return value + 1, threading.get_ident() == loop_thread

        def in_worker(value: int) -> tuple[Any, Any]:
            return (
                from_thread.run(coro, value),
                from_thread.run_sync(lambda: threading.get_ident() == loop_thread),
            )

        async def task(value: int) -> Any:
            return await to_thread.run_sync(in_worker, value)

        return await in_tasks(*(task(n) for n in range(45)))

    assert run(main) == [((n + 1, True), True) for n in range(45)]


def test_from_thread_run_gets_its_own_task(run: Any) -> None:
    # The coroutine runs in a task of its own, so a to_thread call inside it
    # is a different borrower of the default limiter than the caller.
    async def main() -> Any:
        caller = anyio.get_current_task().id

        async def inner() -> tuple[bool, int]:
            own = anyio.get_current_task().id
            value = await to_thread.run_sync(lambda: 7)
            return own != caller, value

        return await asyncio.create_task(to_thread.run_sync(from_thread.run, inner))

    assert run(main) == (True, 7)


def test_exception_chaining_across_threads(run: Any) -> None:
    def raise_chained() -> None:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise ValueError("outer") from exc

    async def raise_in_coro() -> None:
        try:
            raise KeyError("inner")
        except KeyError:
            raise ValueError("outer")  # implicit __context__, tested

    def call_coro() -> None:
        from_thread.run(raise_in_coro)

    async def main() -> Any:
        seen = []
        for func in (raise_chained, call_coro):
            try:
                await asyncio.create_task(to_thread.run_sync(func))
            except ValueError as exc:
                seen.append(
                    (
                        type(exc.__cause__).__name__,
                        type(exc.__context__).__name__,
                    )
                )
        return seen

    assert run(main) == [("KeyError", "KeyError"), ("NoneType", "KeyError")]


def test_blocking_portal_used_from_worker_threads(run: Any) -> None:
    async def main() -> Any:
        async def double(value: int) -> int:
            await anyio.lowlevel.checkpoint()
            return value * 2

        async with BlockingPortal() as portal:

            def in_worker(value: int) -> tuple[int, int, str]:
                future = portal.start_task_soon(double, value)
                lock = anyio.Lock()
                with portal.wrap_async_context_manager(lock):
                    held = "held" if lock.locked() else "free"
                return portal.call(double, value), future.result(), held

            return await in_tasks(
                *(to_thread.run_sync(in_worker, n) for n in range(10))
            )

    assert run(main) == [(n * 2, n * 2, "held") for n in range(10)]


def test_run_async_callable_in_thread_after_tasks_end(run: Any) -> None:
    # Worker threads and the limiter stay usable after the first task that
    # used them has finished.
    async def one_call(value: int) -> int:
        return await to_thread.run_sync(lambda: value)

    async def main() -> Any:
        first = await asyncio.create_task(one_call(1))
        await asyncio.sleep(0)
        second = await asyncio.create_task(one_call(2))
        limiter = to_thread.current_default_thread_limiter()
        return first, second, limiter.total_tokens, limiter.borrowed_tokens

    assert run(main) == (1, 2, 40, 0)


def test_thread_exception_chains_to_the_exception_being_handled(run: Any) -> None:
    # Raised into the awaiting code as if raised there: inside an except
    # block, the exception being handled becomes its __context__.
    def fail() -> None:
        raise ValueError("in worker")

    async def fail_async() -> None:
        raise ValueError("in coroutine")

    def from_worker() -> str:
        try:
            try:
                raise RuntimeError("handled")
            except RuntimeError:
                from_thread.run(fail_async)
        except ValueError as exc:
            return type(exc.__context__).__name__
        return "nothing raised"

    async def in_task() -> list[str]:
        seen = []
        try:
            try:
                raise RuntimeError("handled")
            except RuntimeError:
                await to_thread.run_sync(fail)
        except ValueError as exc:
            seen.append(type(exc.__context__).__name__)
        seen.append(await to_thread.run_sync(from_worker))
        return seen

    async def main() -> Any:
        return await asyncio.create_task(in_task())

    assert run(main) == ["RuntimeError", "RuntimeError"]
