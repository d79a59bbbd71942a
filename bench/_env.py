"""The interpreters each implementation runs under, and a record of the machine."""

from __future__ import annotations

import os
import platform
import subprocess
import sys
from dataclasses import dataclass
from importlib import metadata
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

UPSTREAM_ANYIO = "4.16.0"
ROOT = Path(__file__).resolve().parent.parent
UPSTREAM_VENV = ROOT / "bench" / ".venv-upstream"
_MARKER = "bench-requirements.txt"
_APPS_MARKER = "bench-apps-requirements.txt"
# Where `python -m bench --apps` installs the application stack for "ours"
# (our anyio comes from python/ or this interpreter, never from here).
OURS_APPS_SITE = ROOT / "bench" / ".venv-apps-site"

# The application stack of `--apps`, the complete dependency closure pinned
# (installed with --no-deps, so both sides get exactly these). anyio, trio and
# uvloop are not in it: each side keeps its own anyio, and uvloop is pinned to
# this environment's version like the upstream venv's.
APP_REQUIREMENTS = (
    "fastapi==0.163.2",
    "starlette==1.10.0",
    "pydantic==2.14.4",
    "pydantic_core==2.50.5",
    "annotated-doc==0.0.7",
    "annotated-types==0.8.0",
    "typing_extensions==4.16.0",
    "typing-inspection==0.4.5",
    "opentelemetry-api==1.45.2",
    "uvicorn==0.54.0",
    "httptools==0.9.0",
    "h11==0.16.0",
    "click==8.5.1",
    "python-dotenv==1.2.4",
    "PyYAML==6.0.4",
    "watchfiles==1.3.0",
    "websockets==17.4",
    "httpx==0.28.1",
    "httpcore==1.0.9",
    "certifi==2026.10.19.post1",
    "idna==3.20",
)


@dataclass(frozen=True)
class Interpreter:
    """How to start a worker: which python, and with what on PYTHONPATH."""

    impl: str  # "ours", "upstream", "raw" or "baseline"
    python: str
    pythonpath: str | None

    @property
    def worker_impl(self) -> str:
        return "raw" if self.impl == "raw" else "anyio"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PYTHONPATH", None)
        if self.pythonpath:
            env["PYTHONPATH"] = self.pythonpath
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        return env


def installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def ours() -> Interpreter:
    """Our package: the source tree once its extension is built in place
    (the developer build), else whatever this interpreter has installed
    (``pip install .``); the worker's report tells which one it got."""
    package = ROOT / "python" / "anyio"
    if any((package / f"_cpp{suffix}").exists() for suffix in EXTENSION_SUFFIXES):
        return Interpreter("ours", sys.executable, str(ROOT / "python"))
    return Interpreter("ours", sys.executable, None)


def baseline(checkout: Path) -> Interpreter:
    """Another checkout of this project, its extension built in place: the
    "before" of a change, measured in the same run as the "after"."""
    package = checkout / "python" / "anyio"
    if not any((package / f"_cpp{suffix}").exists() for suffix in EXTENSION_SUFFIXES):
        raise SystemExit(
            f"--baseline {checkout}: no extension built in place under {package} "
            "(cmake -S . -B build/dev -G Ninja -DANYIO_DEV_INPLACE=ON && cmake --build build/dev)"
        )
    return Interpreter("baseline", sys.executable, str(checkout / "python"))


def raw() -> Interpreter:
    return Interpreter("raw", sys.executable, None)


def upstream_requirements() -> list[str]:
    """Upstream anyio plus the very trio and uvloop versions we run with."""
    requirements = [f"anyio=={UPSTREAM_ANYIO}"]
    for name in ("trio", "uvloop"):
        version = installed_version(name)
        if version:
            requirements.append(f"{name}=={version}")
    return requirements


def upstream(log: object = print) -> Interpreter:
    """Create (once) and reuse the venv holding upstream anyio."""
    python = UPSTREAM_VENV / "bin" / "python"
    marker = UPSTREAM_VENV / _MARKER
    wanted = "\n".join(upstream_requirements()) + "\n"
    if python.exists() and marker.exists() and marker.read_text() == wanted:
        return Interpreter("upstream", str(python), None)
    log(f"creating {UPSTREAM_VENV.relative_to(ROOT)} with {' '.join(wanted.split())}")  # type: ignore[operator]
    subprocess.run(
        [sys.executable, "-m", "venv", "--clear", str(UPSTREAM_VENV)], check=True
    )
    subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            *wanted.split(),
        ],
        check=True,
    )
    marker.write_text(wanted)
    return Interpreter("upstream", str(python), None)


def _pip_install(python: str, requirements: list[str], *extra: str) -> None:
    subprocess.run(
        [
            python,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            *extra,
            *requirements,
        ],
        check=True,
    )


def app_requirements() -> list[str]:
    wanted = list(APP_REQUIREMENTS)
    version = installed_version("uvloop")
    if version:
        wanted.append(f"uvloop=={version}")
    return wanted


def ours_apps(log: object = print) -> Interpreter:
    """Ours plus the application stack, installed (once) into a directory of
    its own that comes after our package on PYTHONPATH."""
    base = ours()
    wanted = "\n".join(app_requirements()) + "\n"
    marker = OURS_APPS_SITE / _APPS_MARKER
    if not (marker.exists() and marker.read_text() == wanted):
        log(f"installing the app stack into {OURS_APPS_SITE.relative_to(ROOT)}")  # type: ignore[operator]
        if OURS_APPS_SITE.exists():
            import shutil

            shutil.rmtree(OURS_APPS_SITE)
        _pip_install(
            sys.executable, app_requirements(), "--target", str(OURS_APPS_SITE)
        )
        marker.write_text(wanted)
    path = [str(OURS_APPS_SITE)]
    if base.pythonpath:
        path.insert(0, base.pythonpath)
    return Interpreter("ours", base.python, os.pathsep.join(path))


def upstream_apps(log: object = print) -> Interpreter:
    """The upstream venv plus the same application stack."""
    interp = upstream(log)
    wanted = "\n".join(app_requirements()) + "\n"
    marker = UPSTREAM_VENV / _APPS_MARKER
    if not (marker.exists() and marker.read_text() == wanted):
        log(f"installing the app stack into {UPSTREAM_VENV.relative_to(ROOT)}")  # type: ignore[operator]
        _pip_install(interp.python, app_requirements())
        marker.write_text(wanted)
    return interp


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(ROOT), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def machine() -> dict[str, object]:
    try:
        load = list(os.getloadavg())
    except OSError:
        load = []
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "platform": platform.platform(),
        "loadavg_at_start": [round(x, 2) for x in load],
    }


def versions() -> dict[str, object]:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "trio": installed_version("trio"),
        "uvloop": installed_version("uvloop"),
        "upstream_anyio": UPSTREAM_ANYIO,
        "ours_commit": _git("rev-parse", "--short", "HEAD"),
        "ours_dirty": bool(status) if status is not None else None,
    }
