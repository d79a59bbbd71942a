"""Run upstream's tests/ file by file against the installed anyio.

Each test file runs in its own pytest process, with ``_recorder`` writing one
JSON line per event. A process that crashes or hangs is killed and the file is
resumed after the test that was running, which is recorded as crashed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests._backends import BACKEND_IDS

from . import _recorder

NO_BACKEND = "none"
OUTCOMES = (
    "passed",
    "failed",
    "error",
    "skipped",
    "xfailed",
    "xpassed",
    "crashed",
    "timeout",
)
MAX_RESUMES = 25
# What results.json keeps of a failure's text (the end).
MESSAGE_CHARS = 1500

# Our own settings for upstream's suite (upstream keeps them in its pyproject.toml,
# which we do not unpack): auto mode, strict xfail, warnings as errors.
PYTEST_INI = """\
[pytest]
testpaths = tests
anyio_mode = auto
xfail_strict = true
filterwarnings =
    error
markers =
    network: needs Internet access
"""


@dataclass
class RunOptions:
    root: Path
    plugin_arg: str
    test_timeout: int
    file_timeout: int
    deadline: float
    deselect: list[str] = field(default_factory=list)
    marker_expr: str = "not network"
    env: dict[str, str] = field(default_factory=dict)
    log_dir: Path | None = None


@dataclass
class FileResult:
    path: str
    outcomes: dict[str, str] = field(default_factory=dict)
    collect_errors: list[str] = field(default_factory=list)
    deselected: int = 0
    status: str = "ok"  # ok | crashed | timeout | not-run
    duration: float = 0.0
    messages: dict[str, str] = field(default_factory=dict)


def backend_of(nodeid: str) -> str:
    """The backend id in a test's parameters, or "none" for backend-free tests."""
    _, bracket, params = nodeid.partition("[")
    if not bracket:
        return NO_BACKEND

    for token in params.rstrip("]").split("-"):
        if token in BACKEND_IDS:
            return token

    return NO_BACKEND


def _outcome(reports: list[dict[str, object]]) -> str:
    by_phase = {str(report["when"]): report for report in reports}
    setup, call, teardown = (
        by_phase.get(phase) for phase in ("setup", "call", "teardown")
    )
    result = "passed"
    if setup is not None and setup["outcome"] == "failed":
        return "error"
    if setup is not None and setup["outcome"] == "skipped":
        result = "xfailed" if setup["xfail"] else "skipped"
    elif call is not None:
        if call["outcome"] == "failed":
            result = "failed"
        elif call["outcome"] == "skipped":
            result = "xfailed" if call["xfail"] else "skipped"
        elif call["xfail"]:
            result = "xpassed"

    if teardown is not None and teardown["outcome"] == "failed" and result != "failed":
        result = "error"

    return result


def plugin_argument(env: dict[str, str]) -> str:
    """How to load the installed anyio's plugin: by entry point if it has one."""
    probe = (
        "from importlib.metadata import entry_points\n"
        "eps = entry_points(group='pytest11')\n"
        "print(any(ep.name == 'anyio' and ep.value.startswith('anyio.pytest_plugin') for ep in eps))"
    )
    output = subprocess.run(
        [sys.executable, "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return "anyio" if output.strip() == "True" else "anyio.pytest_plugin"


def _command(options: RunOptions, targets: list[str]) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "pytest",
        "-c",
        str(options.root / "pytest.ini"),
        "--rootdir",
        str(options.root),
        "--confcutdir",
        str(options.root),
        "-p",
        options.plugin_arg,
        "-p",
        "conformance._recorder",
        "-p",
        "pytest_mock",
        "-p",
        "timeout",
        "-p",
        "no:asyncio",
        "-p",
        "no:trio",
        "-p",
        "no:cacheprovider",
        "-q",
        "--tb=short",
        "-rN",
        f"--timeout={options.test_timeout}",
        "-m",
        options.marker_expr,
        *targets,
    ]
    for nodeid in options.deselect:
        command += ["--deselect", nodeid]
    return command


def _read_records(record: Path) -> list[dict[str, object]]:
    if not record.exists():
        return []

    records = []
    for line in record.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # the process died mid-line

    return records


def run_bounded(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str],
    stdout: object,
    timeout: float,
) -> int | None:
    """Run `command`; kill its process group after `timeout`. Exit code, None if killed."""
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=stdout,  # type: ignore[arg-type]
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        process.wait()
        return None
    except BaseException:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise


def run_file(
    path: str, options: RunOptions, only: list[str] | None = None
) -> FileResult:
    """Run one test file (or only the given node ids of it), resuming after crashes."""
    result = FileResult(path)
    reports: dict[str, list[dict[str, object]]] = {}
    skip: list[str] = []
    started = time.monotonic()
    for attempt in range(MAX_RESUMES + 1):
        remaining = options.deadline - time.monotonic()
        if remaining <= 5:
            result.status = "not-run" if attempt == 0 else "timeout"
            break

        with tempfile.TemporaryDirectory() as tmp:
            record = Path(tmp) / "record.jsonl"
            env = {
                **options.env,
                _recorder.RECORD_ENV: str(record),
                # Past pytest-timeout's own limit, the watchdog ends the process.
                _recorder.HARD_TIMEOUT_ENV: str(options.test_timeout + 15),
                _recorder.UPSTREAM_SUITE_ENV: "1",
            }
            if attempt:
                # Resume after the crash: skip everything already reported.
                done_file = Path(tmp) / "done.txt"
                done_file.write_text("\n".join([*reports, *skip]), encoding="utf-8")
                env[_recorder.SKIP_ENV] = str(done_file)
            log_path = (
                options.log_dir / (path.replace("/", "_") + f".{attempt}.log")
                if options.log_dir
                else Path(tmp) / "pytest.log"
            )
            log = open(log_path, "w", encoding="utf-8")
            try:
                exit_code = run_bounded(
                    _command(options, only or [path]),
                    cwd=options.root,
                    env=env,
                    stdout=log,
                    timeout=min(options.file_timeout, remaining),
                )
                killed = exit_code is None or exit_code == _recorder.HARD_TIMEOUT_EXIT
            finally:
                log.close()

            events = _read_records(record)
            if not events and exit_code not in (0, 5):
                # pytest did not even start the session (bad option, broken
                # conftest...): keep its own words, they are the only clue.
                tail = log_path.read_text(encoding="utf-8", errors="replace")[-2000:]
                result.collect_errors.append(f"pytest exited with {exit_code}: {tail}")
                result.status = "error"
                break

            running: str | None = None
            for event in events:
                kind, nodeid = event["event"], str(event.get("nodeid", ""))
                if kind == "start":
                    running = nodeid
                elif kind == "report":
                    reports.setdefault(nodeid, []).append(event)
                    if event["when"] == "teardown":
                        running = None
                    if event.get("message"):
                        result.messages.setdefault(
                            nodeid, str(event["message"])[-MESSAGE_CHARS:]
                        )
                elif kind == "collect-error":
                    result.collect_errors.append(
                        f"{nodeid}: {event.get('message', '')}"
                    )
                elif kind == "deselected" and attempt == 0 and nodeid not in reports:
                    result.deselected += 1

        if running is None and not killed:
            break

        # Record the test that was running as crashed (or hung) and go on after it.
        if running is not None:
            result.outcomes[running] = "timeout" if killed else "crashed"
            skip.append(running)
        else:
            result.status = "timeout" if killed else "crashed"
            break
    else:
        result.status = "crashed"

    for nodeid, events in reports.items():
        if nodeid not in result.outcomes:
            result.outcomes[nodeid] = _outcome(events)

    result.duration = round(time.monotonic() - started, 1)
    return result


def prepare(root: Path) -> None:
    """Write our pytest configuration next to upstream's tests/."""
    (root / "pytest.ini").write_text(PYTEST_INI, encoding="utf-8")


def list_test_files(root: Path, only: list[str] | None) -> list[str]:
    files = sorted(
        str(path.relative_to(root)) for path in (root / "tests").rglob("test_*.py")
    )
    if only:
        files = [
            name
            for name in files
            if any(name.endswith(part) or part in name for part in only)
        ]
    return files
