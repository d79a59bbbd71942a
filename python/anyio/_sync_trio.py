"""Trio side of the C++ synchronization primitives.

On Trio the C++ awaitable forwards to one of these coroutines. Queues, counters
and owners stay in the C++ object (so one object serves both backends); Trio
only parks and wakes the task: ``wait_task_rescheduled`` with the awaitable's
``_abort`` (which takes the waiter out of the queue), and ``reschedule`` from
the C++ waker.

anyio._sync registers stand-ins that import this module on the first use on
Trio; importing it puts its coroutines in their place.
"""

from __future__ import annotations

from typing import Any

from trio.lowlevel import (
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    current_task,
    wait_task_rescheduled,
)

from . import _cpp


async def acquire(op: Any, fast_acquire: bool) -> None:
    await checkpoint_if_cancelled()
    task = current_task()
    if op._start_acquire(task):
        if not fast_acquire:
            try:
                await cancel_shielded_checkpoint()
            except BaseException:
                op._undo()
                raise
        return

    op._park(task)
    await wait_task_rescheduled(op._abort)


async def event_wait(op: Any, is_set: bool) -> None:
    if is_set:
        await checkpoint()
    else:
        op._park(current_task())
        await wait_task_rescheduled(op._abort)


_cpp.register_hooks(sync_trio_acquire=acquire, sync_trio_event_wait=event_wait)
