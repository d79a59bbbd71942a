"""`python -m bench --apps`: application scenarios, ours against upstream.

Every measurement is one fresh process of the measured program (a uvicorn
server, an httpx client or a stream pipeline) under one implementation's
interpreter; rounds alternate which implementation goes first. The load
generator (wrk, else ``bench.apps.loadgen``) runs in a process of its own and
never imports anyio. CPU per request is the measured process's CPU time as
the kernel accounts it, over the measured window only, divided by the
requests completed in it.
"""

from __future__ import annotations

import argparse
import datetime
import fnmatch
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from bench import _env
from bench.apps._proc import cpu_seconds

DEFAULT_JSON = _env.ROOT / "bench" / "results" / "apps-latest.json"
IMPLS = ("ours", "upstream")
CONNECTIONS = 50


@dataclass(frozen=True)
class Scenario:
    name: str
    loop: str  # asyncio, uvloop or trio
    kind: str  # server, client or pipeline
    title: str
    app: str = ""  # server: plain or middleware
    path: str = ""  # server: the route loaded
    mode: str = ""  # client: sequential or concurrent

    @property
    def key(self) -> str:
        return f"{self.name}/{self.loop}"


def _scenarios() -> list[Scenario]:
    out = []
    for loop in ("asyncio", "uvloop"):
        out += [
            Scenario(
                "fastapi_sync",
                loop,
                "server",
                "FastAPI `def` endpoint (worker thread)",
                "plain",
                "/sync",
            ),
            Scenario(
                "fastapi_async",
                loop,
                "server",
                "FastAPI `async def` endpoint",
                "plain",
                "/async",
            ),
            Scenario(
                "fastapi_stream",
                loop,
                "server",
                "StreamingResponse of 100 chunks",
                "plain",
                "/stream",
            ),
            Scenario(
                "fastapi_middleware",
                loop,
                "server",
                "BaseHTTPMiddleware + `async def`",
                "middleware",
                "/async",
            ),
        ]
    for loop in ("asyncio", "uvloop"):
        out += [
            Scenario(
                "httpx_sequential",
                loop,
                "client",
                "httpx.AsyncClient, GETs one at a time",
                mode="sequential",
            ),
            Scenario(
                "httpx_concurrent",
                loop,
                "client",
                "httpx.AsyncClient, 50 tasks at once",
                mode="concurrent",
            ),
        ]
    for loop in ("asyncio", "uvloop", "trio"):
        out.append(
            Scenario(
                "pipeline",
                loop,
                "pipeline",
                "memory-stream pipeline, task per request, CapacityLimiter",
            )
        )
    return out


SCENARIOS = _scenarios()


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- processes ---------------------------------------------------------------


class Server:
    """A server process that prints ``PORT n`` and stops when stdin closes."""

    def __init__(self, interp: _env.Interpreter, args: list[str]) -> None:
        self.stderr: IO[str] = tempfile.TemporaryFile("w+")
        self.proc = subprocess.Popen(
            [interp.python, "-m", "bench.apps.server", *args],
            cwd=_env.ROOT,
            env=interp.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the server exits (EOF) on failure
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"server did not start: {self.stderr_tail()}")
        self.port = int(line.split()[1])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stderr_tail(self, limit: int = 600) -> str:
        self.stderr.seek(0)
        text = self.stderr.read()
        return " | ".join(text.strip().splitlines()[-6:])[-limit:]

    def error_count(self) -> int:
        self.stderr.seek(0)
        return self.stderr.read().count("Traceback (most recent call last)")

    def stop(self) -> None:
        if self.proc.stdin:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3}


def parse_wrk(text: str) -> dict[str, Any]:
    done = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)", text)
    if not done:
        raise RuntimeError(f"unreadable wrk output: {text[-300:]!r}")
    seconds = (
        float(done.group(2))
        * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[done.group(3)]
    )
    errors = 0
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    if socket_errors:
        errors += sum(int(x) for x in socket_errors.groups())
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if non2xx:
        errors += int(non2xx.group(1))
    out: dict[str, Any] = {
        "requests": int(done.group(1)),
        "elapsed": seconds,
        "errors": errors,
    }
    for pct, key in (("50", "p50_ms"), ("99", "p99_ms")):
        m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        out[key] = float(m.group(1)) * _UNITS[m.group(2)] if m else float("nan")
    return out


def load(port: int, path: str, seconds: float, loadgen: str) -> dict[str, Any]:
    url = f"http://127.0.0.1:{port}{path}"
    if loadgen == "wrk":
        proc = subprocess.run(
            [
                "wrk",
                "-t1",
                f"-c{CONNECTIONS}",
                f"-d{max(1, round(seconds))}s",
                "--latency",
                url,
            ],
            capture_output=True,
            text=True,
            timeout=seconds + 60,
        )
        return parse_wrk(proc.stdout)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "bench.apps.loadgen",
            "--port",
            str(port),
            "--path",
            path,
            "--connections",
            str(CONNECTIONS),
            "--requests",
            "1000000",
            "--duration",
            str(seconds),
        ],
        cwd=_env.ROOT,
        env=_env.raw().env(),
        capture_output=True,
        text=True,
        timeout=seconds + 60,
    )
    if proc.returncode:
        raise RuntimeError(f"load generator failed: {proc.stderr[-300:]}")
    return dict(json.loads(proc.stdout.splitlines()[-1]))


def run_server(
    sc: Scenario, interp: _env.Interpreter, settings: dict[str, Any]
) -> dict[str, Any]:
    server = Server(interp, ["--app", sc.app, "--loop", sc.loop])
    try:
        load(server.port, sc.path, settings["warmup"], settings["loadgen"])
        cpu0 = cpu_seconds(server.pid)
        out = load(server.port, sc.path, settings["duration"], settings["loadgen"])
        out["cpu"] = cpu_seconds(server.pid) - cpu0
        out["server_tracebacks"] = server.error_count()
        if out["server_tracebacks"]:
            out["detail"] = server.stderr_tail()
        return out
    finally:
        server.stop()


def run_child(
    interp: _env.Interpreter, module: str, args: list[str], timeout: float
) -> dict[str, Any]:
    proc = subprocess.run(
        [interp.python, "-m", module, *args],
        cwd=_env.ROOT,
        env=interp.env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode:
        tail = " | ".join(proc.stderr.strip().splitlines()[-4:])[-600:]
        raise RuntimeError(f"{module} exited with {proc.returncode}: {tail}")
    return dict(json.loads(proc.stdout.splitlines()[-1]))


def run_client(
    sc: Scenario, interp: _env.Interpreter, settings: dict[str, Any]
) -> dict[str, Any]:
    # The target is the same raw asyncio server for both implementations.
    server = Server(
        _env.raw(),
        [
            "--app",
            "echo",
            "--loop",
            "uvloop" if _env.installed_version("uvloop") else "asyncio",
        ],
    )
    try:
        return run_child(
            interp,
            "bench.apps.client",
            [
                "--port",
                str(server.port),
                "--loop",
                sc.loop,
                "--mode",
                sc.mode,
                "--requests",
                str(settings["client_requests"]),
                "--duration",
                str(settings["duration"]),
            ],
            timeout=settings["duration"] * 3 + 60,
        )
    finally:
        server.stop()


def run_pipeline(
    sc: Scenario, interp: _env.Interpreter, settings: dict[str, Any]
) -> dict[str, Any]:
    return run_child(
        interp,
        "bench.apps.pipeline",
        [
            "--backend",
            sc.loop,
            "--requests",
            str(settings["pipeline_requests"]),
            "--duration",
            str(settings["duration"]),
        ],
        timeout=settings["duration"] * 3 + 60,
    )


def measure(
    sc: Scenario, interp: _env.Interpreter, settings: dict[str, Any]
) -> dict[str, Any]:
    runner = {"server": run_server, "client": run_client, "pipeline": run_pipeline}[
        sc.kind
    ]
    try:
        out = runner(sc, interp, settings)
    except (RuntimeError, subprocess.TimeoutExpired, OSError, ValueError) as exc:
        return {"status": "error", "detail": str(exc)[:600]}
    if not out.get("requests"):
        return {
            "status": "error",
            "detail": out.get("detail") or "no request completed",
            **out,
        }
    out["status"] = "ok"
    out["rps"] = out["requests"] / out["elapsed"]
    out["cpu_us"] = out["cpu"] / out["requests"] * 1e6
    return out


# -- report ------------------------------------------------------------------


def _median(cells: list[dict[str, Any]], key: str) -> float | None:
    values = [
        c[key] for c in cells if c.get("status") == "ok" and c.get(key) == c.get(key)
    ]
    return statistics.median(values) if values else None


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    ok = [r for r in runs if r.get("status") == "ok"]
    out: dict[str, Any] = {
        "runs": len(runs),
        "ok_runs": len(ok),
        "errors": sum(int(r.get("errors", 0)) for r in runs),
        "failed_runs": [r.get("detail", "") for r in runs if r.get("status") != "ok"],
    }
    for key in ("rps", "p99_ms", "cpu_us"):
        out[key] = _median(ok, key)
        values = [r[key] for r in ok]
        if values:
            out[key + "_range"] = [min(values), max(values)]
    notes = sorted({n for r in runs for n in r.get("notes", [])})
    if notes:
        out["notes"] = notes
    details = sorted({r["detail"] for r in ok if r.get("detail")})
    if details:
        out["detail"] = details[0]
    return out


def _fmt(x: float | None, digits: int = 0) -> str:
    if x is None:
        return "-"
    return f"{x:,.{digits}f}"


def _ratio(a: float | None, b: float | None) -> str:
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.2f}x"


def format_table(doc: dict[str, Any]) -> str:
    head = [
        "scenario",
        "loop",
        "req/s ours",
        "req/s upstream",
        "req/s ours/up",
        "p99 ms ours",
        "p99 ms up",
        "CPU us/req ours",
        "CPU us/req up",
        "CPU ours/up",
        "errors ours/up",
    ]
    rows = []
    notes: list[str] = []
    for entry in doc["results"]:
        o, u = entry["impls"].get("ours", {}), entry["impls"].get("upstream", {})
        rows.append(
            [
                entry["name"],
                entry["loop"],
                _fmt(o.get("rps")),
                _fmt(u.get("rps")),
                _ratio(o.get("rps"), u.get("rps")),
                _fmt(o.get("p99_ms"), 2),
                _fmt(u.get("p99_ms"), 2),
                _fmt(o.get("cpu_us"), 1),
                _fmt(u.get("cpu_us"), 1),
                _ratio(o.get("cpu_us"), u.get("cpu_us")),
                f"{o.get('errors', '-')}/{u.get('errors', '-')}",
            ]
        )
        for impl, cell in (("ours", o), ("upstream", u)):
            for text in cell.get("failed_runs", []):
                notes.append(
                    f"{entry['name']}/{entry['loop']} {impl}: failed run: {text}"
                )
            for text in cell.get("notes", []):
                notes.append(f"{entry['name']}/{entry['loop']} {impl}: {text}")
            if cell.get("errors") and cell.get("detail"):
                notes.append(
                    f"{entry['name']}/{entry['loop']} {impl}: server said: {cell['detail']}"
                )
    widths = (
        [max(len(head[i]), *(len(r[i]) for r in rows)) for i in range(len(head))]
        if rows
        else [len(h) for h in head]
    )

    def line(cells: list[str]) -> str:
        return (
            "| "
            + " | ".join(
                c.ljust(widths[i]) if i < 2 else c.rjust(widths[i])
                for i, c in enumerate(cells)
            )
            + " |"
        )

    m = doc["machine"]
    out = [
        f"apps benchmark ({doc['mode']}), {doc['created']}: {m['cpu']}, {m['cores']} cores, "
        f"load {m['loadavg_at_start']} -> {m.get('loadavg_at_end')}",
        f"load generator: {doc['settings']['loadgen']}, {CONNECTIONS} connections; "
        f"{doc['settings']['rounds']} rounds of {doc['settings']['duration']} s per cell; "
        "medians over rounds",
        "",
        line(head),
        "|" + "|".join("-" * (w + 2) for w in widths) + "|",
        *(line(r) for r in rows),
        "",
        "req/s ours/up above 1 and CPU ours/up below 1 mean ours is ahead. CPU per request is the",
        "measured process's (server; client; pipeline) kernel CPU time over the window / requests.",
    ]
    if notes:
        out += ["", "notes:", *(f"  {n}" for n in notes)]
    return "\n".join(out)


# -- entry point ---------------------------------------------------------------


def select(only: str | None) -> list[Scenario]:
    if not only:
        return list(SCENARIOS)
    patterns = [p.strip() for p in only.split(",") if p.strip()]
    chosen = [
        s
        for s in SCENARIOS
        if any(
            fnmatch.fnmatchcase(s.key, p)
            or fnmatch.fnmatchcase(s.name, p)
            or p in s.key
            for p in patterns
        )
    ]
    if not chosen:
        raise SystemExit(f"--only {only!r} matches no app scenario; try --apps --list")
    return chosen


def main(args: argparse.Namespace) -> int:
    if args.list:
        for s in SCENARIOS:
            print(f"{s.key:28} {s.kind:8} {s.title}")
        return 0
    scenarios = select(args.only)
    impls = [i for i in args.impls if i in IMPLS]
    started = time.monotonic()
    loadgen = args.loadgen
    if loadgen == "auto":
        loadgen = "wrk" if shutil.which("wrk") else "python"
    elif loadgen == "wrk" and not shutil.which("wrk"):
        raise SystemExit("wrk is not installed (apt-get install -y wrk)")
    rounds = args.rounds or (1 if args.quick else 3)
    duration = args.duration or (2.0 if args.quick else 4.0)
    settings = {
        "rounds": rounds,
        "duration": duration,
        "warmup": max(1.0, duration / 4) if loadgen == "wrk" else duration / 4,
        "loadgen": loadgen,
        "client_requests": int((300 if args.quick else 3000) * args.scale),
        "pipeline_requests": int((5_000 if args.quick else 50_000) * args.scale),
        "impls": impls,
    }
    machine = _env.machine()
    # The pipeline needs anyio alone: without an HTTP scenario no app stack
    # is installed (and nothing is fetched).
    need_stack = any(s.kind != "pipeline" for s in scenarios)
    interps = {}
    for impl in impls:
        if impl == "ours":
            interps[impl] = _env.ours_apps(log) if need_stack else _env.ours()
        else:
            interps[impl] = (
                _env.upstream_apps(log) if need_stack else _env.upstream(log)
            )
    runs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rnd in range(rounds):
        order = impls[rnd % len(impls) :] + impls[: rnd % len(impls)]
        for sc in scenarios:
            for impl in order:
                t0 = time.monotonic()
                res = measure(sc, interps[impl], settings)
                runs.setdefault((sc.key, impl), []).append(res)
                log(
                    f"[round {rnd + 1}/{rounds}] {sc.key:28} {impl:8} {res['status']:5} "
                    f"{res.get('rps', 0):9,.0f} req/s {res.get('cpu_us', 0):8.1f} us CPU/req "
                    f"({time.monotonic() - t0:.1f} s)"
                )
    machine["loadavg_at_end"] = _env.machine()["loadavg_at_start"]
    doc = {
        "schema": 1,
        "created": datetime.datetime.now(datetime.timezone.utc).strftime(
            "%Y-%m-%d %H:%M UTC"
        ),
        "mode": "quick" if args.quick else "full",
        "command": " ".join(["python -m bench", *args.argv]),
        "machine": machine,
        "versions": {**_env.versions(), "apps": list(_env.app_requirements())},
        "settings": settings,
        "results": [
            {
                "name": sc.name,
                "loop": sc.loop,
                "kind": sc.kind,
                "title": sc.title,
                "impls": {
                    impl: summarize(runs.get((sc.key, impl), [])) for impl in impls
                },
                "runs": {impl: runs.get((sc.key, impl), []) for impl in impls},
            }
            for sc in scenarios
        ],
    }
    doc["elapsed_s"] = round(time.monotonic() - started, 1)
    print(format_table(doc))
    print(f"\n(total {doc['elapsed_s']} s)")
    complete = (
        not args.quick
        and not args.only
        and set(impls) == set(IMPLS)
        and args.scale == 1.0
    )
    json_path: Path | None = args.json or (DEFAULT_JSON if complete else None)
    if json_path:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(doc, indent=1) + "\n")
        log(f"wrote {json_path}")
    return 0


if os.name != "posix":  # pragma: no cover
    raise ImportError("the app benchmarks need a POSIX system")
