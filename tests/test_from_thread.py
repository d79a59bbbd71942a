"""anyio.from_thread: calling into the event loop from worker and other threads."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from tests._backends import BACKEND_IDS, backend

import anyio
from anyio import (
    CancelScope,
    Event,
    NoEventLoopError,
    RunFinishedError,
    create_task_group,
    fail_after,
    from_thread,
    get_cancelled_exc_class,
    sleep,
    to_thread,
    wait_all_tasks_blocked,
)
from anyio.lowlevel import checkpoint, current_token

pytestmark = pytest.mark.anyio

var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")


async def test_run_coroutine_from_worker() -> None:
    loop_thread = threading.get_ident()

    async def add(a: int, b: int) -> tuple[int, int]:
        await checkpoint()
        return a + b, threading.get_ident()

    total, ident = await to_thread.run_sync(from_thread.run, add, 2, 3)
    assert (total, ident) == (5, loop_thread)


async def test_run_sync_from_worker() -> None:
    loop_thread = threading.get_ident()
    assert (
        await to_thread.run_sync(from_thread.run_sync, threading.get_ident)
        == loop_thread
    )


async def test_exceptions_cross_back() -> None:
    async def fail() -> None:
        raise KeyError("async")

    def worker() -> list[str]:
        seen = []
        try:
            from_thread.run(fail)
        except KeyError as exc:
            seen.append(exc.args[0])
        try:
            from_thread.run_sync(int, "x")
        except ValueError:
            seen.append("sync")
        return seen

    assert await to_thread.run_sync(worker) == ["async", "sync"]


async def test_context_flows_through_thread_and_back() -> None:
    var.set("task")

    async def read() -> str:
        return var.get()

    def worker() -> tuple[str, str, str]:
        before = var.get()
        var.set("thread")
        return before, from_thread.run(read), from_thread.run_sync(var.get)

    assert await to_thread.run_sync(worker) == ("task", "thread", "thread")
    assert var.get() == "task"


def test_outside_worker_thread() -> None:
    with pytest.raises(
        NoEventLoopError, match="Not running inside an AnyIO worker thread"
    ):
        from_thread.run_sync(int)
    with pytest.raises(
        NoEventLoopError, match="Not running inside an AnyIO worker thread"
    ):
        from_thread.run(sleep, 0)
    with pytest.raises(
        NoEventLoopError, match="only be called inside an AnyIO worker thread"
    ):
        from_thread.check_cancelled()


async def test_from_event_loop_thread() -> None:
    with pytest.raises(NoEventLoopError):
        from_thread.run_sync(int)


async def test_token_from_foreign_thread() -> None:
    event = Event()
    token = current_token()

    async def set_and_return() -> int:
        event.set()
        return 7

    with ThreadPoolExecutor(1) as executor:
        future = executor.submit(from_thread.run, set_and_return, token=token)
        await event.wait()
        assert await to_thread.run_sync(future.result) == 7
        future2 = executor.submit(
            from_thread.run_sync, threading.get_ident, token=token
        )
        assert await to_thread.run_sync(future2.result) == threading.get_ident()


def test_token_of_finished_loop(anyio_backend_name: str) -> None:
    async def get_token() -> object:
        return current_token()

    token = anyio.run(get_token, backend=anyio_backend_name)
    with pytest.raises(RunFinishedError):
        from_thread.run_sync(int, token=token)  # type: ignore[arg-type]
    with pytest.raises(RunFinishedError):
        from_thread.run(sleep, 0, token=token)  # type: ignore[arg-type]


async def test_check_cancelled_sees_host_cancellation() -> None:
    event = threading.Event()
    reached = []

    def worker() -> None:
        event.wait(5)
        from_thread.check_cancelled()
        reached.append(True)

    async with create_task_group() as tg:

        async def cancel() -> None:
            await wait_all_tasks_blocked()
            tg.cancel_scope.cancel()
            event.set()

        tg.start_soon(cancel)
        await to_thread.run_sync(worker)

    assert not reached


async def test_check_cancelled_when_not_cancelled() -> None:
    await to_thread.run_sync(from_thread.check_cancelled)


async def test_check_cancelled_after_abandon() -> None:
    event = threading.Event()
    outcome: list[type[BaseException] | None] = []
    done = threading.Event()

    def worker() -> None:
        event.wait(5)
        try:
            from_thread.check_cancelled()
        except BaseException as exc:
            outcome.append(type(exc))
        else:
            outcome.append(None)
        done.set()

    with CancelScope() as scope:
        async with create_task_group() as tg:
            tg.start_soon(lambda: to_thread.run_sync(worker, abandon_on_cancel=True))
            await wait_all_tasks_blocked()
            scope.cancel()

    event.set()
    await to_thread.run_sync(done.wait, 5)
    assert outcome == [get_cancelled_exc_class()]


async def test_host_scope_cancels_async_call() -> None:
    # Cancelling the waiting task's scope cancels the coroutine, and the
    # scope catches the cancellation.
    async def bomb() -> None:
        scope.cancel()
        with fail_after(5):
            await sleep(10)

    with CancelScope() as scope:
        await to_thread.run_sync(from_thread.run, bomb)

    assert scope.cancelled_caught


async def test_abandoned_async_call_keeps_running() -> None:
    host_gone = Event()
    finished = Event()

    async def bomb() -> None:
        scope.cancel()
        with fail_after(5):
            await host_gone.wait()
        finished.set()

    with CancelScope() as scope:
        await to_thread.run_sync(from_thread.run, bomb, abandon_on_cancel=True)

    assert scope.cancelled_caught
    host_gone.set()
    with fail_after(5):
        await finished.wait()


async def test_exceptions_cross_back_with_their_chain() -> None:
    """The exception of the loop-side function reaches the thread with its
    __cause__; raised while the thread handles an exception, it gets that
    one as __context__, as a `raise` statement would."""

    def implicit() -> None:
        try:
            raise KeyError("inner")
        except KeyError:
            raise ValueError("outer")

    def explicit() -> None:
        try:
            raise KeyError("inner")
        except KeyError as exc:
            raise ValueError("outer") from exc

    async def async_implicit() -> None:
        implicit()

    async def async_explicit() -> None:
        explicit()

    def worker() -> list[tuple[str, str, bool]]:
        seen = []
        calls = [
            (from_thread.run, async_implicit),
            (from_thread.run, async_explicit),
            (from_thread.run_sync, implicit),
            (from_thread.run_sync, explicit),
        ]
        for call, func in calls:
            try:
                call(func)  # type: ignore[operator]
            except ValueError as exc:
                seen.append(
                    (
                        type(exc.__cause__).__name__,
                        type(exc.__context__).__name__,
                        exc.__suppress_context__,
                    )
                )
            try:
                raise OSError("handled by the thread")
            except OSError as handled:
                try:
                    call(func)  # type: ignore[operator]
                except ValueError as exc:
                    assert exc.__context__ is handled
        return seen

    assert await to_thread.run_sync(worker) == [
        ("NoneType", "KeyError", False),
        ("KeyError", "KeyError", True),
        ("NoneType", "KeyError", False),
        ("KeyError", "KeyError", True),
    ]


async def test_to_thread_inside_from_thread_run() -> None:
    """The coroutine borrows a limiter token as itself: a to_thread call in it
    does not clash with the token its caller's to_thread call holds."""

    async def nested() -> int:
        return await to_thread.run_sync(int, "5")

    assert await to_thread.run_sync(from_thread.run, nested) == 5
    limiter = anyio.CapacityLimiter(2)
    assert await to_thread.run_sync(from_thread.run, nested, limiter=limiter) == 5


def _current_task(backend: str) -> object:
    if backend == "trio":
        import trio

        return trio.lowlevel.current_task()

    import asyncio

    return asyncio.current_task()


async def test_async_call_task_identity(anyio_backend_name: str) -> None:
    """asyncio: the coroutine runs in a task of its own, as upstream's does;
    Trio runs it in the waiting task (trio.from_thread.run does)."""

    async def whoami() -> object:
        return _current_task(anyio_backend_name)

    host = _current_task(anyio_backend_name)
    task = await to_thread.run_sync(from_thread.run, whoami)
    assert (task is host) == (anyio_backend_name == "trio")


async def test_deadline_cancels_async_call_of_abandoning_caller(
    anyio_backend_name: str,
) -> None:
    """A caller that may abandon the thread gives up when its scope's deadline
    passes; on asyncio the coroutine the thread is waiting for is cancelled
    with it (the thread gets the cancellation), on Trio it keeps running."""
    started = threading.Event()
    log: list[str] = []

    async def slow() -> None:
        started.set()
        try:
            await sleep(1)
            log.append("finished")
        except get_cancelled_exc_class():
            log.append("cancelled")
            raise

    def worker() -> None:
        try:
            from_thread.run(slow)
        except BaseException as exc:
            log.append(f"worker got {type(exc).__name__}")
        done.set()

    done = threading.Event()
    with CancelScope() as scope:
        async with create_task_group() as tg:

            async def cancel_when_started() -> None:
                await to_thread.run_sync(started.wait, 5)
                scope.cancel()

            tg.start_soon(cancel_when_started)
            await to_thread.run_sync(worker, abandon_on_cancel=True)

    assert scope.cancelled_caught
    await to_thread.run_sync(done.wait, 5)
    if anyio_backend_name == "trio":
        assert log == ["finished"]
    else:
        assert log == ["cancelled", "worker got CancelledError"]


async def test_many_round_trips() -> None:
    def worker() -> int:
        return sum(from_thread.run_sync(int, str(i)) for i in range(500))

    assert await to_thread.run_sync(worker) == sum(range(500))


async def test_token_from_its_own_loop_thread() -> None:
    # Waiting would deadlock the loop; Trio itself raises this, and so do we
    # on asyncio (where upstream anyio would hang).
    with pytest.raises(RuntimeError, match="blocking function"):
        from_thread.run_sync(int, token=current_token())


def _exit_three() -> None:
    raise SystemExit(3)


@pytest.mark.parametrize("backend_id", BACKEND_IDS)
@pytest.mark.parametrize("caller", ["worker", "token"])
def test_system_exit_from_a_sync_call_into_the_loop(
    backend_id: str, caller: str
) -> None:
    """A function run by from_thread.run_sync that raises SystemExit: the
    calling thread gets it, and on asyncio it also ends the loop, as in any
    loop callback (the main task is cancelled and run() raises it). On Trio
    only the caller gets it, as with Trio's own from_thread."""
    name, options = backend(backend_id)
    thread_got: list[BaseException] = []
    thread_done = threading.Event()
    main_got: list[BaseException] = []

    def call_loop(token: object) -> None:
        try:
            if caller == "token":
                from_thread.run_sync(_exit_three, token=token)  # type: ignore[arg-type]
            else:
                from_thread.run_sync(_exit_three)
        except BaseException as exc:
            thread_got.append(exc)
            if caller == "worker":
                raise
        finally:
            thread_done.set()

    on_asyncio = name == "asyncio"

    async def main() -> None:
        token = current_token()
        try:
            if caller == "worker":
                await to_thread.run_sync(call_loop, token)
            else:
                threading.Thread(target=call_loop, args=(token,)).start()
                if on_asyncio:
                    await anyio.sleep_forever()  # until the loop ends
                else:
                    await to_thread.run_sync(thread_done.wait)
        except BaseException as exc:
            main_got.append(exc)
            raise

    if on_asyncio or caller == "worker":
        with pytest.raises(SystemExit):
            anyio.run(main, backend=name, backend_options=options)
    else:
        anyio.run(main, backend=name, backend_options=options)
    assert thread_done.wait(10)
    assert [type(exc) for exc in thread_got] == [SystemExit]
    if on_asyncio:
        assert [type(exc) for exc in main_got] == [asyncio.CancelledError]
    elif caller == "worker":
        assert [type(exc) for exc in main_got] == [SystemExit]
