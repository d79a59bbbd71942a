"""Default task names: one rule for start_soon() and start() on every backend.

The name is the callable's ``__module__`` and ``__qualname__`` (those present
and non-empty) joined by a dot, so a ``functools.partial`` is named after its
class's module, ``"functools"``, whatever it wraps.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import pytest

import anyio
from anyio import TASK_STATUS_IGNORED, create_task_group
from anyio.abc import TaskStatus

pytestmark = pytest.mark.anyio


async def report(
    *args: object, task_status: TaskStatus[str] = TASK_STATUS_IGNORED
) -> None:
    task_status.started(anyio.get_current_task().name)


class Holder:
    async def method(
        self, *args: object, task_status: TaskStatus[str] = TASK_STATUS_IGNORED
    ) -> None:
        task_status.started(anyio.get_current_task().name)

    async def __call__(
        self, *args: object, task_status: TaskStatus[str] = TASK_STATUS_IGNORED
    ) -> None:
        task_status.started(anyio.get_current_task().name)


def _lambda() -> Callable[..., Any]:
    return lambda *args, task_status=TASK_STATUS_IGNORED: report(
        *args, task_status=task_status
    )


_HERE = __name__
CASES: list[tuple[str, Callable[[], Callable[..., Any]], str]] = [
    ("function", lambda: report, f"{_HERE}.report"),
    ("method", lambda: Holder().method, f"{_HERE}.Holder.method"),
    ("callable object", lambda: Holder(), _HERE),
    ("lambda", _lambda, f"{_HERE}._lambda.<locals>.<lambda>"),
    ("partial", lambda: functools.partial(report, 1), "functools"),
    ("partial of a method", lambda: functools.partial(Holder().method, 1), "functools"),
    (
        "partial of a partial",
        lambda: functools.partial(functools.partial(report), 1),
        "functools",
    ),
    (
        "partial of a callable object",
        lambda: functools.partial(Holder(), 1),
        "functools",
    ),
]


@pytest.mark.parametrize(
    ("make", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_start_soon_default_name(
    make: Callable[[], Callable[..., Any]], expected: str
) -> None:
    me = anyio.get_current_task().id
    async with create_task_group() as tg:
        handle = tg.start_soon(make())
        others = [t.name for t in anyio.get_running_tasks() if t.id != me]
        assert handle.name == expected
        assert expected in others


@pytest.mark.parametrize(
    ("make", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
async def test_start_default_name(
    make: Callable[[], Callable[..., Any]], expected: str
) -> None:
    async with create_task_group() as tg:
        assert await tg.start(make()) == expected
        handle = await tg.start(make(), return_handle=True)
        assert handle.name == expected


async def test_name_seen_by_the_task_on_start_soon() -> None:
    seen: list[str] = []

    async def look(*args: object) -> None:
        seen.append(anyio.get_current_task().name)

    async with create_task_group() as tg:
        tg.start_soon(functools.partial(look, 1))
        tg.start_soon(look)
    assert sorted(seen) == sorted(
        ["functools", f"{_HERE}.test_name_seen_by_the_task_on_start_soon.<locals>.look"]
    )


async def test_explicit_name_is_converted_to_str() -> None:
    async with create_task_group() as tg:
        assert tg.start_soon(report, name=5).name == "5"
        assert await tg.start(report, name=6) == "6"


async def test_name_without_module_or_qualname() -> None:
    calls: list[str] = []

    class Anonymous:
        def __getattribute__(self, name: str) -> Any:
            if name in ("__module__", "__qualname__"):
                raise AttributeError(name)
            return object.__getattribute__(self, name)

        async def __call__(self) -> None:
            calls.append(anyio.get_current_task().name)

    async with create_task_group() as tg:
        assert tg.start_soon(Anonymous()).name == ""
    assert calls == [""]


async def test_non_str_module_raises_before_calling() -> None:
    called: list[bool] = []

    async def func() -> None:
        called.append(True)

    func.__module__ = 5  # type: ignore[assignment]
    async with create_task_group() as tg:
        with pytest.raises(TypeError, match="expected str instance, int found"):
            tg.start_soon(func)
        with pytest.raises(TypeError, match="expected str instance, int found"):
            await tg.start(func)
        # A name given explicitly is used instead.
        assert tg.start_soon(func, name="ok").name == "ok"
    assert called == [True]


async def test_renamed_function_gets_fresh_name() -> None:
    async def func() -> None:
        pass

    async with create_task_group() as tg:
        first = tg.start_soon(func).name
        func.__qualname__ = "renamed"
        assert tg.start_soon(func).name == f"{_HERE}.renamed"
        func.__module__ = None  # type: ignore[assignment]
        assert tg.start_soon(func).name == "renamed"
    assert first.endswith("<locals>.func")


def test_run_names_main_task_after_partial_on_asyncio() -> None:
    async def main() -> str:
        return anyio.get_current_task().name

    assert anyio.run(functools.partial(main), backend="asyncio") == "functools"
