"""``python -m conformance --downstream``: dependents' own test suites, paired.

For each dependent below, its sdist (which ships its tests) is downloaded once,
and its suite runs in two virtual environments that differ only in ``anyio``:
upstream anyio 4.16.0 from PyPI, and this package's wheel (built once from this
checkout and installed everywhere). The second environment is a copy of the
first with ``anyio`` swapped, so every other package has the same version.
Environments are cached under ``.cache/downstream/`` keyed by the Python
version and the requirement list, so a second run only reinstalls the wheel.

Every test gets an outcome on each side. A test that passes with upstream and
not here is a regression: ``--check`` exits 1 when there is one. Tests failing
on both sides are failures of this machine (root, no network...) and are
listed with their reason. The served-app load test (``served_app.py``) runs in
the FastAPI environments on both sides after the suites.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from . import _recorder

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS_JSON = HERE / "downstream.json"
RESULTS_MD = HERE / "downstream.md"
UPSTREAM_ANYIO = "anyio==4.16.0"
SIDES = ("upstream", "ours")
PIP = ["-m", "pip", "--disable-pip-version-check", "--no-input"]
# Bumped when the way environments are made changes, so old ones are not reused.
ENV_LAYOUT = "1"


@dataclasses.dataclass(frozen=True)
class Project:
    name: str
    version: str
    extras: str
    requirements: tuple[str, ...]
    # A PEP 735 dependency group of the sdist's pyproject.toml, minus some names.
    group: str | None = None
    group_without: tuple[str, ...] = ()
    pytest_args: tuple[str, ...] = ()
    # Tests known to fail on this machine whatever the anyio: node id prefix -> why.
    environment: tuple[tuple[str, str], ...] = ()
    # Rough seconds per side on an idle machine: longest suites start first.
    weight: int = 30

    @property
    def dist(self) -> str:
        return f"{self.name}-{self.version}"


PROJECTS = (
    Project(
        "fastapi",
        "0.165.0",
        "all",
        ("pytest-xdist",),
        group="tests",
        group_without=("coverage", "pytest-cov", "pytest-sugar", "pytest-codspeed"),
        environment=(
            (
                "tests/test_fastapi_cli.py",
                "runs `coverage run`; coverage is left out of the environment",
            ),
        ),
        weight=150,
    ),
    Project(
        "starlette",
        "1.10.0",
        "full",
        (
            "httpx2[zstd]",
            "blockbuster",
            "importlib-metadata",
            "opentelemetry-sdk",
            "pytest",
            "trio",
            "sniffio",
        ),
        environment=(
            (
                "tests/test_staticfiles.py::test_staticfiles_unhandled_os_error_returns_500",
                "expects a permission error; the tests run as root",
            ),
            (
                "tests/test_staticfiles.py::test_staticfiles_with_invalid_dir_permissions_returns_401",
                "expects a permission error; the tests run as root",
            ),
        ),
        weight=40,
    ),
    Project(
        "httpx",
        "0.28.1",
        "brotli,cli,http2,socks,zstd",
        (
            "chardet==5.2.0",
            "cryptography==44.0.0",
            "pytest==8.3.4",
            "trio",
            "trustme==1.2.0",
            "uvicorn==0.32.1",
            "sniffio",
        ),
        environment=(
            ("tests/client/test_proxies.py::test_async_proxy_close", "needs Internet"),
            ("tests/client/test_proxies.py::test_sync_proxy_close", "needs Internet"),
            (
                "tests/client/test_proxies.py::test_proxies_environ",
                "needs Internet",
            ),
            (
                "tests/test_main.py",
                "a newer click deprecates isolated_filesystem (DeprecationWarning,"
                " an error in httpx's settings)",
            ),
            (
                "tests/test_timeouts.py::test_write_timeout[trio]",
                "a newer Trio warns of an async generator collected unfinished"
                " (ResourceWarning, an error in httpx's settings)",
            ),
        ),
        weight=25,
    ),
    Project(
        "httpcore",
        "1.0.9",
        "asyncio,trio,http2,socks",
        (
            "pytest==8.2.2",
            "pytest-httpbin==2.0.0",
            "pytest-trio==0.8.0",
            "werkzeug<3.1",
        ),
        weight=20,
    ),
)


# ---------------------------------------------------------------- helpers


def _log(message: str) -> None:
    print(message, flush=True)


def _run(cmd: list[str], log: Path, **kwargs: Any) -> None:
    with open(log, "a", encoding="utf-8") as out:
        out.write(f"$ {' '.join(cmd)}\n")
        out.flush()
        result = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, **kwargs)
    if result.returncode != 0:
        tail = log.read_text(encoding="utf-8", errors="replace")[-3000:]
        raise SystemExit(f"command failed ({result.returncode}): {cmd}\n{tail}")


def _download_sdist(project: Project, cache: Path) -> Path:
    target = cache / "sdist" / f"{project.dist}.tar.gz"
    if target.is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        subprocess.run(
            [sys.executable, *PIP, "download", "--quiet", "--no-deps"]
            + ["--no-binary", ":all:", "--dest", tmp]
            + [f"{project.name}=={project.version}"],
            check=True,
        )
        found = list(Path(tmp).glob(f"{project.dist}.tar.gz"))
        if not found:
            raise SystemExit(f"pip download left no {project.dist}.tar.gz")
        found[0].rename(target)
    return target


def _unpack(archive: Path, target: Path) -> Path:
    """Unpack archive (one top folder) as target; return target."""
    shutil.rmtree(target, ignore_errors=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        with tarfile.open(archive) as tar:
            if hasattr(tarfile, "data_filter"):
                tar.extractall(tmp, filter="data")
            else:  # pragma: no cover - old patch releases
                tar.extractall(tmp)
        (top,) = Path(tmp).iterdir()
        top.rename(target)
    return target


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(path, "rb") as file:
        return tomllib.load(file)


def _requirement_name(requirement: str) -> str:
    name = requirement
    for stop in "[<>=!~; ":
        name = name.split(stop, 1)[0]
    return name.strip().lower().replace("_", "-")


def _group_requirements(
    pyproject: Path, group: str, without: tuple[str, ...]
) -> list[str]:
    groups = _load_toml(pyproject).get("dependency-groups", {})
    out: list[str] = []

    def expand(name: str) -> None:
        for entry in groups[name]:
            if isinstance(entry, dict):
                expand(entry["include-group"])
            elif _requirement_name(entry) not in without:
                out.append(entry)

    expand(group)
    return out


def _requirements(project: Project, source: Path) -> list[str]:
    extra = f"[{project.extras}]" if project.extras else ""
    reqs = [f"{project.dist}{extra}", *project.requirements, "pytest-timeout"]
    if project.group:
        reqs += _group_requirements(
            source / "pyproject.toml", project.group, project.group_without
        )
    return reqs


def _tree_hash(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in paths:
        files = (
            sorted(p for p in path.rglob("*") if p.is_file())
            if path.is_dir()
            else [path]
        )
        for file in files:
            if "__pycache__" in file.parts or file.suffix in (".so", ".pyc"):
                continue
            digest.update(str(file.relative_to(REPO)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def build_wheel(cache: Path, log: Path) -> Path:
    """This checkout's wheel, built once per source state."""
    key = _tree_hash(
        [
            REPO / "cpp",
            REPO / "python",
            REPO / "CMakeLists.txt",
            REPO / "pyproject.toml",
        ]
    )
    folder = cache / "wheel" / f"{key}-py{sys.version_info[0]}{sys.version_info[1]}"
    found = sorted(folder.glob("anyio-*.whl"))
    if found:
        return found[0]
    shutil.rmtree(folder, ignore_errors=True)
    partial = folder.with_name(folder.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    _log(f"building this package's wheel ({key})")
    _run(
        [
            sys.executable,
            *PIP,
            "wheel",
            "--no-deps",
            "--wheel-dir",
            str(partial),
            str(REPO),
        ],
        log,
    )
    partial.rename(folder)
    return sorted(folder.glob("anyio-*.whl"))[0]


# ---------------------------------------------------------------- environments


def _venv_python(venv: Path) -> Path:
    return venv / "bin" / "python"


def _clone_venv(source: Path, target: Path) -> None:
    """Copy a virtualenv, pointing its scripts at the copy."""
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target, symlinks=True)
    old, new = str(source).encode(), str(target).encode()
    for script in (target / "bin").iterdir():
        if script.is_symlink() or not script.is_file():
            continue
        data = script.read_bytes()
        if old in data[:4096]:
            script.write_bytes(data.replace(old, new))
    cfg = target / "pyvenv.cfg"
    cfg.write_text(cfg.read_text(encoding="utf-8").replace(str(source), str(target)))


def _freeze(python: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(python), *PIP, "list", "--format=json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return {entry["name"].lower(): entry["version"] for entry in json.loads(out)}


def prepare_envs(
    project: Project, cache: Path, wheel: Path, logs: Path
) -> dict[str, Path]:
    """Return {side: venv}; build (or reuse) both for project."""
    sdist = _download_sdist(project, cache)
    build_src = cache / "build-src" / project.dist
    if not (build_src / "pyproject.toml").is_file():
        _unpack(sdist, build_src)
    reqs = _requirements(project, build_src)
    key_text = json.dumps(
        [ENV_LAYOUT, platform.python_version(), sys.executable, UPSTREAM_ANYIO, reqs]
    )
    key = hashlib.sha256(key_text.encode()).hexdigest()[:12]
    venvs = {side: cache / "venv" / f"{project.dist}-{side}-{key}" for side in SIDES}
    log = logs / f"{project.name}-venv.log"
    ready = venvs["upstream"] / ".ready"
    if not ready.is_file():
        _log(f"{project.name}: building the environment ({len(reqs)} requirements)")
        started = time.monotonic()
        for venv in venvs.values():
            shutil.rmtree(venv, ignore_errors=True)
        _run([sys.executable, "-m", "venv", str(venvs["upstream"])], log)
        python = str(_venv_python(venvs["upstream"]))
        _run([python, *PIP, "install", "--quiet", UPSTREAM_ANYIO], log)
        # Install from the unpacked sdist (its requirement spec names the dist).
        local = [
            str(build_src) + r[len(project.dist) :] if r.startswith(project.dist) else r
            for r in reqs
        ]
        _run([python, *PIP, "install", "--quiet", UPSTREAM_ANYIO, *local], log)
        ready.write_text(key_text, encoding="utf-8")
        _log(f"{project.name}: environment built in {time.monotonic() - started:.0f} s")
    stamp = venvs["ours"] / ".wheel"
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if not stamp.is_file() or stamp.read_text(encoding="utf-8") != digest:
        _clone_venv(venvs["upstream"], venvs["ours"])
        (venvs["ours"] / ".ready").unlink(missing_ok=True)
        _run(
            [str(_venv_python(venvs["ours"])), *PIP, "install", "--quiet"]
            + ["--no-deps", "--force-reinstall", str(wheel)],
            log,
        )
        stamp.write_text(digest, encoding="utf-8")
    return venvs


# ---------------------------------------------------------------- running


@dataclasses.dataclass
class SuiteRun:
    project: str
    side: str
    outcomes: dict[str, str] = dataclasses.field(default_factory=dict)
    messages: dict[str, str] = dataclasses.field(default_factory=dict)
    collect_errors: dict[str, str] = dataclasses.field(default_factory=dict)
    processes: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    duration_s: float = 0.0


def _fold(records: list[dict[str, Any]], run: SuiteRun) -> list[str]:
    """Fold one process's records into run; return node ids started, unfinished."""
    started: dict[str, None] = {}
    for record in records:
        nodeid = record["nodeid"]
        event = record["event"]
        if event == "collect-error":
            run.collect_errors[nodeid] = record["message"]
        elif event == "start":
            started[nodeid] = None
        elif event == "hard-timeout":
            run.outcomes[nodeid] = "hung"
            run.messages[nodeid] = "no end within the hard time limit (process ended)"
        elif event == "report":
            previous = run.outcomes.get(nodeid)
            outcome = record["outcome"]
            when = record["when"]
            if outcome == "failed":
                if previous == "failed":
                    continue
                new = "failed" if when == "call" or previous == "passed" else "error"
                run.outcomes[nodeid] = new
                run.messages.setdefault(nodeid, record.get("message", ""))
            elif outcome == "skipped":
                if previous not in ("failed", "error"):
                    run.outcomes[nodeid] = "xfailed" if record["xfail"] else "skipped"
                    if record.get("reason"):
                        run.messages[nodeid] = record["reason"]
            elif when == "call":
                run.outcomes[nodeid] = "xpassed" if record["xfail"] else "passed"
            elif previous is None and when == "setup":
                run.outcomes[nodeid] = "passed"
    return [nodeid for nodeid in started if nodeid not in run.outcomes]


# How many times a regression is run again on each side (see rerun()).
RERUNS = 3


def run_suite(
    project: Project,
    side: str,
    venv: Path,
    cache: Path,
    logs: Path,
    options: argparse.Namespace,
    only: list[str] | None = None,
) -> SuiteRun:
    run = SuiteRun(project.name, side)
    name = f"{project.name}-{side}" + ("-retry" if only else "")
    source = cache / "run" / side / project.dist
    if not only:
        _unpack(cache / "sdist" / f"{project.dist}.tar.gz", source)
    plugin_dir = cache / "plugin"
    plugin_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy2(HERE / "_recorder.py", plugin_dir / "_recorder.py")
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTHON", "PYTEST", "VIRTUAL_ENV", "CONFORMANCE_"))
    }
    env.update(
        PYTHONPATH=str(plugin_dir),
        PYTHONHASHSEED="0",
        PYTHONDONTWRITEBYTECODE="1",
        PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}",
        VIRTUAL_ENV=str(venv),
    )
    env[_recorder.HARD_TIMEOUT_ENV] = str(options.test_timeout + 30)
    cmd = [
        str(_venv_python(venv)),
        "-m",
        "pytest",
        "-p",
        "no:cacheprovider",
        "-p",
        "_recorder",
        "--timeout",
        str(options.test_timeout),
        "-q",
        "-rfE",
        *project.pytest_args,
    ]
    if project.name == "fastapi" and options.xdist > 1:
        cmd += ["-n", str(options.xdist)]
    cmd += only or ["tests"]
    started = time.monotonic()
    done: list[str] = []
    log = logs / f"{name}.log"
    log.unlink(missing_ok=True)
    for attempt in range(options.restarts + 1):
        record_path = logs / f"{name}.{attempt}.jsonl"
        record_path.unlink(missing_ok=True)
        env[_recorder.RECORD_ENV] = str(record_path)
        skip_path = logs / f"{name}.skip"
        skip_path.write_text("".join(f"{n}\n" for n in done), encoding="utf-8")
        env[_recorder.SKIP_ENV] = str(skip_path)
        limit = max(60.0, options.deadline - time.monotonic())
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"$ {' '.join(cmd)}  (attempt {attempt})\n")
            out.flush()
            proc = subprocess.Popen(
                cmd,
                cwd=source,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
            try:
                code = proc.wait(timeout=limit)
                timed_out = False
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                code = proc.wait()
                timed_out = True
        records = []
        if record_path.is_file():
            for line in record_path.read_text(encoding="utf-8").splitlines():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError:
                    pass  # a line cut short by the kill
        unfinished = _fold(records, run)
        for nodeid in unfinished:
            run.outcomes[nodeid] = "crashed" if not timed_out else "hung"
            run.messages[nodeid] = (
                f"the pytest process ended (exit {code}) during this test"
                if not timed_out
                else "the run's time budget ran out during this test"
            )
        run.processes.append({"exit": code, "timed_out": timed_out})
        progressed = len(run.outcomes) > len(done)
        done = sorted(run.outcomes)
        # pytest's own exit codes (0 all passed, 1 some failed, 2-5 interrupted,
        # internal or usage error, no tests) end the suite; a crash or the
        # watchdog resumes after the test it ended, unless time is up.
        if code in (0, 1, 2, 3, 4, 5) or timed_out or not progressed:
            break
    run.duration_s = round(time.monotonic() - started, 1)
    return run


# ---------------------------------------------------------------- report


def _environment_reason(project: Project, nodeid: str) -> str | None:
    for prefix, reason in project.environment:
        if nodeid.startswith(prefix):
            return reason
    return None


def _first_line(message: str) -> str:
    lines = [line.strip() for line in message.strip().splitlines() if line.strip()]
    # The first "E   " line of pytest's report (plus what an assert compared),
    # else the last line.
    errors = [line[1:].strip() for line in lines if line.startswith("E ")]
    if not errors:
        return (lines[-1] if lines else "")[:300]
    text = errors[0]
    if text.startswith(("assert", "AssertionError")):
        # Name the assertion: pytest marks its source line with ">".
        first = next(i for i, line in enumerate(lines) if line.startswith("E "))
        source = [line for line in lines[:first] if line.startswith(">")]
        if source:
            text = f"{source[-1][1:].strip()} -> {text}"
    where = [line for line in errors[1:] if line.startswith("+") and "where" in line]
    if where:
        text += f" ({where[0].lstrip('+ ')})"
    return text[:300]


def compare(project: Project, runs: dict[str, SuiteRun]) -> dict[str, Any]:
    up, ours = runs["upstream"], runs["ours"]
    nodeids = sorted(set(up.outcomes) | set(ours.outcomes))
    counts: dict[str, dict[str, int]] = {side: {} for side in SIDES}
    regressions, environment, fixed = [], [], []
    for nodeid in nodeids:
        a = up.outcomes.get(nodeid, "not run")
        b = ours.outcomes.get(nodeid, "not run")
        counts["upstream"][a] = counts["upstream"].get(a, 0) + 1
        counts["ours"][b] = counts["ours"].get(b, 0) + 1
        # A non-strict xfail may pass or not (timing); either is fine.
        good = ("passed", "skipped", "xfailed", "xpassed")
        if a == "passed" and b != "passed":
            regressions.append(
                {
                    "test": nodeid,
                    "outcome": b,
                    "reason": _first_line(ours.messages.get(nodeid, "")),
                }
            )
        elif a not in good:
            reason = _environment_reason(project, nodeid)
            environment.append(
                {
                    "test": nodeid,
                    "upstream": a,
                    "ours": b,
                    "reason": reason
                    or "fails with upstream anyio too: "
                    + _first_line(up.messages.get(nodeid, "")),
                }
            )
        elif a != b and not (a in good and b in good):
            fixed.append({"test": nodeid, "upstream": a, "ours": b})
    return {
        "project": project.name,
        "version": project.version,
        "tests": len(nodeids),
        "counts": counts,
        "regressions": regressions,
        "environment": environment,
        "other_differences": fixed,
        "collect_errors": {side: runs[side].collect_errors for side in SIDES},
        "duration_s": {side: runs[side].duration_s for side in SIDES},
        "processes": {side: runs[side].processes for side in SIDES},
    }


def _cell(counts: dict[str, int]) -> str:
    order = (
        "passed",
        "failed",
        "error",
        "hung",
        "crashed",
        "skipped",
        "xfailed",
        "xpassed",
    )
    parts = [f"{counts[key]} {key}" for key in order if counts.get(key)]
    parts += [f"{n} {key}" for key, n in sorted(counts.items()) if key not in order]
    return ", ".join(parts) or "-"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# Dependents' test suites: upstream anyio 4.16.0 vs this package",
        "",
        "Generated by `python -m conformance --downstream`; do not edit.",
        f"Python {results['python']} on {results['platform']};"
        f" this package: `{results['wheel']}`.",
        "",
        "| project | tests | with upstream anyio | with this package | passes upstream, not here |",
        "|---|---:|---|---|---:|",
    ]
    for entry in results["projects"]:
        lines.append(
            f"| {entry['project']} {entry['version']} | {entry['tests']} "
            f"| {_cell(entry['counts']['upstream'])} | {_cell(entry['counts']['ours'])} "
            f"| {len(entry['regressions'])} |"
        )
    for entry in results["projects"]:
        if entry["regressions"]:
            lines += ["", f"## {entry['project']}: passes with upstream, not here", ""]
            lines += ["| test | here | reason |", "|---|---|---|"]
            for item in entry["regressions"]:
                reason = item["reason"].replace("|", "\\|")
                lines.append(f"| `{item['test']}` | {item['outcome']} | {reason} |")
    flaky_rows = [
        (e["project"], item) for e in results["projects"] for item in e.get("flaky", [])
    ]
    if flaky_rows:
        lines += [
            "",
            "## Flaky: passed here, or failed with upstream too, on a rerun",
            "",
        ]
        lines += ["| project | test | reason |", "|---|---|---|"]
        for name, item in flaky_rows:
            reason = item["reason"].replace("|", "\\|")
            lines.append(f"| {name} | `{item['test']}` | {reason} |")
    lines += ["", "## Failures of the environment (both sides)", ""]
    env_rows = [
        (e["project"], item) for e in results["projects"] for item in e["environment"]
    ]
    if env_rows:
        lines += ["| project | test | upstream / here | reason |", "|---|---|---|---|"]
        for name, item in env_rows:
            reason = item["reason"].replace("|", "\\|")
            lines.append(
                f"| {name} | `{item['test']}` | {item['upstream']} / {item['ours']} | {reason} |"
            )
    else:
        lines.append("None.")
    others = [
        (e["project"], item)
        for e in results["projects"]
        for item in e["other_differences"]
    ]
    if others:
        lines += ["", "## Other differences", ""]
        lines += ["| project | test | upstream | here |", "|---|---|---|---|"]
        for name, item in others:
            lines.append(
                f"| {name} | `{item['test']}` | {item['upstream']} | {item['ours']} |"
            )
    served = results.get("served_app")
    if served:
        lines += ["", "## Served app under load (`conformance/served_app.py`)", ""]
        lines += [
            "| anyio | loop | requests | non-2xx | errors | worker threads (distinct) | OS threads start/end | result |",
            "|---|---|---:|---:|---:|---:|---|---|",
        ]
        for row in served:
            lines.append(
                f"| {row['side']} | {row['loop']} | {row.get('requests', '-')} "
                f"| {row.get('non_2xx', '-')} | {row.get('errors', '-')} "
                f"| {row.get('worker_threads', '-')} "
                f"| {row.get('threads_start', '-')}/{row.get('threads_end', '-')} "
                f"| {'ok' if row.get('ok') else 'FAILED: ' + str(row.get('problem', ''))[:200]} |"
            )
    lines += [
        "",
        f"Wall time {results['duration_s']} s (environments {results['setup_s']} s).",
        "",
    ]
    return "\n".join(lines)


# ---------------------------------------------------------------- served app


def run_served_app(
    venvs: dict[str, Path], logs: Path, requests: int
) -> list[dict[str, Any]]:
    rows = []
    for side in SIDES:
        for loop in ("asyncio", "uvloop"):
            out = logs / f"served-{side}-{loop}.json"
            out.unlink(missing_ok=True)
            cmd = [
                str(_venv_python(venvs[side])),
                str(HERE / "served_app.py"),
                "--loop",
                loop,
                "--requests",
                str(requests),
                "--json",
                str(out),
            ]
            env = {
                k: v
                for k, v in os.environ.items()
                if not k.startswith(("PYTHON", "VIRTUAL_ENV"))
            }
            with open(logs / f"served-{side}-{loop}.log", "w", encoding="utf-8") as log:
                try:
                    subprocess.run(
                        cmd, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=180
                    )
                except subprocess.TimeoutExpired:
                    pass
            try:
                row = json.loads(out.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError):
                row = {"ok": False, "problem": f"no result (see {log.name})"}
            row.update(side=side, loop=loop)
            rows.append(row)
            _log(
                f"served app [{side}, {loop}]: "
                + ("ok" if row.get("ok") else f"FAILED {row.get('problem')}")
                + f" ({row.get('requests', 0)} requests, {row.get('rate', 0)}/s)"
            )
    return rows


# ---------------------------------------------------------------- main


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance --downstream",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--check", action="store_true", help="exit 1 on any regression")
    parser.add_argument(
        "--cache",
        type=Path,
        default=REPO / ".cache" / "downstream",
        help="sdists, wheel, environments and logs (default .cache/downstream)",
    )
    parser.add_argument("--projects", nargs="*", help="only these dependents")
    parser.add_argument("--wheel", type=Path, help="this package's wheel (else built)")
    parser.add_argument("--jobs", type=int, default=2, help="suites run at once")
    parser.add_argument(
        "--xdist", type=int, default=1, help="pytest-xdist workers for fastapi"
    )
    parser.add_argument("--test-timeout", type=int, default=60)
    parser.add_argument("--restarts", type=int, default=4)
    parser.add_argument(
        "--max-retry", type=int, default=40, help="rerun at most this many regressions"
    )
    parser.add_argument(
        "--budget", type=float, default=20 * 60, help="seconds, whole run"
    )
    parser.add_argument("--no-served-app", action="store_true")
    parser.add_argument("--served-requests", type=int, default=3000)
    parser.add_argument(
        "--no-write", action="store_true", help="leave downstream.md as is"
    )
    options = parser.parse_args(argv)
    started = time.monotonic()
    options.deadline = started + options.budget
    cache: Path = options.cache.resolve()
    logs = cache / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    projects = [
        p for p in PROJECTS if not options.projects or p.name in options.projects
    ]

    wheel = (
        options.wheel.resolve()
        if options.wheel
        else build_wheel(cache, logs / "wheel.log")
    )
    _log(f"this package: {wheel.name}")

    # Environments: two builders at a time (pip is mostly waiting on I/O).
    with ThreadPoolExecutor(max_workers=2) as pool:
        envs = dict(
            zip(
                [p.name for p in projects],
                pool.map(lambda p: prepare_envs(p, cache, wheel, logs), projects),
                strict=True,
            )
        )
    setup_s = round(time.monotonic() - started, 1)
    versions: dict[str, dict[str, Any]] = {}
    for project in projects:
        frozen = {
            side: _freeze(_venv_python(envs[project.name][side])) for side in SIDES
        }
        if not frozen["ours"].get("anyio", "").startswith("4.16.0+"):
            raise SystemExit(
                f"{project.name}: anyio in 'ours' is {frozen['ours'].get('anyio')}"
            )
        if frozen["upstream"].get("anyio") != "4.16.0":
            raise SystemExit(
                f"{project.name}: upstream anyio is {frozen['upstream'].get('anyio')}"
            )
        differ = sorted(
            name
            for name in set(frozen["upstream"]) | set(frozen["ours"])
            if name != "anyio"
            and frozen["upstream"].get(name) != frozen["ours"].get(name)
        )
        if differ:
            raise SystemExit(
                f"{project.name}: environments differ besides anyio: {differ}"
            )
        versions[project.name] = frozen["upstream"]

    jobs = sorted(
        ((p, side) for p in projects for side in SIDES), key=lambda job: -job[0].weight
    )
    runs: dict[str, dict[str, SuiteRun]] = {p.name: {} for p in projects}
    lock = threading.Lock()

    def work(job: tuple[Project, str]) -> None:
        project, side = job
        run = run_suite(project, side, envs[project.name][side], cache, logs, options)
        counts: dict[str, int] = {}
        for outcome in run.outcomes.values():
            counts[outcome] = counts.get(outcome, 0) + 1
        with lock:
            runs[project.name][side] = run
            _log(f"{project.name} [{side}]: {_cell(counts)} in {run.duration_s} s")

    # The two sides of one project never run at once: a suite's fixtures may
    # bind fixed ports (httpx's test server does), so a worker takes the
    # longest job whose project is not running.
    pending = list(jobs)
    running: set[str] = set()
    turn = threading.Condition()
    failures: list[BaseException] = []

    def worker() -> None:
        while True:
            with turn:
                while True:
                    job = next((j for j in pending if j[0].name not in running), None)
                    if job is not None or not pending:
                        break
                    turn.wait()
                if job is None:
                    return
                pending.remove(job)
                running.add(job[0].name)
            try:
                work(job)
            except BaseException as exc:  # re-raised below, in the main thread
                failures.append(exc)
            finally:
                with turn:
                    running.discard(job[0].name)
                    turn.notify_all()

    workers = [threading.Thread(target=worker) for _ in range(max(1, options.jobs))]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    if failures:
        raise failures[0]

    compared = [compare(p, runs[p.name]) for p in projects]

    # A regression is a test that passes with upstream and fails here. Each is
    # run again on its own, up to RERUNS times per side (a hung test is not:
    # it would cost its whole time limit; many at once are real):
    # - passing here on a rerun: a neighbour or timing disturbed the first run;
    # - failing with upstream too on a rerun: its outcome does not depend on
    #   which anyio runs it (say, when the garbage collector gets to an
    #   unfinished async generator), and upstream's pass was luck.
    # Either is reported as flaky, with the reason, and does not fail --check.
    def rerun(pair: tuple[Project, dict[str, Any]]) -> None:
        project, entry = pair
        nodeids = [
            item["test"] for item in entry["regressions"] if item["outcome"] != "hung"
        ]
        if not nodeids or len(nodeids) > options.max_retry:
            return
        why: dict[str, str] = {}
        # (side, whether a pass there makes the test flaky, why)
        for side, flaky_if_passed, reason in (
            ("ours", True, "passed here on a rerun"),
            ("upstream", False, "failed with upstream anyio too on a rerun"),
        ):
            for _ in range(RERUNS):
                remaining = [n for n in nodeids if n not in why]
                if not remaining:
                    break
                retry = run_suite(
                    project,
                    side,
                    envs[project.name][side],
                    cache,
                    logs,
                    options,
                    remaining,
                )
                for nodeid in remaining:
                    if (retry.outcomes.get(nodeid) == "passed") == flaky_if_passed:
                        why[nodeid] = reason
        entry["flaky"] = [
            dict(item, reason=f"{why[item['test']]}; first run: {item['reason']}")
            for item in entry["regressions"]
            if item["test"] in why
        ]
        entry["regressions"] = [
            item for item in entry["regressions"] if item["test"] not in why
        ]
        if why:
            _log(f"{project.name}: {len(why)} regressions are flaky (see the report)")

    with ThreadPoolExecutor(max_workers=max(1, options.jobs)) as pool:
        list(pool.map(rerun, zip(projects, compared, strict=True)))
    served: list[dict[str, Any]] = []
    if not options.no_served_app and "fastapi" in envs:
        served = run_served_app(envs["fastapi"], logs, options.served_requests)

    results = {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "wheel": wheel.name,
        "projects": compared,
        "served_app": served,
        "versions": versions,
        "setup_s": setup_s,
        "duration_s": round(time.monotonic() - started, 1),
    }
    partial = bool(options.projects)
    (logs / "downstream.json").write_text(json.dumps(results, indent=1) + "\n")
    if not options.no_write and not partial:
        RESULTS_JSON.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
        RESULTS_MD.write_text(markdown(results), encoding="utf-8")
        _log(
            f"wrote {RESULTS_MD.relative_to(REPO)} and {RESULTS_JSON.relative_to(REPO)}"
        )
    else:
        (logs / "downstream.md").write_text(markdown(results), encoding="utf-8")
        _log(f"partial run: see {logs / 'downstream.md'}")

    regressions = [(e["project"], r) for e in compared for r in e["regressions"]]
    bad_served = [row for row in served if not row.get("ok")]
    for entry in compared:
        for side in SIDES:
            for nodeid, message in entry["collect_errors"][side].items():
                _log(
                    f"{entry['project']} [{side}] collection error {nodeid}: {_first_line(message)}"
                )
    if regressions:
        _log(f"{len(regressions)} tests pass with upstream anyio and not here:")
        for name, item in regressions:
            _log(f"  {name}: {item['test']}: {item['outcome']}: {item['reason']}")
    for row in bad_served:
        _log(f"served app failed [{row['side']}, {row['loop']}]: {row.get('problem')}")
    total = sum(entry["counts"]["ours"].get("passed", 0) for entry in compared)
    failed = len(regressions)
    _log(f"downstream: {total} passed, {failed} failed")
    _log(f"wall time {results['duration_s']} s (environments {setup_s} s)")
    if options.check and (regressions or bad_served):
        return 1
    return 0
