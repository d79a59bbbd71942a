"""Smoke test of an installed wheel: run from outside the checkout, asyncio only
(a bare install has no Trio). Exercises the C++ core end to end."""

from __future__ import annotations

import sys
import threading
from importlib.metadata import version

import anyio
import anyio._cpp


async def main() -> list[int]:
    send, receive = anyio.create_memory_object_stream[int]()
    got: list[int] = []

    async def produce() -> None:
        async with send:
            for item in range(3):
                # The item is computed in a worker thread of the C++ pool.
                await send.send(await anyio.to_thread.run_sync(int, str(item)))

    with anyio.fail_after(30):
        async with anyio.create_task_group() as tg:
            tg.start_soon(produce)
            async with receive:
                async for item in receive:
                    got.append(item)

    with anyio.CancelScope() as scope:
        scope.cancel()
        await anyio.sleep_forever()
    assert scope.cancelled_caught
    lock = anyio.Lock()
    async with lock:
        assert lock.locked()
    assert threading.active_count() >= 1
    return got


result = anyio.run(main)
assert result == [0, 1, 2], result
print(
    f"smoke test passed: anyio {version('anyio')} ({anyio._cpp.__file__})"
    f" on Python {sys.version.split()[0]}"
)
