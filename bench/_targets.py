"""The project's speed targets, checked against one run's figures.

They are the speed targets of the project's issues that built each part (#3
cancel scopes and task groups, #4 synchronization, #5 memory streams, #6
worker threads; `issues show N`): ratios against upstream anyio measured in
the same run on the same loop. Scope and task-group targets apply on asyncio
(stock loop and uvloop) only: on Trio those are Trio's own objects.
This only reports; nothing here fails a run or a test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tests._backends import ASYNCIO_IDS, ASYNCIO_UVLOOP, TRIO

ASYNCIO = ASYNCIO_IDS


@dataclass(frozen=True)
class Target:
    workload: str
    backends: tuple[str, ...]
    text: str
    # One of: "upstream_over_ours" (ratio at least `value`), "raw_over_ours"
    # (ratio at least `value`), "ours_at_most" (ours' median at most `value`).
    measure: str
    value: float


TARGETS = (
    Target(
        "cancel_scope",
        ASYNCIO,
        "CancelScope enter/exit >= 10x upstream",
        "upstream_over_ours",
        10,
    ),
    Target(
        "fail_after",
        ASYNCIO,
        "fail_after + checkpoint >= 5x upstream",
        "upstream_over_ours",
        5,
    ),
    Target(
        "fail_after",
        ASYNCIO,
        "fail_after + checkpoint faster than asyncio.timeout",
        "raw_over_ours",
        1,
    ),
    Target(
        "limiter", ASYNCIO, "CapacityLimiter >= 4x upstream", "upstream_over_ours", 4
    ),
    Target("lock", ASYNCIO, "Lock >= 4x upstream", "upstream_over_ours", 4),
    Target("semaphore", ASYNCIO, "Semaphore >= 4x upstream", "upstream_over_ours", 4),
    Target(
        "spawn", ASYNCIO, "task group spawn >= 4x upstream", "upstream_over_ours", 4
    ),
    Target(
        "spawn",
        ASYNCIO,
        "task group spawn within 1.3x of asyncio.TaskGroup",
        "raw_over_ours",
        1 / 1.3,
    ),
    Target(
        "empty_group",
        ASYNCIO,
        "empty task group >= 5x upstream",
        "upstream_over_ours",
        5,
    ),
    Target(
        "stream",
        (ASYNCIO_UVLOOP,),
        "memory stream throughput >= 1.7x upstream",
        "upstream_over_ours",
        1.7,
    ),
    Target(
        "nowait_pair",
        ASYNCIO + (TRIO,),
        "send_nowait + receive_nowait >= 2x upstream",
        "upstream_over_ours",
        2,
    ),
    Target(
        "to_thread",
        ASYNCIO,
        "to_thread.run_sync >= 3x upstream",
        "upstream_over_ours",
        3,
    ),
    Target(
        "to_thread",
        ASYNCIO,
        "to_thread.run_sync faster than asyncio.to_thread",
        "raw_over_ours",
        1,
    ),
    Target(
        "to_thread_40",
        ASYNCIO,
        "40 concurrent to_thread callers >= 2x upstream",
        "upstream_over_ours",
        2,
    ),
    Target(
        "from_thread",
        ASYNCIO,
        "from_thread.run_sync round trip >= 2x upstream",
        "upstream_over_ours",
        2,
    ),
    # The worker-thread issue asks less of Trio, where the loop's own
    # run_sync_soon and token are most of a round trip.
    Target(
        "to_thread",
        (TRIO,),
        "to_thread.run_sync on Trio >= 1.5x upstream",
        "upstream_over_ours",
        1.5,
    ),
    Target(
        "to_thread_40",
        (TRIO,),
        "40 concurrent callers on Trio >= 1.5x upstream",
        "upstream_over_ours",
        1.5,
    ),
    Target(
        "from_thread",
        (TRIO,),
        "from_thread.run_sync on Trio >= 1.5x upstream",
        "upstream_over_ours",
        1.5,
    ),
    # Asyncio only: a task parked by raw Trio alone already takes more than that.
    Target(
        "parked_memory",
        ASYNCIO,
        "a parked task <= 1.5 KB",
        "ours_at_most",
        1536,
    ),
)


def _cells(doc: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
    return {(r["workload"], r["backend"], r["impl"]): r for r in doc["results"]}


def check(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target on each backend where both sides were measured: met or missed."""
    cells = _cells(doc)
    ratios = {(r["workload"], r["backend"]): r for r in doc["ratios"]}
    out = []
    for t in TARGETS:
        for backend in t.backends:
            if backend not in doc["settings"]["backends"]:
                continue
            if t.measure == "ours_at_most":
                ours = cells.get((t.workload, backend, "ours"))
                got = ours["median"] if ours and ours["status"] == "ok" else None
                met = got is not None and got <= t.value
            else:
                got = ratios.get((t.workload, backend), {}).get(t.measure)
                met = got is not None and got >= t.value
            if got is None:
                continue
            out.append(
                {
                    "target": t.text,
                    "workload": t.workload,
                    "backend": backend,
                    "measure": t.measure,
                    "wanted": t.value,
                    "got": got,
                    "met": met,
                }
            )
    # Never slower than upstream, anywhere. The spread decides whether a
    # ratio below 1 is more than noise.
    for r in doc["ratios"]:
        got = r.get("upstream_over_ours")
        if got is None or got >= 1:
            continue
        ours = cells[(r["workload"], r["backend"], "ours")]
        upstream = cells[(r["workload"], r["backend"], "upstream")]
        overlap = ours["min"] <= upstream["max"] and upstream["min"] <= ours["max"]
        out.append(
            {
                "target": "never slower than upstream",
                "workload": r["workload"],
                "backend": r["backend"],
                "measure": "upstream_over_ours",
                "wanted": 1.0,
                "got": got,
                "met": False,
                "within_spread": overlap,
            }
        )
    return out


def format_checks(checks: list[dict[str, Any]]) -> list[str]:
    if not checks:
        return []
    lines = ["", "targets (report only):"]
    for c in checks:
        if c["measure"] == "ours_at_most":
            got = f"{c['got']:,.0f} B"
        else:
            got = f"{c['got']:.2f}x"
        verdict = "met   " if c["met"] else "MISSED"
        note = " (within the spread: may be noise)" if c.get("within_spread") else ""
        lines.append(
            f"  {verdict} {c['workload']:14} {c['backend']:8} {c['target']}: {got}{note}"
        )
    return lines
