"""Helpers shared by workload bodies; no anyio, trio or asyncio import here."""

from __future__ import annotations

import gc
import os
import time

now = time.perf_counter

# Worker-thread callables: the cost under test is the hop, not the work.


def noop_sync() -> None:
    return None


async def noop() -> None:
    return None


def small_work(i: int) -> int:
    # Stands in for a short blocking call (a stat, a hash of a small buffer).
    return sum(range(i % 16 + 16))


_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    """Resident set size of this process.

    RSS rather than tracemalloc: allocations made by a C++ extension are
    invisible to tracemalloc but not to the kernel.
    """
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE
    except OSError:
        import psutil  # only off Linux

        return int(psutil.Process().memory_info().rss)


def settle() -> None:
    """Collect garbage so one repetition's leftovers do not bill the next."""
    gc.collect()
