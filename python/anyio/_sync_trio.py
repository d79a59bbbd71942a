"""Trio side of the C++ synchronization primitives.

On Trio the C++ awaitable forwards to one of these coroutines. Queues, counters
and owners stay in the C++ object (so one object serves both backends); Trio
only parks and wakes the task: ``wait_task_rescheduled`` with an abort function
that takes the waiter out of the queue, and ``reschedule`` from the C++ waker.
"""

from __future__ import annotations

from typing import Any

from trio.lowlevel import (
    Abort,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    current_task,
    wait_task_rescheduled,
)


async def _park(op: Any) -> None:
    op._park(current_task())

    def abort(_: Any) -> Abort:
        # Trio calls this only while nobody has woken the task yet, so there is
        # never a grant to hand on here.
        op._abort()
        return Abort.SUCCEEDED

    await wait_task_rescheduled(abort)


async def acquire(op: Any, fast_acquire: bool) -> None:
    await checkpoint_if_cancelled()
    if op._start_acquire(current_task()):
        if not fast_acquire:
            try:
                await cancel_shielded_checkpoint()
            except BaseException:
                op._undo()
                raise
        return

    await _park(op)


async def event_wait(op: Any, is_set: bool) -> None:
    if is_set:
        await checkpoint()
    else:
        await _park(op)
