"""Callgrind worker: runs workloads for one (implementation, backend) pair
under ``valgrind --tool=callgrind --zero-before=starmap_next
--dump-after=starmap_next`` (see bench/callgrind.py).

Each measured run is entered through ``next(itertools.starmap(...))``, whose C
function ``starmap_next`` nothing else calls here, so callgrind zeroes its
counters when the run starts and writes one dump when it ends: a dump holds
exactly one run, event loop start and teardown included. Per workload: one
unmeasured warm-up run of ``n`` operations, then measured runs of ``n`` and
``2n``; the difference of the two dumps is the cost of ``n`` operations with
everything else cancelled out. The job is JSON on stdin; the dump order is
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


def run_once(impl: str, backend: str, body: Any, n: int, anyio: Any) -> None:
    driver = make_driver(body, n, 1, 0, "time")
    gc.collect()
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
            next(itertools.starmap(run_once, [(impl, backend, body, count, anyio)]))
            dumps.append({"workload": workload.name, "n": count})
    print(json.dumps({"dumps": dumps, "skipped": skipped}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
