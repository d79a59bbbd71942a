"""Sleeping and the event loop's clock."""

from __future__ import annotations

import asyncio
import math

from . import _cpp
from ._backend import current_backend
from ._cpp import running_loop as _get_running_loop
from ._glue import current_time as _trio_current_time


async def sleep(delay: float) -> None:
    """Pause the current task for `delay` seconds (a checkpoint if 0).

    :raises ValueError: if `delay` is negative or NaN
    """
    if not delay >= 0:  # also catches NaN
        raise ValueError(f"delay must be a non-negative number (got {delay!r})")

    if _get_running_loop() is None:
        current_backend()  # NoEventLoopError outside any event loop
        import trio

        await trio.sleep(delay)
        return

    if delay <= 0:
        await _cpp.checkpoint()
        return

    # Cancellation reaches the task where it suspends (see docs/design.md).
    await asyncio.sleep(delay)


async def sleep_forever() -> None:
    """Pause the current task until it is cancelled."""
    await sleep(math.inf)


async def sleep_until(deadline: float) -> None:
    """Pause the current task until the event loop's clock reaches `deadline`."""
    now = current_time()
    await sleep(max(deadline - now, 0))


def current_time() -> float:
    """The current time on the event loop's clock (monotonic, in seconds)."""
    loop = _get_running_loop()
    if loop is not None:
        return loop.time()

    return _trio_current_time()
