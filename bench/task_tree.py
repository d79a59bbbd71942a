"""How long anyio.lowlevel.get_task_tree() takes with many parked tasks.

Parks N tasks (half on an Event, half on a Lock held by the main task) in one
task group, then times snapshots on each backend. The target is under 50 ms
for 10,000 tasks. Run from the repository root:

    python bench/task_tree.py [--tasks N] [--repeat R]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from typing import Any

sys.path.insert(
    0,
    os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"),
)

import anyio
from anyio.lowlevel import format_task_tree, get_task_tree

BACKENDS: list[tuple[str, str, dict[str, Any]]] = [
    ("asyncio", "asyncio", {}),
    ("uvloop", "asyncio", {"use_uvloop": True}),
    ("trio", "trio", {}),
]


async def measure(tasks: int, repeat: int) -> tuple[float, float, int]:
    event, lock = anyio.Event(), anyio.Lock()
    async with lock, anyio.create_task_group() as tg:
        for i in range(tasks):
            tg.start_soon(event.wait if i % 2 else lock.acquire)
        await anyio.wait_all_tasks_blocked()
        best = float("inf")
        for _ in range(repeat):
            start = time.perf_counter()
            tree = get_task_tree()
            best = min(best, time.perf_counter() - start)
        start = time.perf_counter()
        format_task_tree(tree)
        text = time.perf_counter() - start
        count = sum(1 for _ in tree.tasks())
        tg.cancel_scope.cancel()
    return best, text, count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(f"get_task_tree() with {args.tasks} parked tasks (best of {args.repeat})")
    for label, backend, options in BACKENDS:
        try:
            snap, text, count = anyio.run(
                measure,
                args.tasks,
                args.repeat,
                backend=backend,
                backend_options=options,
            )
        except ImportError as exc:
            print(f"{label:8} skipped: {exc}")
            continue
        print(
            f"{label:8} snapshot {snap * 1000:7.1f} ms   text {text * 1000:7.1f} ms   ({count} tasks)"
        )


if __name__ == "__main__":
    main()
