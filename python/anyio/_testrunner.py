"""Event loop runners that stay open between calls, for the pytest plugin.

A test and the async fixtures it uses must share one event loop and one task:
an async generator fixture may open a task group or a cancel scope that the
test then runs inside. Each runner therefore keeps a single long-lived root
task that awaits the submitted coroutines one after another, while the
synchronous caller (pytest) drives the loop until the submitted job is done.
"""

from __future__ import annotations

import asyncio
import queue
import sys
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Coroutine
from contextlib import AbstractContextManager
from typing import Any, TypeVar

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

T = TypeVar("T")

# How long an interrupted Trio run may take to wind down before we give up on it.
_ABANDON_TIMEOUT = 5.0

_STUCK_RUN_MESSAGE = (
    "A Trio run abandoned by an earlier test (interrupted, e.g. by a timeout) "
    "is still alive in this thread: something in it ignored cancellation for "
    f"{_ABANDON_TIMEOUT:g} s, such as a worker thread that never returned. "
    "Trio allows one run per thread, so no later Trio test can run here"
)

_REENTRY_MESSAGE = (
    "Cannot schedule a coroutine in the test runner while another is already "
    "running; an async test or fixture probably requested an async fixture "
    "dynamically (request.getfixturevalue()), which the runner cannot nest"
)


class _Job:
    """One coroutine to run on the root task, and what became of it."""

    __slots__ = ("coro", "done", "value", "error", "on_done")

    def __init__(self, coro: Coroutine[Any, Any, Any]) -> None:
        self.coro = coro
        self.done = False
        self.value: Any = None
        self.error: BaseException | None = None
        self.on_done: Callable[[], object] | None = None

    async def execute(self) -> None:
        try:
            self.value = await self.coro
        except BaseException as exc:
            self.error = exc
        finally:
            self.done = True
            if self.on_done is not None:
                self.on_done()

    def result(self) -> Any:
        if self.error is not None:
            # Drop our reference so the traceback does not keep frames alive.
            error, self.error = self.error, None
            try:
                raise error
            finally:
                del error

        return self.value


class TestRunner(AbstractContextManager["TestRunner"]):
    """Base of the backend runners: run coroutines and fixtures on one loop."""

    __test__ = False  # not a pytest test class, whatever its name says
    _busy = False
    _closed = False

    @property
    def closed(self) -> bool:
        """True once closed, or abandoned after an interrupt broke out of a job."""
        return self._closed

    def run_test(
        self, func: Callable[..., Awaitable[Any]], kwargs: dict[str, Any]
    ) -> None:
        self._call(func, kwargs)

    def run_fixture(
        self, func: Callable[..., Awaitable[T]], kwargs: dict[str, Any]
    ) -> T:
        return self._call(func, kwargs)  # type: ignore[no-any-return]

    def run_asyncgen_fixture(
        self, func: Callable[..., AsyncGenerator[T, Any]], kwargs: dict[str, Any]
    ) -> tuple[T, Callable[[], None]]:
        """Run the fixture up to its ``yield``; return the value and a teardown."""
        agen = func(**kwargs)
        value: T = self._call(agen.__anext__, {})

        def teardown() -> None:
            if self._closed:
                # The runner was torn down under the fixture (an interrupt broke
                # out of a test); the loop already finalised the generator.
                return

            async def finish() -> None:
                try:
                    await agen.__anext__()
                except StopAsyncIteration:
                    return

                await agen.aclose()
                raise RuntimeError("Async generator fixture did not stop")

            self._call(finish, {})

        return value, teardown

    def _call(self, func: Callable[..., Awaitable[Any]], kwargs: dict[str, Any]) -> Any:
        if self._busy:
            raise RuntimeError(_REENTRY_MESSAGE)
        if self._closed:
            raise RuntimeError("This test runner has already been closed")

        async def invoke() -> Any:
            return await func(**kwargs)

        job = _Job(invoke())
        self._busy = True
        try:
            self._submit_and_wait(job)
        finally:
            self._busy = False

        return job.result()

    def _submit_and_wait(self, job: _Job) -> None:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# -- asyncio -------------------------------------------------------------------


def _create_root_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, T], name: str
) -> asyncio.Task[T]:
    # The C++ cancel scopes deliver to tasks whose coroutine the core wrapped.
    from ._run import create_root_task

    return create_root_task(loop, coro, name)


class _Loop310:
    """The part of asyncio.Runner (3.11+) that the test runner needs."""

    def __init__(
        self,
        debug: bool | None,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None,
    ) -> None:
        self._loop = loop_factory() if loop_factory else asyncio.new_event_loop()
        if debug is not None:
            self._loop.set_debug(debug)
        asyncio.set_event_loop(self._loop)

    def get_loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    def close(self) -> None:
        loop = self._loop
        try:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(
                    asyncio.gather(*pending, return_exceptions=True)
                )
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            asyncio.set_event_loop(None)
            loop.close()


class AsyncioTestRunner(TestRunner):
    """Keeps one asyncio event loop (stock, uvloop or from a factory) open."""

    def __init__(
        self,
        debug: bool | None = None,
        use_uvloop: bool = False,
        loop_factory: Callable[[], asyncio.AbstractEventLoop] | None = None,
    ) -> None:
        if use_uvloop and loop_factory is None:
            import uvloop

            loop_factory = uvloop.new_event_loop

        self._runner: Any
        if sys.version_info >= (3, 11):
            self._runner = asyncio.Runner(debug=debug, loop_factory=loop_factory)
        else:
            self._runner = _Loop310(debug, loop_factory)

        self._loop: asyncio.AbstractEventLoop = self._runner.get_loop()
        self._loop.set_exception_handler(self._exception_handler)
        self._callback_errors: list[BaseException] = []
        self._jobs: asyncio.Queue[_Job | None] | None = None
        self._root: asyncio.Task[None] | None = None
        self._closed = False

    def _exception_handler(
        self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]
    ) -> None:
        # An exception raised in a loop callback during a test is that test's
        # failure; anything else keeps asyncio's default treatment (logging).
        exc = context.get("exception")
        if isinstance(exc, Exception):
            self._callback_errors.append(exc)
        else:
            loop.default_exception_handler(context)

    def _take_callback_errors(self, job: _Job) -> None:
        errors, self._callback_errors = self._callback_errors, []
        if errors and job.error is None:
            if len(errors) == 1:
                job.error = errors[0]
            else:
                job.error = BaseExceptionGroup(
                    "Exceptions raised in event loop callbacks", errors
                )

    async def _serve(self, jobs: asyncio.Queue[_Job | None]) -> None:
        while not self._closed:
            try:
                job = await jobs.get()
            except asyncio.CancelledError:
                if self._closed:
                    raise

                # A cancel scope left open by a fixture was cancelled while we
                # were idle. Anyio cancellation is level-triggered, so the scope
                # cancels the next job again at its first checkpoint.
                continue

            if job is None:
                return

            await job.execute()

    def _ensure_root(self) -> asyncio.Queue[_Job | None]:
        if self._jobs is None:
            jobs: asyncio.Queue[_Job | None] = asyncio.Queue()
            self._jobs = jobs
            self._root = _create_root_task(
                self._loop, self._serve(jobs), "AnyIO test runner"
            )

        return self._jobs

    def _submit_and_wait(self, job: _Job) -> None:
        if self._closed:
            raise RuntimeError("This test runner has already been closed")

        jobs = self._ensure_root()
        root = self._root
        assert root is not None
        finished = self._loop.create_future()

        def wake(_: object = None) -> None:
            if not finished.done():
                finished.set_result(None)

        # The job's own completion, or the root task dying under it, ends the wait.
        job.on_done = wake
        root.add_done_callback(wake)
        jobs.put_nowait(job)
        try:
            self._loop.run_until_complete(finished)
        except BaseException:
            # Something (a KeyboardInterrupt from a signal handler, typically)
            # broke out of the loop while the job was still suspended. Never
            # resume it: tear the whole runner down instead.
            if not job.done:
                self._abandon()
            raise
        finally:
            root.remove_done_callback(wake)

        if not job.done:
            exc = root.exception() if root.done() and not root.cancelled() else None
            self._abandon()
            raise RuntimeError(
                "The test runner's root task ended unexpectedly"
            ) from exc

        self._take_callback_errors(job)

    def _abandon(self) -> None:
        if self._closed:
            return

        self._closed = True
        root = self._root
        if root is not None and not root.done():
            # The job may absorb the cancellation (a cancel scope of its own
            # can claim it); the closed flag then ends the serve loop.
            root.cancel()
            if self._jobs is not None:
                self._jobs.put_nowait(None)
        try:
            self._runner.close()
        except BaseException:
            pass

    def close(self) -> None:
        if self._closed:
            return

        try:
            if (
                self._jobs is not None
                and self._root is not None
                and not self._root.done()
            ):
                self._jobs.put_nowait(None)
                self._loop.run_until_complete(self._root)
        finally:
            self._closed = True
            self._runner.close()


# -- trio ----------------------------------------------------------------------


class TrioTestRunner(TestRunner):
    """Keeps one Trio run alive in guest mode, driven from this thread.

    Trio hands its guest-mode callbacks to us through a queue; whenever a job
    is submitted, this thread runs those callbacks until the job finishes.
    """

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._callbacks: queue.SimpleQueue[Callable[[], object]] = queue.SimpleQueue()
        self._token: Any = None
        self._send: Any = None
        self._scope: Any = None
        self._run_outcome: Any = None
        self._started = False
        self._closed = False

    def _drive_until(
        self, predicate: Callable[[], bool], timeout: float | None = None
    ) -> None:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not predicate():
            if deadline is None:
                callback = self._callbacks.get()
            else:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return
                try:
                    callback = self._callbacks.get(timeout=remaining)
                except queue.Empty:
                    return
            callback()

    def _set_outcome(self, run_outcome: Any) -> None:
        self._run_outcome = run_outcome

    async def _serve(self) -> None:
        import trio

        send, receive = trio.open_memory_channel[_Job | None](float("inf"))
        with trio.CancelScope() as self._scope:
            self._token = trio.lowlevel.current_trio_token()
            self._send = send
            async with receive:
                async for job in receive:
                    if job is None:
                        return

                    await job.execute()

    def _start(self) -> None:
        import trio

        # Trio allows one run per thread, and an abandoned one still holds it.
        if _stuck_trio_runs:
            raise RuntimeError(_STUCK_RUN_MESSAGE)

        self._started = True
        trio.lowlevel.start_guest_run(
            self._serve,
            run_sync_soon_threadsafe=self._callbacks.put,
            run_sync_soon_not_threadsafe=self._callbacks.put,
            done_callback=self._set_outcome,
            **self._options,
        )
        self._drive_until(
            lambda: self._send is not None or self._run_outcome is not None
        )
        if self._send is None:
            self._run_outcome.unwrap()
            raise RuntimeError("The Trio test runner stopped before it started")

    def _submit_and_wait(self, job: _Job) -> None:
        if self._closed or self._run_outcome is not None:
            raise RuntimeError("This test runner has already been closed")

        if not self._started:
            self._start()

        self._token.run_sync_soon(self._send.send_nowait, job)
        try:
            self._drive_until(lambda: job.done or self._run_outcome is not None)
        except BaseException:
            if not job.done:
                self._abandon()
            raise

        if not job.done:
            outcome: Any = self._run_outcome
            self._run_outcome = None
            self._closed = True
            outcome.unwrap()
            raise RuntimeError("The Trio test runner stopped while running a job")

    def _abandon(self) -> None:
        # Cancel everything in the run and let it wind down; never resume the job.
        self._closed = True
        if self._token is None or self._run_outcome is not None:
            return

        # Bounded: a task that ignores cancellation must not hang the session.
        try:
            self._token.run_sync_soon(self._scope.cancel)
            self._drive_until(
                lambda: self._run_outcome is not None, timeout=_ABANDON_TIMEOUT
            )
        except BaseException:
            pass
        if self._run_outcome is None:
            _stuck_trio_runs.append(self)

    def close(self) -> None:
        if self._closed:
            return

        self._closed = True
        if self._send is None or self._run_outcome is not None:
            return  # never started, or its start failed

        self._token.run_sync_soon(self._send.send_nowait, None)
        self._drive_until(lambda: self._run_outcome is not None)
        outcome: Any = self._run_outcome
        self._run_outcome = None
        outcome.unwrap()


# Abandoned Trio runs that did not wind down in time.
_stuck_trio_runs: list[TrioTestRunner] = []


def create_runner(backend: str, options: dict[str, Any]) -> TestRunner:
    if backend == "asyncio":
        return AsyncioTestRunner(**options)
    elif backend == "trio":
        try:
            import trio  # noqa: F401
        except ImportError as exc:
            raise LookupError(
                f"the {backend} backend needs the {backend} package: "
                f"pip install anyio[{backend}]"
            ) from exc

        return TrioTestRunner(**options)

    raise LookupError(f"No such backend: {backend}")
