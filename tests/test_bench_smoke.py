"""Smoke test of the benchmark suite: it runs and reports, nothing is timed.

Only our implementation (and no upstream venv) so the test needs nothing from
the network; sizes are shrunk so it takes seconds.
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from bench import _env
from tests._backends import ASYNCIO, BACKEND_IDS

import anyio

ROOT = Path(__file__).resolve().parent.parent


def run_bench(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = run_bench(
        "--quick",
        "--impls",
        "ours",
        "--scale",
        "0.05",
        "--no-chart",
        "--timeout",
        "30",
        "--json",
        str(out),
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, json.loads(out.read_text())


@pytest.mark.timeout(300)  # the first one also runs the fixture: ~10 s idle, 2 min busy
def test_document_is_well_formed(quick_run: tuple[str, dict[str, Any]]) -> None:
    _, doc = quick_run
    assert doc["schema"] == 1
    assert doc["mode"] == "quick"
    assert doc["settings"]["impls"] == ["ours"]
    assert doc["machine"]["cores"] >= 1 and doc["machine"]["cpu"]
    for key in ("python", "trio", "uvloop", "upstream_anyio"):
        assert key in doc["versions"]
    names = [w["name"] for w in doc["workloads"]]
    assert len(names) == len(set(names)) >= 20
    backends = set(doc["settings"]["backends"])
    assert backends <= set(BACKEND_IDS) and ASYNCIO in backends
    assert len(doc["results"]) == len(names) * len(backends)
    assert len(doc["ratios"]) == len(names) * len(backends)


@pytest.mark.timeout(300)  # the first one also runs the fixture: ~10 s idle, 2 min busy
def test_every_cell_ran_or_is_not_implemented(
    quick_run: tuple[str, dict[str, Any]],
) -> None:
    _, doc = quick_run
    problems = [
        f"{r['workload']}/{r['backend']}: {r['status']}: {r.get('detail')}"
        for r in doc["results"]
        if r["status"] not in ("ok", "n/a")
    ]
    assert not problems, "\n".join(problems)
    for cell in doc["results"]:
        assert cell["impl"] == "ours"
        if cell["status"] == "n/a":
            assert cell["detail"].startswith("not implemented: ")
            continue
        samples = cell["samples"]
        assert (
            len(samples) == doc["settings"]["reps"]
            or cell["workload"] == "parked_memory"
        )
        assert all(math.isfinite(s) for s in samples)
        assert cell["min"] <= cell["q1"] <= cell["median"] <= cell["q3"] <= cell["max"]
        if cell["workload"] != "parked_memory":  # an RSS delta can be zero
            assert cell["min"] > 0


@pytest.mark.timeout(300)  # the first one also runs the fixture: ~10 s idle, 2 min busy
def test_table_names_every_workload(quick_run: tuple[str, dict[str, Any]]) -> None:
    stdout, doc = quick_run
    assert "upstream/ours" in stdout and "raw/ours" in stdout
    assert f"trio {doc['versions']['trio']}" in stdout
    for workload in doc["workloads"]:
        assert f"{workload['name']} [" in stdout


def test_only_selects_and_rejects() -> None:
    listing = run_bench("--list")
    assert listing.returncode == 0
    assert "checkpoint" in listing.stdout and "tcp_echo" in listing.stdout
    nothing = run_bench("--only", "no-such-workload", "--impls", "ours")
    assert nothing.returncode != 0
    assert "matches no workload" in nothing.stderr


# -- python -m bench --apps ------------------------------------------------------


def test_apps_list_names_every_scenario() -> None:
    from bench.apps.run import SCENARIOS

    listing = run_bench("--apps", "--list")
    assert listing.returncode == 0, listing.stderr
    for scenario in SCENARIOS:
        assert scenario.key in listing.stdout
    assert {s.name for s in SCENARIOS} >= {
        "fastapi_sync",
        "fastapi_async",
        "fastapi_stream",
        "fastapi_middleware",
        "httpx_sequential",
        "httpx_concurrent",
        "pipeline",
    }


@pytest.mark.timeout(300)
def test_apps_pipeline_runs_and_reports(tmp_path: Path) -> None:
    # The pipeline needs no app stack, so this runs offline.
    out = tmp_path / "apps.json"
    proc = run_bench(
        "--apps",
        "--quick",
        "--impls",
        "ours",
        "--only",
        "pipeline",
        "--scale",
        "0.2",
        "--duration",
        "5",
        "--json",
        str(out),
        timeout=280,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    # "ours" is the in-place build under python/ when there is one, else the
    # anyio this interpreter has installed (as in CI).
    pythonpath = _env.ours().pythonpath
    ours_package = (
        str(Path(pythonpath) / "anyio")
        if pythonpath
        else str(Path(anyio.__file__).parent)
    )
    assert [r["loop"] for r in doc["results"]] == ["asyncio", "uvloop", "trio"]
    for entry in doc["results"]:
        cell = entry["impls"]["ours"]
        assert cell["ok_runs"] == 1 and cell["errors"] == 0, entry["runs"]
        assert cell["rps"] > 0 and cell["cpu_us"] > 0 and cell["p99_ms"] > 0
        (run,) = entry["runs"]["ours"]
        assert run["requests"] == 1000
        assert run["anyio"].startswith(ours_package)
    assert "| pipeline " in proc.stdout and "CPU us/req ours" in proc.stdout


WRK_OUTPUT = """\
Running 2s test @ http://127.0.0.1:4000/sync
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    20.01ms    3.02ms  40.00ms   90.00%
    Req/Sec     2.50k   100.00     2.60k    80.00%
  Latency Distribution
     50%   19.50ms
     75%   21.00ms
     90%   23.00ms
     99%    1.20s
  4990 requests in 2.00s, 800.00KB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 7
Requests/sec:   2495.00
Transfer/sec:    400.00KB
"""


def test_wrk_output_is_parsed() -> None:
    from bench.apps.run import parse_wrk

    got = parse_wrk(WRK_OUTPUT)
    assert got == {
        "requests": 4990,
        "elapsed": 2.0,
        "errors": 12,
        "p50_ms": 19.5,
        "p99_ms": 1200.0,
    }


def test_python_load_generator_reads_both_framings() -> None:
    import asyncio

    from bench.apps.loadgen import read_response

    async def parse(raw: bytes) -> tuple[int, bytes]:
        reader = asyncio.StreamReader()
        reader.feed_data(raw + b"NEXT")
        reader.feed_eof()
        status = await read_response(reader)
        return status, await reader.read()

    fixed = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
    chunked = (
        b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n10;ext=1\r\n0123456789abcdef\r\n0\r\n\r\n"
    )
    assert asyncio.run(parse(fixed)) == (200, b"NEXT")
    assert asyncio.run(parse(chunked)) == (500, b"NEXT")


def test_python_load_generator_against_the_echo_server() -> None:
    from bench import _env
    from bench.apps.run import Server, load

    server = Server(_env.raw(), ["--app", "echo", "--loop", "asyncio"])
    try:
        got = load(server.port, "/", 0.5, "python")
    finally:
        server.stop()
    assert got["requests"] > 0 and got["errors"] == 0
    assert 0 < got["p50_ms"] <= got["p99_ms"]
    assert server.proc.returncode == 0


# -- python -m bench --callgrind -------------------------------------------------


@pytest.mark.skipif(
    shutil.which("valgrind") is None, reason="valgrind is not installed"
)
@pytest.mark.timeout(
    900
)  # two interpreters under valgrind: ~30 s idle, minutes when busy
def test_callgrind_counts_repeat(tmp_path: Path) -> None:
    out = tmp_path / "cg.json"
    proc = run_bench(
        "--callgrind",
        "--impls",
        "ours",
        "--backends",
        "asyncio",
        "--only",
        "cancel_scope",
        "--quick",
        "--rounds",
        "2",
        "--json",
        str(out),
        timeout=850,
    )
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(out.read_text())
    (result,) = doc["results"]
    cell = result["impls"]["ours"]
    assert len(cell["values"]) == 2
    assert cell["per_op"] > 0
    assert cell["spread_pct"] < 0.5, cell
    assert "cancel_scope" in proc.stdout
