"""`python -m bench --callgrind`: instructions per operation, ours / upstream / raw.

Instruction counts from ``valgrind --tool=callgrind`` do not depend on the
machine's load, so they can judge a change of a few percent where timings on
a shared machine cannot. One valgrind process per (implementation, backend)
runs every selected workload (``bench/_cg_worker.py``): a warm-up run, then
runs of n and 2n operations, each in a fresh event loop and each dumped on
its own; instructions per operation = (I(2n) - I(n)) / n, so interpreter
start-up, imports and the loop's own start and teardown cancel out.
``PYTHONHASHSEED=0`` keeps hashing (and so set and dict layouts) the same
from run to run. With ``--rounds 2`` or more every process runs again and
the table shows the spread between rounds.
"""

from __future__ import annotations

import argparse
import datetime
import json
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests._backends import ASYNCIO, ASYNCIO_UVLOOP, BACKEND_IDS, TRIO

from bench import _env
from bench.workloads import REGISTRY

DEFAULT_JSON = _env.ROOT / "bench" / "results" / "callgrind-latest.json"
DEFAULT_WORKLOADS = (
    "checkpoint",
    "cancel_scope",
    "fail_after",
    "move_on_0",
    "stream",
    "nowait_pair",
    "lock",
    "limiter",
    "semaphore",
    "event",
    "spawn",
    "empty_group",
    "to_thread",
)
BACKENDS = (ASYNCIO, TRIO)
IMPLS = ("ours", "upstream", "raw", "baseline")
STANDARD_IMPLS = ("ours", "upstream", "raw")


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_total(path: Path) -> int:
    text = path.read_text(errors="replace")
    # "summary" is the dump's cost; "totals" adds up the cost lines, which
    # also bill the calls still in progress when the counters were zeroed.
    m = re.search(r"^summary:\s+(\d+)", text, re.M)
    if not m:
        raise RuntimeError(f"no totals in {path}")
    return int(m.group(1))


def run_valgrind(
    interp: _env.Interpreter,
    backend: str,
    tasks: list[dict[str, Any]],
    out_dir: Path,
    timeout: float,
) -> dict[str, Any]:
    """One valgrind process; returns {"counts": {workload: {n: instr}}, ...}."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base = out_dir / "callgrind.out"
    env = interp.env()
    env["PYTHONHASHSEED"] = "0"
    job = {"impl": interp.worker_impl, "backend": backend, "tasks": tasks}
    proc = subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={base}",
            "--zero-before=starmap_next",
            "--dump-after=starmap_next",
            interp.python,
            "-m",
            "bench._cg_worker",
        ],
        cwd=_env.ROOT,
        env=env,
        input=json.dumps(job),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode:
        tail = " | ".join(proc.stderr.strip().splitlines()[-5:])[-600:]
        raise RuntimeError(f"valgrind worker exited with {proc.returncode}: {tail}")
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    counts: dict[str, dict[int, int]] = {}
    files: dict[str, dict[int, str]] = {}
    for index, dump in enumerate(report["dumps"], start=1):
        path = Path(f"{base}.{index}")
        counts.setdefault(dump["workload"], {})[dump["n"]] = read_total(path)
        files.setdefault(dump["workload"], {})[dump["n"]] = str(path)
    return {"counts": counts, "files": files, "skipped": report["skipped"]}


def per_op(counts: dict[int, int]) -> float | None:
    if len(counts) != 2:
        return None
    small, large = sorted(counts)
    return (counts[large] - counts[small]) / (large - small)


def format_table(doc: dict[str, Any]) -> str:
    impls = doc["settings"]["impls"]
    head = ["workload", "backend", *impls]
    if "ours" in impls and "upstream" in impls:
        head.append("upstream/ours")
    if "ours" in impls and "raw" in impls:
        head.append("raw/ours")
    if "ours" in impls and "baseline" in impls:
        head.append("baseline/ours")
    rows = []
    for r in doc["results"]:
        cells = r["impls"]

        def text(impl: str, cells: dict[str, Any] = cells) -> str:
            c = cells.get(impl, {})
            if c.get("per_op") is None:
                return str(c.get("status", "-"))
            spread = c.get("spread_pct")
            extra = f" ±{spread:.2f}%" if spread else ""
            return f"{c['per_op']:,.0f}{extra}"

        row = [r["workload"], r["backend"], *(text(i) for i in impls)]
        for a in ("upstream", "raw", "baseline"):
            if f"{a}/ours" in head:
                o = cells.get("ours", {}).get("per_op")
                x = cells.get(a, {}).get("per_op")
                row.append(f"{x / o:.2f}x" if o and x else "-")
        rows.append(row)
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(len(head))]

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(widths[i]) if i < 2 else c.rjust(widths[i])
                for i, c in enumerate(cells)
            )
            + " |"
        )

    out = [
        f"callgrind: instructions per operation, {doc['created']}, python "
        f"{doc['versions']['python']}, trio {doc['versions']['trio']}, ours "
        f"{doc['versions']['ours_commit']}{' (dirty)' if doc['versions']['ours_dirty'] else ''}",
        f"(I(2n) - I(n)) / n, {doc['settings']['rounds']} round(s); "
        "±: largest deviation between rounds",
        "",
        line(head),
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        *(line(r) for r in rows),
        "",
        "Fewer is better; upstream/ours above 1 means ours runs fewer instructions.",
    ]
    problems = [
        f"  {r['workload']}/{r['backend']} {impl}: {c.get('detail')}"
        for r in doc["results"]
        for impl, c in r["impls"].items()
        if c.get("detail")
    ]
    if problems:
        out += ["", "not measured:", *problems]
    return "\n".join(out)


def main(args: argparse.Namespace) -> int:
    if not shutil.which("valgrind"):
        raise SystemExit("valgrind is not installed (apt-get install -y valgrind)")
    if args.only:
        import fnmatch

        patterns = [p.strip() for p in args.only.split(",") if p.strip()]
        names = [
            w.name
            for w in REGISTRY.values()
            if w.kind == "time"
            and any(fnmatch.fnmatchcase(w.name, p) or p in w.name for p in patterns)
        ]
        if not names:
            raise SystemExit(f"--only {args.only!r} matches no workload; try --list")
    else:
        names = list(DEFAULT_WORKLOADS)
    backends = [
        b
        for b in args.backends
        if b in BACKENDS or (b == ASYNCIO_UVLOOP and _env.installed_version("uvloop"))
    ]
    if args.backends == list(BACKEND_IDS):  # the untouched default
        backends = list(BACKENDS)
    impls = [i for i in args.impls if i in IMPLS]
    rounds = args.rounds or 1
    started = time.monotonic()
    interps = {
        impl: (
            _env.ours()
            if impl == "ours"
            else _env.raw()
            if impl == "raw"
            else _env.baseline(args.baseline)
            if impl == "baseline"
            else _env.upstream(log)
        )
        for impl in impls
    }
    # Few operations: callgrind runs some 50 times slower than the CPU, and
    # the counts are exact, so a quarter of the timed bench's quick size is
    # plenty (a tenth with --quick).
    tasks = [
        {
            "workload": name,
            "n": max(
                10,
                int(REGISTRY[name].sizes[0] * args.scale / (10 if args.quick else 4)),
            ),
        }
        for name in names
    ]
    keep = args.keep
    work = Path(keep) if keep else Path(tempfile.mkdtemp(prefix="bench-callgrind-"))
    per: dict[tuple[str, str, str], list[float]] = {}
    details: dict[tuple[str, str, str], str] = {}
    files: dict[str, Any] = {}
    try:
        for rnd in range(rounds):
            for backend in backends:
                for impl in impls:
                    t0 = time.monotonic()
                    out_dir = work / f"{impl}-{backend}-r{rnd + 1}"
                    if out_dir.exists():
                        shutil.rmtree(out_dir)
                    try:
                        res = run_valgrind(
                            interps[impl], backend, tasks, out_dir, args.timeout or 1800
                        )
                    except (RuntimeError, subprocess.TimeoutExpired) as exc:
                        for name in names:
                            details[(name, backend, impl)] = str(exc)[:400]
                        log(f"[callgrind] {impl} {backend}: failed: {exc}")
                        continue
                    for name in names:
                        value = per_op(res["counts"].get(name, {}))
                        if value is None:
                            details[(name, backend, impl)] = res["skipped"].get(
                                name, "not measured"
                            )
                        else:
                            per.setdefault((name, backend, impl), []).append(value)
                    files[f"{impl}/{backend}/round{rnd + 1}"] = res["files"]
                    log(
                        f"[callgrind round {rnd + 1}/{rounds}] {impl:8} {backend:7} "
                        f"{time.monotonic() - t0:6.1f} s"
                    )
    finally:
        if not keep:
            shutil.rmtree(work, ignore_errors=True)
    results = []
    for name in names:
        for backend in backends:
            cells: dict[str, Any] = {}
            for impl in impls:
                values = per.get((name, backend, impl))
                if values:
                    mid = statistics.median(values)
                    cells[impl] = {
                        "per_op": mid,
                        "values": values,
                        "spread_pct": (
                            max(abs(v - mid) for v in values) / mid * 100
                            if len(values) > 1 and mid
                            else 0.0
                        ),
                    }
                else:
                    cells[impl] = {
                        "status": "n/a",
                        "detail": details.get((name, backend, impl), "not run"),
                    }
            results.append({"workload": name, "backend": backend, "impls": cells})
    doc = {
        "schema": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "command": " ".join(["python -m bench", *args.argv]),
        "versions": _env.versions(),
        "settings": {
            "rounds": rounds,
            "impls": impls,
            "backends": backends,
            "n": {t["workload"]: t["n"] for t in tasks},
        },
        "results": results,
        "files": files if keep else None,
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    print(format_table(doc))
    print(f"\n(total {doc['elapsed_s']} s)")
    complete = (
        not args.only
        and not args.quick
        and args.scale == 1.0
        and set(impls) == set(STANDARD_IMPLS)
        and set(backends) == set(BACKENDS)
    )
    json_path: Path | None = args.json or (DEFAULT_JSON if complete else None)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=1) + "\n")
        log(f"wrote {json_path}")
    return 0
