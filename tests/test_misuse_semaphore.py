"""Semaphore counts beyond a machine word behave as Python ints, as upstream's."""

from __future__ import annotations

import pytest

import anyio
from anyio import Semaphore, WouldBlock

pytestmark = pytest.mark.anyio

WORD = 2**63 - 1


async def test_release_past_the_machine_word() -> None:
    sem = Semaphore(WORD)
    sem.release()
    assert sem.value == 2**63
    sem.release()
    assert sem.value == 2**63 + 1
    sem.acquire_nowait()
    sem.acquire_nowait()
    sem.acquire_nowait()
    assert sem.value == WORD - 1
    assert sem.max_value is None


@pytest.mark.parametrize("initial", [2**63, 10**30, 10**100])
async def test_huge_initial_value(initial: int) -> None:
    sem = Semaphore(initial)
    assert sem.value == initial
    sem.release()
    assert sem.value == initial + 1
    await sem.acquire()
    sem.acquire_nowait()
    assert sem.value == initial - 1
    async with sem:
        assert sem.value == initial - 2
    assert sem.value == initial - 1


async def test_huge_max_value() -> None:
    sem = Semaphore(5, max_value=2**64)
    assert sem.max_value == 2**64
    sem.release()
    assert sem.value == 6

    full = Semaphore(2**64, max_value=2**64)
    with pytest.raises(ValueError, match="semaphore released too many times"):
        full.release()
    assert full.value == 2**64
    full.acquire_nowait()
    full.release()
    assert full.value == 2**64

    at_word = Semaphore(WORD, max_value=WORD)
    with pytest.raises(ValueError, match="semaphore released too many times"):
        at_word.release()
    assert at_word.value == WORD


async def test_huge_bounds_are_checked() -> None:
    with pytest.raises(
        ValueError, match="max_value must be equal to or higher than initial_value"
    ):
        Semaphore(2**64 + 1, max_value=2**64)
    with pytest.raises(
        ValueError, match="max_value must be equal to or higher than initial_value"
    ):
        Semaphore(2**64, max_value=3)
    with pytest.raises(ValueError, match="initial_value must be >= 0"):
        Semaphore(-(2**64))
    with pytest.raises(TypeError, match="max_value must be an integer or None"):
        Semaphore(2**64, max_value=1.5)  # type: ignore[arg-type]


async def test_waiters_with_a_huge_cap() -> None:
    # A small count under a cap beyond the machine word takes the slow path;
    # waiting and hand-off work the same there.
    sem = Semaphore(0, max_value=2**70)
    order: list[int] = []

    async def waiter(i: int) -> None:
        async with sem:
            order.append(i)

    async with anyio.create_task_group() as tg:
        for i in range(3):  # one by one: Trio runs new tasks in any order
            tg.start_soon(waiter, i)
            await anyio.wait_all_tasks_blocked()
        assert sem.statistics().tasks_waiting == 3
        with pytest.raises(WouldBlock):
            sem.acquire_nowait()
        sem.release()
    assert order == [0, 1, 2]
    assert sem.value == 1
