"""Stress: many worker-thread jobs with random cancellation and exceptions.

Invariants checked:
- every job the pool received ran exactly once;
- a caller that waited (no abandon_on_cancel) got its job's own outcome, and a
  caller of such a job only saw cancellation if its job never ran;
- no limiter token is left borrowed;
- idle workers exit after the (lowered) idle timeout: no thread started during
  the run is left once it is over.
"""

from __future__ import annotations

import random
import threading
import time
from typing import Any

import pytest
from tests._backends import backend_params

import anyio
from anyio import (
    CancelScope,
    _cpp,
    create_task_group,
    get_cancelled_exc_class,
    to_thread,
)
from anyio._threads import trio_current_pool


def _threads() -> set[threading.Thread]:
    return set(threading.enumerate())


def _stress(backend: str, options: dict[str, Any], jobs: int, seed: int) -> None:
    rng = random.Random(seed)
    executed: list[int] = []  # list.append is atomic: workers record here
    outcomes: dict[int, tuple[str, Any, bool]] = {}
    concurrency = 64

    def job(i: int, kind: int) -> int:
        executed.append(i)
        if kind == 1:
            time.sleep(0)  # let the GIL go mid-job
        if kind == 2:
            raise ValueError(i)
        return i * 2

    async def one(i: int) -> None:
        kind = rng.randrange(3)
        abandon = rng.random() < 0.5
        cancel_mode = rng.randrange(4)  # 0: none, 1: before, 2/3: soon after
        with CancelScope() as scope:
            if cancel_mode == 1:
                scope.cancel()
            elif cancel_mode >= 2:
                scope.deadline = anyio.current_time() + rng.choice((0.0, 1e-5, 1e-4))
            try:
                value = await to_thread.run_sync(
                    job, i, kind, abandon_on_cancel=abandon
                )
            except ValueError as exc:
                outcomes[i] = ("exc", exc.args[0], abandon)
            except get_cancelled_exc_class():
                outcomes[i] = ("cancelled", None, abandon)
                raise
            else:
                outcomes[i] = ("ok", value, abandon)

    async def runner(start: int) -> None:
        for i in range(start, jobs, concurrency):
            await one(i)

    async def main() -> None:
        async with create_task_group() as tg:
            for start in range(concurrency):
                tg.start_soon(runner, start)

        pool: Any = (
            _cpp.current_worker_pool() if backend == "asyncio" else trio_current_pool()
        )
        # Abandoned jobs may still be running; wait until every worker has
        # gone idle and then exited on the lowered idle timeout.
        deadline = time.monotonic() + 30
        while pool.threads and time.monotonic() < deadline:
            await anyio.sleep(0.02)
        assert pool.threads == 0
        assert to_thread.current_default_thread_limiter().borrowed_tokens == 0

    old = _cpp.set_default_idle_timeout(0.1)
    try:
        anyio.run(main, backend=backend, backend_options=options)
    finally:
        _cpp.set_default_idle_timeout(old)

    assert len(outcomes) == jobs
    ran = set(executed)
    assert len(ran) == len(executed), "a job ran twice"
    for i, (what, value, abandon) in outcomes.items():
        if what == "ok":
            assert value == i * 2 and i in ran
        elif what == "exc":
            assert value == i and i in ran
        elif not abandon:
            # A waited-for job is never lost: cancellation means it never ran.
            assert i not in ran


@pytest.mark.parametrize("backend", backend_params())
def test_stress_100k(backend: tuple[str, dict[str, Any]]) -> None:
    # Threads of earlier tests may still be exiting: only threads started
    # during this one must be gone at the end.
    before = _threads()
    _stress(*backend, 100_000, seed=2)
    deadline = time.monotonic() + 5
    while _threads() - before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _threads() - before
