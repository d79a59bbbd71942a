"""Receiving signals with open_signal_receiver()."""

from __future__ import annotations

import os
import signal
import sys

import pytest

from anyio import create_task_group, fail_after, open_signal_receiver

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
]


async def test_receive_in_order() -> None:
    with open_signal_receiver(signal.SIGUSR1, signal.SIGUSR2) as signals:
        os.kill(os.getpid(), signal.SIGUSR2)
        os.kill(os.getpid(), signal.SIGUSR1)
        with fail_after(2):
            first = await signals.__anext__()
            second = await signals.__anext__()

    assert isinstance(first, signal.Signals)
    assert {first, second} == {signal.SIGUSR1, signal.SIGUSR2}


async def test_handler_restored_on_exit() -> None:
    def original(signum: int, frame: object) -> None:
        pass

    previous = signal.signal(signal.SIGUSR1, original)
    try:
        with open_signal_receiver(signal.SIGUSR1):
            assert signal.getsignal(signal.SIGUSR1) is not original

        assert signal.getsignal(signal.SIGUSR1) is original
    finally:
        signal.signal(signal.SIGUSR1, previous)


async def test_cancel_while_waiting() -> None:
    async def consume() -> None:
        with open_signal_receiver(signal.SIGUSR1) as signals:
            async for _ in signals:
                raise AssertionError("no signal was sent")

        raise AssertionError("cancellation must propagate")  # pragma: no cover

    async with create_task_group() as tg:
        tg.start_soon(consume)
        tg.cancel_scope.cancel()


async def test_iterate_in_other_task() -> None:
    received: list[signal.Signals] = []

    async def consume() -> None:
        async for signum in signals:
            received.append(signum)
            tg.cancel_scope.cancel()

    with open_signal_receiver(signal.SIGUSR1) as signals:
        async with create_task_group() as tg:
            tg.start_soon(consume)
            os.kill(os.getpid(), signal.SIGUSR1)

    assert received == [signal.SIGUSR1]
