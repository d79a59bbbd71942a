"""Callgrind worker: runs workloads for one (implementation, backend) pair
under ``valgrind --tool=callgrind --zero-before=starmap_next
--dump-after=starmap_next`` (see bench/callgrind.py).

Each measured run is entered through ``next(itertools.starmap(...))``, whose C
function ``starmap_next`` nothing else calls here, so callgrind zeroes its
counters when the run starts and writes one dump when it ends: a dump holds
exactly one run, event loop start and teardown included. Per workload: one
unmeasured warm-up run of ``n`` operations, then measured runs of ``n`` and
``2n``; the difference of the two dumps is the cost of ``n`` operations with
everything else cancelled out. The cyclic garbage collector is off during a
measured run (collected just before), so its passes do not land at random. The job is JSON on stdin; the dump order is
printed as one JSON line on stdout at the end.
"""

from __future__ import annotations

import gc
import itertools
import json
import sys
from typing import Any

from bench._worker import make_driver, run_anyio, run_raw
from bench.workloads import REGISTRY


def seed_trio() -> None:
    """Trio reverses each batch of runnable tasks at random (a private
    ``random.Random``); seed it, so a run's task order, and so its count,
    repeats."""
    try:
        from trio._core import _run
    except ImportError:
        return
    rng = getattr(_run, "_r", None)
    if rng is not None and hasattr(rng, "seed"):
        rng.seed(20260)


def run_once(impl: str, backend: str, body: Any, n: int, anyio: Any) -> None:
    driver = make_driver(body, n, 1, 0, "time")
    if backend == "trio":
        seed_trio()
    if impl == "raw":
        run_raw(backend, driver)
    else:
        run_anyio(anyio, backend, driver)


def main() -> int:
    job = json.load(sys.stdin)
    impl, backend = job["impl"], job["backend"]
    anyio: Any = None
    if impl == "anyio":
        import anyio
    dumps: list[dict[str, Any]] = []
    skipped: dict[str, str] = {}
    for task in job["tasks"]:
        workload = REGISTRY[task["workload"]]
        if impl == "raw":
            body, _ = workload.raw_for(backend)
            if body is None:
                skipped[workload.name] = "no raw equivalent"
                continue
        else:
            body = workload.anyio
        n = task["n"]
        try:
            run_once(impl, backend, body, n, anyio)  # warm-up, not measured
        except Exception as exc:
            skipped[workload.name] = f"{type(exc).__name__}: {exc}"[:300]
            continue
        for count in (n, 2 * n):
            # The cyclic collector runs when allocations cross a threshold, so
            # where its passes (and the rare full ones) land differs from run
            # to run: collect outside the measured part and keep it off inside.
            gc.collect()
            gc.disable()
            try:
                next(itertools.starmap(run_once, [(impl, backend, body, count, anyio)]))
            finally:
                gc.enable()
            dumps.append({"workload": workload.name, "n": count})
    print(json.dumps({"dumps": dumps, "skipped": skipped}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
