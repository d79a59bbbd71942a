"""ContextManagerMixin and AsyncContextManagerMixin."""

from __future__ import annotations

import sys
from collections.abc import AsyncGenerator, AsyncIterator, Generator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any

import pytest

from anyio import AsyncContextManagerMixin, ContextManagerMixin

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self


class Recorder(ContextManagerMixin):
    def __init__(self, swallow: bool = False) -> None:
        self.events: list[str] = []
        self.swallow = swallow

    @contextmanager
    def __contextmanager__(self) -> Generator[Self]:
        self.events.append("enter")
        try:
            yield self
        except ValueError as exc:
            self.events.append(f"caught {exc}")
            if not self.swallow:
                raise
        self.events.append("exit")


class AsyncRecorder(AsyncContextManagerMixin):
    def __init__(self, swallow: bool = False) -> None:
        self.events: list[str] = []
        self.swallow = swallow

    @asynccontextmanager
    async def __asynccontextmanager__(self) -> AsyncGenerator[Self]:
        self.events.append("enter")
        try:
            yield self
        except ValueError as exc:
            self.events.append(f"caught {exc}")
            if not self.swallow:
                raise
        self.events.append("exit")


class TestContextManagerMixin:
    def test_enter_exit(self) -> None:
        recorder = Recorder()
        with recorder as value:
            assert value is recorder
            assert recorder.events == ["enter"]

        assert recorder.events == ["enter", "exit"]

    def test_yielded_value(self) -> None:
        class Yields42(ContextManagerMixin):
            @contextmanager
            def __contextmanager__(self) -> Iterator[int]:
                yield 42

        with Yields42() as value:
            assert value == 42

    def test_exception_propagates(self) -> None:
        recorder = Recorder()
        with pytest.raises(ValueError, match="^boom$"), recorder:
            raise ValueError("boom")

        assert recorder.events == ["enter", "caught boom"]

    def test_exception_swallowed(self) -> None:
        recorder = Recorder(swallow=True)
        with recorder:
            raise ValueError("boom")

        assert recorder.events == ["enter", "caught boom", "exit"]

    def test_exit_return_value(self) -> None:
        recorder = Recorder(swallow=True)
        recorder.__enter__()
        assert recorder.__exit__(ValueError, ValueError("x"), None) is True
        recorder.__enter__()
        assert recorder.__exit__(None, None, None) is False

    def test_reenter_after_exit(self) -> None:
        recorder = Recorder()
        with recorder:
            pass
        with recorder:
            pass

        assert recorder.events == ["enter", "exit", "enter", "exit"]

    def test_enter_twice(self) -> None:
        recorder = Recorder()
        with recorder:
            with pytest.raises(
                RuntimeError, match="^this Recorder has already been entered$"
            ):
                recorder.__enter__()

        assert recorder.events == ["enter", "exit"]

    def test_exit_before_enter(self) -> None:
        with pytest.raises(
            RuntimeError, match="^this Recorder has not been entered yet$"
        ):
            Recorder().__exit__(None, None, None)

    def test_local_class_name_in_message(self) -> None:
        class Local(Recorder):
            pass

        with pytest.raises(RuntimeError, match=r"\.<locals>\.Local has not been"):
            Local().__exit__(None, None, None)

    def test_failed_setup_leaves_unentered(self) -> None:
        class FailsOnce(ContextManagerMixin):
            fail = True

            @contextmanager
            def __contextmanager__(self) -> Iterator[None]:
                if self.fail:
                    self.fail = False
                    raise OSError("setup failed")
                yield

        cm = FailsOnce()
        with pytest.raises(OSError, match="setup failed"), cm:
            pass

        with cm:
            pass

    def test_not_overridden(self) -> None:
        class Plain(ContextManagerMixin):
            pass

        with pytest.raises(
            TypeError,
            match="^__contextmanager__\\(\\) did not return a context manager "
            "object, but <class 'NoneType'>$",
        ):
            with Plain():
                pass

    def test_bad_return_type(self) -> None:
        class ReturnsInt(ContextManagerMixin):
            def __contextmanager__(self) -> Any:
                return 1

        with pytest.raises(TypeError, match="but <class 'int'>$"):
            with ReturnsInt():
                pass

    def test_undecorated_generator(self) -> None:
        class Undecorated(ContextManagerMixin):
            def __contextmanager__(self) -> Any:
                yield self

        with pytest.raises(
            TypeError,
            match="returned a generator object instead of a context manager. "
            "Did you forget to add the @contextmanager decorator\\?$",
        ):
            with Undecorated():
                pass

    def test_returns_self(self) -> None:
        class ReturnsSelf(ContextManagerMixin):
            def __contextmanager__(self) -> Any:
                return self

        with pytest.raises(
            TypeError,
            match=r"ReturnsSelf\.__contextmanager__\(\) returned self\. Did you "
            r"forget to add the @contextmanager decorator and a 'yield' statement",
        ):
            with ReturnsSelf():
                pass

    def test_subclass_wraps_superclass(self) -> None:
        class Child(Recorder):
            @contextmanager
            def __contextmanager__(self) -> Generator[Self]:
                self.events.append("child enter")
                with super().__contextmanager__():
                    yield self
                self.events.append("child exit")

        with Child() as child:
            assert child.events == ["child enter", "enter"]

        assert child.events == ["child enter", "enter", "exit", "child exit"]


@pytest.mark.anyio
class TestAsyncContextManagerMixin:
    async def test_enter_exit(self) -> None:
        recorder = AsyncRecorder()
        async with recorder as value:
            assert value is recorder
            assert recorder.events == ["enter"]

        assert recorder.events == ["enter", "exit"]

    async def test_exception_propagates(self) -> None:
        recorder = AsyncRecorder()
        with pytest.raises(ValueError, match="^boom$"):
            async with recorder:
                raise ValueError("boom")

        assert recorder.events == ["enter", "caught boom"]

    async def test_exception_swallowed(self) -> None:
        recorder = AsyncRecorder(swallow=True)
        async with recorder:
            raise ValueError("boom")

        assert recorder.events == ["enter", "caught boom", "exit"]

    async def test_reenter_after_exit(self) -> None:
        recorder = AsyncRecorder()
        async with recorder:
            pass
        async with recorder:
            pass

        assert recorder.events == ["enter", "exit", "enter", "exit"]

    async def test_enter_twice(self) -> None:
        recorder = AsyncRecorder()
        async with recorder:
            with pytest.raises(
                RuntimeError, match="^this AsyncRecorder has already been entered$"
            ):
                await recorder.__aenter__()

    async def test_exit_before_enter(self) -> None:
        with pytest.raises(
            RuntimeError, match="^this AsyncRecorder has not been entered yet$"
        ):
            await AsyncRecorder().__aexit__(None, None, None)

    async def test_not_overridden(self) -> None:
        class Plain(AsyncContextManagerMixin):
            pass

        with pytest.raises(
            TypeError,
            match="^__asynccontextmanager__\\(\\) did not return an async context "
            "manager, but <class 'NoneType'>$",
        ):
            async with Plain():
                pass

    async def test_sync_context_manager_rejected(self) -> None:
        class ReturnsSync(AsyncContextManagerMixin):
            def __asynccontextmanager__(self) -> Any:
                return Recorder()

        with pytest.raises(TypeError, match="but <class '.*Recorder'>$"):
            async with ReturnsSync():
                pass

    async def test_coroutine(self) -> None:
        class ReturnsCoroutine(AsyncContextManagerMixin):
            async def __asynccontextmanager__(self) -> Any:  # type: ignore[override]
                return self

        # The rejected coroutine is closed: no "never awaited" warning, which
        # the test configuration would turn into an error.
        with pytest.raises(
            TypeError,
            match="returned a coroutine object instead of an async context "
            "manager. Did you forget to add the @asynccontextmanager decorator "
            "and a 'yield' statement\\?$",
        ):
            async with ReturnsCoroutine():  # type: ignore[misc]
                pass

    async def test_undecorated_async_generator(self) -> None:
        class Undecorated(AsyncContextManagerMixin):
            async def __asynccontextmanager__(self) -> Any:  # type: ignore[override]
                yield self

        with pytest.raises(
            TypeError,
            match="returned an async generator instead of an async context "
            "manager. Did you forget to add the @asynccontextmanager decorator\\?$",
        ):
            async with Undecorated():  # type: ignore[misc]
                pass

    async def test_returns_self(self) -> None:
        class ReturnsSelf(AsyncContextManagerMixin):
            def __asynccontextmanager__(self) -> Any:
                return self

        with pytest.raises(
            TypeError,
            match=r"ReturnsSelf\.__asynccontextmanager__\(\) returned self\. Did "
            r"you forget to add the @asynccontextmanager decorator",
        ):
            async with ReturnsSelf():
                pass

    async def test_subclass_wraps_superclass(self) -> None:
        class Child(AsyncRecorder):
            @asynccontextmanager
            async def __asynccontextmanager__(self) -> AsyncIterator[Self]:
                self.events.append("child enter")
                async with super().__asynccontextmanager__():
                    yield self
                self.events.append("child exit")

        async with Child() as child:
            assert child.events == ["child enter", "enter"]

        assert child.events == ["child enter", "enter", "exit", "child exit"]
