"""Command line: run the benchmark suite and report it.

    python -m bench --quick            # about a minute, tiny sizes
    python -m bench                    # full run, several minutes
    python -m bench --only 'stream*,lock' --json /tmp/out.json
    python -m bench --apps [--quick]   # application scenarios (uvicorn, httpx, pipeline)
    python -m bench --callgrind        # instructions per operation under callgrind

See bench/README.md for how to read the output.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import sys
import time
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # started as `python bench/run.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests._backends import ASYNCIO_UVLOOP, BACKEND_IDS, TRIO

from bench import _env, _report, _targets
from bench._runner import BatchResult, Task, run_batch
from bench.workloads import REGISTRY, Workload

BACKENDS = BACKEND_IDS
DEFAULT_JSON = _env.ROOT / "bench" / "results" / "latest.json"
DEFAULT_CHART = _env.ROOT / "docs" / "bench.png"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes and one round: a smoke run of about a minute",
    )
    p.add_argument(
        "--only",
        metavar="PATTERN",
        help="comma-separated workload names, globs or substrings",
    )
    p.add_argument(
        "--json",
        metavar="PATH",
        type=Path,
        help=f"write results here (default for a complete full run: "
        f"{DEFAULT_JSON.relative_to(_env.ROOT)})",
    )
    p.add_argument(
        "--chart",
        metavar="PATH",
        type=Path,
        help=f"write a PNG chart here (default for a complete full run: "
        f"{DEFAULT_CHART.relative_to(_env.ROOT)})",
    )
    p.add_argument("--no-chart", action="store_true", help="never draw the chart")
    p.add_argument(
        "--impls",
        default="ours,upstream,raw",
        help="comma-separated subset of ours, upstream, raw (default: all)",
    )
    p.add_argument(
        "--no-upstream",
        action="store_true",
        help="skip upstream anyio (and the creation of its venv)",
    )
    p.add_argument(
        "--backends",
        default=",".join(BACKENDS),
        help=f"comma-separated subset of {', '.join(BACKENDS)} (default: all)",
    )
    p.add_argument(
        "--rounds",
        type=int,
        help="worker rounds, interleaving implementations (default 5, quick 1)",
    )
    p.add_argument("--reps", type=int, help="timed repetitions per round (default 3)")
    p.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="multiply every workload size by this factor",
    )
    p.add_argument(
        "--timeout",
        type=float,
        help="seconds one workload may take before its worker is killed "
        "(default 180, quick 60)",
    )
    p.add_argument("--list", action="store_true", help="list the workloads and exit")
    p.add_argument(
        "--apps",
        action="store_true",
        help="run the application scenarios instead (uvicorn + FastAPI, httpx, "
        "a stream pipeline): ours against upstream, see bench/README.md",
    )
    p.add_argument(
        "--loadgen",
        choices=("auto", "wrk", "python"),
        default="auto",
        help="--apps: the HTTP load generator (default: wrk when installed)",
    )
    p.add_argument(
        "--duration",
        type=float,
        help="--apps: seconds measured per cell (default 4, quick 2)",
    )
    p.add_argument(
        "--callgrind",
        action="store_true",
        help="count instructions per operation under valgrind --tool=callgrind "
        "instead of timing (deterministic; see bench/README.md)",
    )
    p.add_argument(
        "--keep",
        metavar="DIR",
        type=Path,
        help="--callgrind: keep the callgrind output files here (for callgrind_annotate)",
    )
    p.add_argument(
        "--baseline",
        metavar="DIR",
        type=Path,
        help="also run another checkout of this project (its extension built in "
        "place) as 'baseline', with a baseline/ours column: a change's before "
        "and after in one run (timed and --callgrind)",
    )
    args = p.parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    args.impls = [i for i in args.impls.split(",") if i]
    if args.no_upstream and "upstream" in args.impls:
        args.impls.remove("upstream")
    args.backends = [b for b in args.backends.split(",") if b]
    if args.baseline is not None and "baseline" not in args.impls:
        args.impls.append("baseline")
    for name in args.impls:
        if name == "baseline" and args.baseline is None:
            p.error("the baseline implementation needs --baseline DIR")
        if name not in _report.IMPLS:
            p.error(f"unknown implementation {name!r}")
    for name in args.backends:
        if name not in BACKENDS:
            p.error(f"unknown backend {name!r}")
    if args.apps and args.callgrind:
        p.error("--apps and --callgrind do not combine")
    if args.apps or args.callgrind:
        if args.rounds is not None and args.rounds < 1:
            p.error("--rounds must be at least 1")
        return args
    if args.rounds is None:
        args.rounds = 1 if args.quick else 5
    if args.reps is None:
        args.reps = 3
    if args.timeout is None:
        args.timeout = 60.0 if args.quick else 180.0
    if args.rounds < 1 or args.reps < 1 or args.scale <= 0:
        p.error("--rounds and --reps must be at least 1 and --scale positive")
    return args


def select(only: str | None) -> list[Workload]:
    workloads = list(REGISTRY.values())
    if not only:
        return workloads
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    chosen = [
        w
        for w in workloads
        if any(fnmatch.fnmatchcase(w.name, p) or p in w.name for p in patterns)
    ]
    if not chosen:
        raise SystemExit(f"--only {only!r} matches no workload; try --list")
    return chosen


def size_of(wl: Workload, quick: bool, scale: float) -> int:
    return max(1, int(wl.sizes[0 if quick else 1] * scale))


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def check_identity(interp: _env.Interpreter, batch: BatchResult) -> str | None:
    """Refuse results that came from the wrong anyio."""
    hello = batch.hello
    if "anyio_file" not in hello:
        return None
    version = str(hello.get("anyio_version") or "")
    if interp.impl == "ours":
        source_tree = str(_env.ROOT / "python" / "anyio")
        if not hello["anyio_file"].startswith(source_tree) and "+cpp" not in version:
            return (
                f"imported anyio {version or '?'} from {hello['anyio_file']}: neither "
                f"{source_tree} (build the extension in place) nor an installed copy of ours"
            )
    if interp.impl == "upstream" and version != _env.UPSTREAM_ANYIO:
        return f"upstream venv has anyio {version or '?'}"
    return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.apps:
        from bench.apps import run as apps

        return apps.main(args)
    if args.callgrind:
        from bench import callgrind

        return callgrind.main(args)
    if args.list:
        for wl in REGISTRY.values():
            print(f"{wl.name:18} {wl.group:5} {wl.title}")
        return 0
    workloads = select(args.only)
    started = time.monotonic()
    machine = _env.machine()

    interps: list[_env.Interpreter] = []
    for impl in args.impls:
        if impl == "ours":
            interps.append(_env.ours())
        elif impl == "raw":
            interps.append(_env.raw())
        elif impl == "baseline":
            interps.append(_env.baseline(args.baseline))
        else:
            interps.append(_env.upstream(log))
    backends = [
        b
        for b in args.backends
        if b != ASYNCIO_UVLOOP or _env.installed_version("uvloop")
    ]
    backends = [b for b in backends if b != TRIO or _env.installed_version("trio")]

    timed = [w for w in workloads if w.kind == "time"]
    memory = [w for w in workloads if w.kind == "memory"]
    samples: dict[tuple[str, str, str], list[float]] = {}
    failures: dict[tuple[str, str, str], dict[str, Any]] = {}
    labels: dict[tuple[str, str], str] = {}
    hellos: dict[str, dict[str, Any]] = {}

    def absorb(interp: _env.Interpreter, backend: str, batch: BatchResult) -> None:
        hellos.setdefault(interp.impl, batch.hello)
        wrong = check_identity(interp, batch)
        for name, res in batch.results.items():
            key = (name, backend, interp.impl)
            if wrong:
                res = {"status": "error", "detail": wrong}
            if res["status"] == "ok":
                samples.setdefault(key, []).extend(res["samples"])
                if res.get("label"):
                    labels[(name, "trio" if backend == TRIO else "asyncio")] = res[
                        "label"
                    ]
            else:
                failures.setdefault(key, res)

    pairs = [(interp, backend) for backend in backends for interp in interps]
    for rnd in range(args.rounds):
        # Rotate the order so no implementation always runs first (or on a
        # machine that has just warmed up, or cooled down).
        shift = rnd % len(pairs)
        for interp, backend in pairs[shift:] + pairs[:shift]:
            t0 = time.monotonic()
            tasks = [
                Task(
                    w.name,
                    size_of(w, args.quick, args.scale),
                    args.reps,
                    max(1, size_of(w, args.quick, args.scale) // 5),
                )
                for w in timed
            ]
            if tasks:
                absorb(interp, backend, run_batch(interp, backend, tasks, args.timeout))
            # Memory: one sample per fresh process, so nothing freed earlier
            # is reused and hidden.
            for w in memory:
                n = size_of(w, args.quick, args.scale)
                task = Task(w.name, n, 1, min(50, n))
                absorb(
                    interp, backend, run_batch(interp, backend, [task], args.timeout)
                )
            log(
                f"[round {rnd + 1}/{args.rounds}] {interp.impl:8} {backend:7} "
                f"{time.monotonic() - t0:6.1f} s"
            )

    machine["loadavg_at_end"] = _env.machine()["loadavg_at_start"]
    doc = build_document(
        args, machine, workloads, backends, samples, failures, labels, hellos
    )
    doc["targets"] = _targets.check(doc)
    doc["elapsed_s"] = round(time.monotonic() - started, 1)
    print(_report.format_table(doc))
    print(f"\n(total {doc['elapsed_s']} s)")

    complete = (
        not args.quick
        and not args.only
        and args.scale == 1.0
        and set(args.impls) == set(_report.STANDARD_IMPLS)
        and set(backends) == set(BACKENDS)
    )
    json_path = args.json or (DEFAULT_JSON if complete else None)
    chart_path = (
        None if args.no_chart else (args.chart or (DEFAULT_CHART if complete else None))
    )
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=1) + "\n")
        log(f"wrote {json_path}")
    if chart_path:
        try:
            _report.write_chart(doc, chart_path)
        except ImportError:
            log("matplotlib is not installed (it is in the dev extra): no chart drawn")
        else:
            log(f"wrote {chart_path}")
    return 0


def build_document(
    args: argparse.Namespace,
    machine: dict[str, Any],
    workloads: list[Workload],
    backends: list[str],
    samples: dict[tuple[str, str, str], list[float]],
    failures: dict[tuple[str, str, str], dict[str, Any]],
    labels: dict[tuple[str, str], str],
    hellos: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    results = []
    for wl in workloads:
        for backend in backends:
            for impl in args.impls:
                key = (wl.name, backend, impl)
                cell: dict[str, Any] = {
                    "workload": wl.name,
                    "backend": backend,
                    "impl": impl,
                    "n": size_of(wl, args.quick, args.scale),
                }
                if key in samples:
                    cell["status"] = "ok"
                    cell.update(_report.summarize(samples[key]))
                    cell["samples"] = [round(x, 1) for x in samples[key]]
                    if key in failures:  # some rounds failed; keep that visible
                        cell["failed_rounds"] = failures[key]
                elif key in failures:
                    cell.update(failures[key])
                else:
                    cell.update(status="n/a", detail="not run")
                results.append(cell)

    by_key = {(r["workload"], r["backend"], r["impl"]): r for r in results}
    ratios = []
    for wl in workloads:
        for backend in backends:
            ours = by_key.get((wl.name, backend, "ours"))
            ratios.append(
                {
                    "workload": wl.name,
                    "backend": backend,
                    "upstream_over_ours": _report.ratio(
                        by_key.get((wl.name, backend, "upstream")), ours
                    ),
                    "raw_over_ours": _report.ratio(
                        by_key.get((wl.name, backend, "raw")), ours
                    ),
                    "baseline_over_ours": _report.ratio(
                        by_key.get((wl.name, backend, "baseline")), ours
                    ),
                    "raw_over_upstream": _report.ratio(
                        by_key.get((wl.name, backend, "raw")),
                        by_key.get((wl.name, backend, "upstream")),
                    ),
                }
            )

    timed_samples = args.rounds * args.reps
    return {
        "schema": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "mode": "quick" if args.quick else "full",
        "command": " ".join(["python -m bench", *args.argv]),
        "machine": machine,
        "versions": _env.versions(),
        "interpreters": hellos,
        "settings": {
            "rounds": args.rounds,
            "reps": args.reps,
            "scale": args.scale,
            "impls": args.impls,
            "backends": backends,
            "samples_per_cell": f"{timed_samples} (memory: {args.rounds})",
        },
        "workloads": [
            {
                "name": wl.name,
                "title": wl.title,
                "group": wl.group,
                "kind": wl.kind,
                "unit": wl.unit_label,
                "n": size_of(wl, args.quick, args.scale),
                "raw": {
                    "asyncio": labels.get((wl.name, "asyncio"), wl.raw_asyncio_label),
                    "trio": labels.get((wl.name, "trio"), wl.raw_trio_label),
                },
            }
            for wl in workloads
        ],
        "results": results,
        "ratios": ratios,
    }


if __name__ == "__main__":
    raise SystemExit(main())
