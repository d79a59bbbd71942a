"""Smoke test of the benchmark suite: it runs and reports, nothing is timed.

Only our implementation (and no upstream venv) so the test needs nothing from
the network; sizes are shrunk so it takes seconds.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
BACKENDS = {"asyncio", "uvloop", "trio"}


def run_bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,  # a hang limit: a loaded CI machine takes minutes
    )


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, Any]]:
    out = tmp_path_factory.mktemp("bench") / "quick.json"
    proc = run_bench(
        "--quick", "--impls", "ours", "--scale", "0.05", "--no-chart", "--timeout", "30",
        "--json", str(out),
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout, json.loads(out.read_text())


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
    assert backends <= BACKENDS and "asyncio" in backends
    assert len(doc["results"]) == len(names) * len(backends)
    assert len(doc["ratios"]) == len(names) * len(backends)


def test_every_cell_ran_or_is_not_implemented(quick_run: tuple[str, dict[str, Any]]) -> None:
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
        assert len(samples) == doc["settings"]["reps"] or cell["workload"] == "parked_memory"
        assert all(math.isfinite(s) for s in samples)
        assert cell["min"] <= cell["q1"] <= cell["median"] <= cell["q3"] <= cell["max"]
        if cell["workload"] != "parked_memory":  # an RSS delta can be zero
            assert cell["min"] > 0


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
