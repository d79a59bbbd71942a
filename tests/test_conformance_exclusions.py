"""Every upstream test the conformance run excludes names our test of its
public behaviour (``covered_by``), or says that it checks nothing public."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conformance.report import covered_by

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    tomllib = pytest.importorskip("tomli")

REPO = Path(__file__).resolve().parent.parent
EXCLUSIONS = REPO / "conformance" / "exclusions.toml"
NOTHING_PUBLIC = "checks nothing public"


def _exclusions() -> list[dict[str, Any]]:
    with open(EXCLUSIONS, "rb") as file:
        return tomllib.load(file)["exclude"]  # type: ignore[no-any-return]


def _collected(paths: list[str]) -> set[str]:
    """Node ids pytest collects from ``paths``, without their parameters."""
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--collect-only",
            "-q",
            "-p",
            "no:cacheprovider",
            *paths,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return {
        line.partition("[")[0]
        for line in result.stdout.splitlines()
        if line.startswith("tests/") and "::" in line
    }


def test_every_exclusion_is_covered_or_says_why_not() -> None:
    for entry in _exclusions():
        assert entry.get("reason"), entry
        nodeids = covered_by(entry)
        assert nodeids or NOTHING_PUBLIC in entry["reason"], (
            f"{entry['test']}: name the test covering its public behaviour in "
            f"covered_by, or say in reason that it {NOTHING_PUBLIC}"
        )
        for nodeid in nodeids:
            assert nodeid.startswith("tests/") and "::" in nodeid, nodeid
            assert "[" not in nodeid, f"{nodeid}: name the test without parameters"


def test_covering_tests_are_collected() -> None:
    nodeids = {nodeid for entry in _exclusions() for nodeid in covered_by(entry)}
    files = sorted({nodeid.partition("::")[0] for nodeid in nodeids})
    for path in files:
        assert (REPO / path).is_file(), path

    missing = sorted(nodeids - _collected(files))
    assert not missing, f"covered_by names tests pytest does not collect: {missing}"
