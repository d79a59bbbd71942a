"""Receiving OS signals as an async iterator: :func:`open_signal_receiver`."""

from __future__ import annotations

import asyncio
import signal
from collections import deque
from collections.abc import AsyncIterator, Generator
from contextlib import AbstractContextManager, contextmanager
from typing import Any

from ._backend import current_backend
from .lowlevel import checkpoint


class _AsyncioSignalReceiver:
    """Collects signals through the loop's signal handlers (which run them as
    ordinary callbacks in the loop thread) and hands them out in order."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._pending: deque[signal.Signals] = deque()
        self._waiter: asyncio.Future[None] | None = None

    def _deliver(self, signum: signal.Signals) -> None:
        self._pending.append(signum)
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def __aiter__(self) -> _AsyncioSignalReceiver:
        return self

    async def __anext__(self) -> signal.Signals:
        await checkpoint()
        while not self._pending:
            self._waiter = self._loop.create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

        return self._pending.popleft()


@contextmanager
def _asyncio_receiver(
    signals: tuple[signal.Signals, ...],
) -> Generator[AsyncIterator[signal.Signals], None, None]:
    loop = asyncio.get_running_loop()
    receiver = _AsyncioSignalReceiver(loop)
    # The loop resets a signal to its default disposition when its handler
    # goes; put back what was there before instead, as Trio does
    previous: dict[signal.Signals, Any] = {}
    try:
        for sig in signals:
            handler = signal.getsignal(sig)
            loop.add_signal_handler(sig, receiver._deliver, signal.Signals(sig))
            previous[sig] = handler

        yield receiver
    finally:
        for sig, handler in previous.items():
            loop.remove_signal_handler(sig)
            if handler is not None:
                signal.signal(sig, handler)


class _TrioSignalIterator:
    """Trio's receiver yields plain ints; anyio promises Signals members."""

    def __init__(self, iterator: Any) -> None:
        self._iterator = iterator

    def __aiter__(self) -> _TrioSignalIterator:
        return self

    async def __anext__(self) -> signal.Signals:
        return signal.Signals(await self._iterator.__anext__())


@contextmanager
def _trio_receiver(
    signals: tuple[signal.Signals, ...],
) -> Generator[AsyncIterator[signal.Signals], None, None]:
    import trio

    with trio.open_signal_receiver(*signals) as iterator:
        yield _TrioSignalIterator(iterator)


def open_signal_receiver(
    *signals: signal.Signals,
) -> AbstractContextManager[AsyncIterator[signal.Signals]]:
    """Receive the given signals while the context manager is open.

    Entering installs handlers for ``signals`` (replacing the ones in place,
    which return on exit) and gives an async iterator that yields each
    signal as a :class:`signal.Signals` member, in arrival order.

    Signal handlers can only be installed from the main thread.
    """
    if current_backend() == "asyncio":
        return _asyncio_receiver(signals)

    return _trio_receiver(signals)
