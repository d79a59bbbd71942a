"""python -m conformance: upstream anyio 4.16.0's tests and docs against our anyio.

Fails (exit 1) when a test listed in expected_pass.txt does not pass;
``--update-expected`` rewrites that list from this run's passes instead.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import docs_run, report, tests_run
from .sdist import UPSTREAM_VERSION, fetch

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "results.md"
EXPECTED = HERE / "expected_pass.txt"
EXCLUSIONS = HERE / "exclusions.toml"


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib

    with open(path, "rb") as file:
        return tomllib.load(file)


def _apply_import_guards(root: Path, guards: list[dict[str, str]]) -> None:
    for guard in guards:
        path = root / guard["file"]
        lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        changed = False
        for index, line in enumerate(lines):
            if line.rstrip("\n") == guard["line"]:
                lines[index] = (
                    f"try:\n    {guard['line']}\n"
                    "except ImportError:  # conformance: private name, see exclusions.toml\n"
                    "    pass\n"
                )
                changed = True
        if changed:
            path.write_text("".join(lines), encoding="utf-8")


def _apply_text_patches(root: Path, patches: list[dict[str, str]]) -> None:
    for patch in patches:
        path = root / patch["file"]
        text = path.read_text(encoding="utf-8")
        if patch["old"] in text:
            path.write_text(text.replace(patch["old"], patch["new"]), encoding="utf-8")
        elif patch["new"] not in text:
            raise SystemExit(
                f"text patch no longer applies to {patch['file']}: {patch['old']!r}"
            )


def _read_expected() -> set[str]:
    if not EXPECTED.exists():
        return set()
    return {
        line.strip()
        for line in EXPECTED.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }


# The list is recorded on one Python; upstream's tests skip some cases on
# others (APIs new in 3.11, 3.12...). A skip there is not a regression.
_RECORDED_ON = "# recorded on Python "
_DEFAULT_RECORDED_ON = "3.11"  # lists written before the line existed


def _expected_recorded_on() -> str:
    if EXPECTED.exists():
        for line in EXPECTED.read_text(encoding="utf-8").splitlines():
            if line.startswith(_RECORDED_ON):
                return line[len(_RECORDED_ON) :].strip()
    return _DEFAULT_RECORDED_ON


def _this_python() -> str:
    return f"{sys.version_info[0]}.{sys.version_info[1]}"


def _write_expected(passed: set[str], kept: set[str]) -> None:
    header = (
        "# Upstream anyio 4.16.0 tests that pass against this package (node ids).\n"
        "# `python -m conformance` fails if any of them stops passing; regenerate\n"
        "# with `python -m conformance --update-expected` after an intended change.\n"
        f"{_RECORDED_ON}{_this_python()}\n"
    )
    EXPECTED.write_text(
        header + "".join(f"{nodeid}\n" for nodeid in sorted(passed | kept)),
        encoding="utf-8",
    )


def _installed_anyio(env: dict[str, str]) -> dict[str, str]:
    probe = (
        "import json, anyio, importlib.metadata as m\n"
        "try: v = m.version('anyio')\n"
        "except m.PackageNotFoundError: v = 'not installed (import path only)'\n"
        "print(json.dumps({'version': v, 'path': anyio.__file__}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], env=env, capture_output=True, text=True
    )
    if result.returncode != 0:
        raise SystemExit(f"cannot import the anyio under test:\n{result.stderr}")
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def _passing_on_retry(nodeids: list[str], options: tests_run.RunOptions) -> set[str]:
    if len(nodeids) > 50:
        return set()  # a real regression, not flakiness: do not spend the time

    by_file: dict[str, list[str]] = {}
    for nodeid in nodeids:
        by_file.setdefault(nodeid.partition("::")[0], []).append(nodeid)
    # Retries get their own few minutes, whatever is left of the main budget.
    options = dataclasses.replace(options, deadline=time.monotonic() + 300)
    passed: set[str] = set()
    for path, selected in by_file.items():
        retry = tests_run.run_file(path, options, only=selected)
        passed |= {
            nodeid for nodeid, outcome in retry.outcomes.items() if outcome == "passed"
        }
    return passed


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--downstream" in argv:
        # Dependents' suites (starlette, fastapi, httpx, httpcore): downstream.py.
        from . import downstream

        return downstream.main([arg for arg in argv if arg != "--downstream"])

    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__)
    parser.add_argument(
        "--downstream",
        action="store_true",
        help="run dependents' test suites instead (see conformance/downstream.py)",
    )
    parser.add_argument(
        "--update-expected",
        action="store_true",
        help="rewrite expected_pass.txt from this run",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="regression-check mode: also fail if expected_pass.txt is missing",
    )
    parser.add_argument(
        "--files", nargs="*", help="only test files whose path contains one of these"
    )
    parser.add_argument(
        "--no-docs", action="store_true", help="skip the documentation examples"
    )
    parser.add_argument("--no-tests", action="store_true", help="skip the test suite")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "anyio-sdist")
    parser.add_argument(
        "--test-timeout", type=int, default=20, help="pytest-timeout per test (s)"
    )
    parser.add_argument(
        "--file-timeout", type=int, default=420, help="limit for one pytest process (s)"
    )
    parser.add_argument(
        "--budget", type=float, default=23 * 60, help="whole-run time limit (s)"
    )
    parser.add_argument(
        "--logs", type=Path, help="keep each pytest process's output in this directory"
    )
    parser.add_argument(
        "--jobs", type=int, default=1, help="test files run at the same time"
    )
    args = parser.parse_args(argv)

    started = time.monotonic()
    deadline = started + args.budget
    root = fetch(args.cache)
    config = _load_toml(EXCLUSIONS)
    _apply_import_guards(root, config.get("import_guard", []))
    _apply_text_patches(root, config.get("text_patch", []))

    # The recorder plugin lives in this package; anyio itself must come from the
    # installed distribution, never from the repository's python/ directory.
    # PYTHONPATH entries are made absolute: pytest runs in the sdist's folder.
    env = dict(os.environ)
    given = [
        str(Path(p).resolve()) for p in env.get("PYTHONPATH", "").split(os.pathsep) if p
    ]
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), *given])
    env.setdefault("PYTHONHASHSEED", "0")
    installed = _installed_anyio(env)
    print(f"anyio under test: {installed['version']} ({installed['path']})", flush=True)

    excluded = config.get("exclude", [])
    excluded_files = {entry["test"] for entry in excluded if "::" not in entry["test"]}
    results: dict[str, Any] = {
        "upstream": UPSTREAM_VERSION,
        "anyio": installed,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "excluded": excluded,
        "import_guards": config.get("import_guard", []),
        "text_patches": config.get("text_patch", []),
        "marker": config.get("marker", {}),
    }

    files: list[tests_run.FileResult] = []
    if not args.no_tests:
        if args.logs:
            args.logs.mkdir(parents=True, exist_ok=True)
        options = tests_run.RunOptions(
            root=root,
            plugin_arg=tests_run.plugin_argument(env),
            test_timeout=args.test_timeout,
            file_timeout=args.file_timeout,
            deadline=deadline - (120 if not args.no_docs else 0),
            deselect=[entry["test"] for entry in excluded if "::" in entry["test"]],
            marker_expr=config.get("marker", {}).get("deselect", "not network"),
            env=env,
            log_dir=args.logs,
        )
        tests_run.prepare(root)
        paths = [
            path
            for path in tests_run.list_test_files(root, args.files)
            if path not in excluded_files
        ]
        # Timing-sensitive upstream tests prefer one file at a time (the default).
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            for result in pool.map(
                lambda path: tests_run.run_file(path, options), paths
            ):
                files.append(result)
                print(report.file_line(result), flush=True)
        results["tests"] = report.tests_summary(files)

    if not args.no_docs:
        examples = docs_run.collect(root)
        docs_run.run_examples(examples, env, deadline)
        results["docs"] = docs_run.summarise(examples)
        print(report.docs_line(results["docs"]), flush=True)

    results["duration_s"] = round(time.monotonic() - started, 1)
    partial = bool(args.files) or args.no_tests or args.no_docs
    if not partial:
        RESULTS_JSON.write_text(
            json.dumps(results, indent=1, sort_keys=True) + "\n", encoding="utf-8"
        )
        RESULTS_MD.write_text(report.markdown(results), encoding="utf-8")
        print(
            f"wrote {RESULTS_JSON.relative_to(REPO)} and {RESULTS_MD.relative_to(REPO)}"
        )
    else:
        print("partial run: results.json/results.md left unchanged")
    print(report.totals_line(results.get("tests")), flush=True)

    if args.no_tests:
        return 0

    outcomes: dict[str, str] = {
        nodeid: outcome
        for result in files
        for nodeid, outcome in result.outcomes.items()
    }
    ran_files = {result.path for result in files}
    expected = _read_expected()
    if args.update_expected:
        kept = {
            nodeid for nodeid in expected if nodeid.partition("::")[0] not in ran_files
        }
        passed = {nodeid for nodeid, outcome in outcomes.items() if outcome == "passed"}
        _write_expected(passed, kept)
        print(f"expected_pass.txt: {len(passed | kept)} tests")
        return 0

    if args.check and not expected:
        print("expected_pass.txt is missing or empty", file=sys.stderr)
        return 1

    failing = sorted(
        nodeid
        for nodeid in expected
        if nodeid.partition("::")[0] in ran_files and outcomes.get(nodeid) != "passed"
    )
    # A test that passes when run again on its own was disturbed by its
    # neighbours (timing, a ResourceWarning from another test's garbage):
    # report it as flaky instead of failing the check.
    flaky = _passing_on_retry(failing, options) if failing else set()
    if flaky:
        print(f"{len(flaky)} expected passes failed once but passed on retry (flaky):")
        for nodeid in sorted(flaky):
            print(f"  {nodeid}: {outcomes.get(nodeid, 'not run')} then passed")
    # On another Python than the list's, upstream's own version checks skip
    # some tests: reported, not counted as regressions.
    skipped_here: list[str] = []
    if _expected_recorded_on() != _this_python():
        # Skipped by a version check, or not collected at all: parameter ids
        # can change with the version (IntEnum's str() changed in 3.11).
        skipped_here = [
            nodeid
            for nodeid in failing
            if nodeid not in flaky and outcomes.get(nodeid, "skipped") == "skipped"
        ]
        if skipped_here:
            print(
                f"{len(skipped_here)} expected passes (recorded on Python "
                f"{_expected_recorded_on()}) are skipped by upstream's tests, or "
                f"not collected under that id, on Python {_this_python()}:"
            )
            for nodeid in skipped_here:
                print(f"  {nodeid}")
    regressions = [
        f"{nodeid}: {outcomes.get(nodeid, 'not run')}"
        for nodeid in failing
        if nodeid not in flaky and nodeid not in skipped_here
    ]
    unchecked = sorted({nodeid.partition("::")[0] for nodeid in expected} - ran_files)
    if unchecked and not args.files:
        regressions += [f"{path}: file not run" for path in unchecked]
    if regressions:
        print(f"{len(regressions)} expected passes regressed:", file=sys.stderr)
        for line in regressions[:200]:
            print(f"  {line}", file=sys.stderr)
        return 1

    print(f"no regressions among {len(expected)} expected passes")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
