"""Checkpoints, tokens and run variables."""

from __future__ import annotations

import pytest
from tests._backends import ASYNCIO_IDS, on_backends

import anyio
from anyio.lowlevel import (
    EventLoopToken,
    RunVar,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    current_token,
)

pytestmark = pytest.mark.anyio


ASYNCIO_ONLY = on_backends(*ASYNCIO_IDS)


# Trio randomises the order of runnable tasks, so this ordering is asyncio's.
@ASYNCIO_ONLY
async def test_checkpoint_lets_other_tasks_run() -> None:
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        order.append("before")
        await checkpoint()
        order.append("after")

    assert order == ["before", "other", "after"]


async def test_checkpoint_raises_when_cancelled() -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(anyio.get_cancelled_exc_class()):
            await checkpoint()

    # The exception was caught inside the block, so the scope did not catch it.
    assert scope.cancel_called
    assert not scope.cancelled_caught


async def test_checkpoint_if_cancelled_does_not_yield() -> None:
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    async with anyio.create_task_group() as tg:
        tg.start_soon(other)
        await checkpoint_if_cancelled()
        order.append("host")

    assert order == ["host", "other"]


async def test_checkpoint_if_cancelled_raises() -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(anyio.get_cancelled_exc_class()):
            await checkpoint_if_cancelled()


async def test_cancel_shielded_checkpoint_ignores_cancellation() -> None:
    with anyio.CancelScope() as scope:
        scope.cancel()
        await cancel_shielded_checkpoint()
        with pytest.raises(anyio.get_cancelled_exc_class()):
            await checkpoint()


async def test_current_token(anyio_backend_name: str) -> None:
    token = current_token()
    assert isinstance(token, EventLoopToken)
    assert token == current_token()
    assert token.backend_class.name == anyio_backend_name


async def test_runvar_set_get_reset() -> None:
    var: RunVar[int] = RunVar("var")
    with pytest.raises(LookupError, match='Run variable "var" has no value'):
        var.get()

    assert var.get(5) == 5
    token = var.set(1)
    assert var.get() == 1
    var.reset(token)
    with pytest.raises(ValueError, match="already been used"):
        var.reset(token)
    with pytest.raises(LookupError):
        var.get()


async def test_runvar_default_and_context_manager() -> None:
    var = RunVar("var", default="dflt")
    assert var.get() == "dflt"
    with var.set("x"):
        assert var.get() == "x"
    assert var.get() == "dflt"


def test_runvar_is_per_loop() -> None:
    var: RunVar[int] = RunVar("counter", default=0)

    async def bump() -> int:
        var.set(var.get() + 1)
        return var.get()

    assert anyio.run(bump) == 1
    assert anyio.run(bump) == 1
