"""python -m conformance.typecheck: upstream's own ``mypy --strict`` run, per package.

Upstream anyio type-checks its ``tests/`` and ``docs/snippets/`` with mypy.
This runs that check from the 4.16.0 sdist twice, once with upstream's anyio
on the module search path and once with ours, and fails when ours gives a
diagnostic that upstream does not (same file, line, code and message), except
for the lines listed in ``typecheck_allowed.txt`` (tests that reach into
upstream's private modules, which this package does not have).

It also runs mypy over ``tests/typing/`` (``assert_type`` checks of our public
signatures) and mypy's stubtest over ``anyio._cpp``.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .sdist import UPSTREAM_VERSION, fetch_pristine

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ALLOWED = HERE / "typecheck_allowed.txt"
STUBTEST_ALLOWLIST = HERE / "stubtest_allowlist.txt"

# Upstream's mypy settings for this check (its pyproject's [tool.mypy] section,
# restated): strict, minus two of strict's flags, and two per-module tweaks.
_CONFIG = """\
[mypy]
strict = True
disallow_any_generics = False
warn_return_any = False
show_error_codes = True
show_column_numbers = False
# The anyio under test is read from MYPYPATH; its own diagnostics are not ours
# to compare (an installed package's are silenced the same way).
[mypy-anyio.*]
ignore_errors = True
[mypy-snippets.contextmanagers.better_context_manager,\
snippets.contextmanagers.broken_context_manager]
disable_error_code = arg-type
[mypy-yourothermodule]
ignore_missing_imports = True
"""

_DIAGNOSTIC = re.compile(
    r"^(?P<path>[^:\s]+\.pyi?):(?P<line>\d+): (?P<kind>error|note): "
)


def upstream_package(cache: Path) -> Path:
    """Directory holding upstream anyio 4.16.0 (pip-installed there, no deps)."""
    target = cache / f"upstream-anyio-{UPSTREAM_VERSION}"
    if (target / "anyio" / "py.typed").is_file():
        return target

    partial = target.with_name(target.name + ".partial")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--no-deps",
            "--no-compile",
            "--upgrade",
            "--target",
            str(partial),
            f"anyio=={UPSTREAM_VERSION}",
        ],
        check=True,
    )
    partial.rename(target)
    return target


def _absolute_pythonpath() -> dict[str, str]:
    """This environment, with PYTHONPATH entries that work from any directory."""
    env = dict(os.environ)
    if env.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.pathsep.join(
            str(Path(entry).resolve()) for entry in env["PYTHONPATH"].split(os.pathsep)
        )
    return env


def ours_package(cache: Path) -> Path:
    """A directory holding the anyio under test's Python sources and stubs.

    The anyio that ``import anyio`` finds (installed, or python/ on PYTHONPATH)
    is copied without its compiled parts: mypy refuses a site-packages folder
    on MYPYPATH, and the copy shows it nothing but anyio.
    """
    probe = subprocess.run(
        [sys.executable, "-c", "import anyio; print(anyio.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        env=_absolute_pythonpath(),
        cwd=tempfile.gettempdir(),
    )
    source = Path(probe.stdout.strip()).parent
    target = cache / "ours-anyio"
    shutil.rmtree(target, ignore_errors=True)
    for path in source.rglob("*"):
        if path.suffix in (".py", ".pyi") or path.name == "py.typed":
            copy = target / "anyio" / path.relative_to(source)
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)
    return target


def run_mypy(
    root: Path,
    targets: list[str],
    package_dir: Path,
    python_version: str,
    cache_dir: Path,
    extra_config: str = "",
) -> list[str]:
    """mypy's error lines for `targets` (relative to `root`), sorted."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "mypy.ini"
        config.write_text(_CONFIG + extra_config, encoding="utf-8")
        env = dict(os.environ)
        env["MYPYPATH"] = str(package_dir)
        env.pop("PYTHONPATH", None)
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mypy",
                "--config-file",
                str(config),
                "--cache-dir",
                str(cache_dir),
                "--python-version",
                python_version,
                "--python-executable",
                sys.executable,
                "--no-error-summary",
                "--hide-error-context",
                *targets,
            ],
            cwd=root,
            env=env,
            capture_output=True,
            text=True,
        )
    if result.returncode not in (0, 1):
        raise RuntimeError(f"mypy failed:\n{result.stdout}\n{result.stderr}")
    lines = [
        line
        for line in result.stdout.splitlines()
        if (match := _DIAGNOSTIC.match(line)) and match["kind"] == "error"
    ]
    return sorted(set(lines))


def read_allowed() -> set[str]:
    if not ALLOWED.exists():
        return set()
    return {
        line.strip()
        for line in ALLOWED.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }


def compare_upstream_run(
    cache: Path, python_versions: list[str], verbose: bool = False
) -> list[str]:
    """Diagnostics ours gives that upstream does not (allow-list applied)."""
    root = fetch_pristine(cache)
    upstream = upstream_package(cache)
    ours = ours_package(cache)
    allowed = read_allowed()
    targets = ["tests", "docs/snippets"]
    extra: list[str] = []
    for version in python_versions:
        tag = version.replace(".", "")
        theirs = run_mypy(
            root, targets, upstream, version, cache / f"mypy-upstream-{tag}"
        )
        mine = run_mypy(root, targets, ours, version, cache / f"mypy-ours-{tag}")
        new = sorted(set(mine) - set(theirs))
        unexpected = [line for line in new if line not in allowed]
        print(
            f"mypy --strict over upstream's tests and docs/snippets (Python {version}):"
            f" {len(theirs)} errors with upstream anyio, {len(mine)} with this one;"
            f" {len(new)} only with this one, {len(new) - len(unexpected)} of them"
            " allowed",
            flush=True,
        )
        if verbose:
            for line in new:
                print(f"  {'allowed ' if line not in unexpected else ''}{line}")
        extra += [f"[{version}] {line}" for line in unexpected]
    return extra


def check_assert_types(cache: Path, python_versions: list[str]) -> list[str]:
    """mypy --strict over tests/typing/ with our anyio: every error is a failure."""
    ours = ours_package(cache)
    errors: list[str] = []
    for version in python_versions:
        tag = version.replace(".", "")
        found = run_mypy(
            REPO,
            ["tests/typing"],
            ours,
            version,
            cache / f"mypy-assert-types-{tag}",
        )
        print(
            f"mypy --strict over tests/typing (Python {version}): {len(found)} errors",
            flush=True,
        )
        errors += [f"[{version}] {line}" for line in found]
    return errors


def run_stubtest(cache: Path) -> list[str]:
    """mypy's stubtest over anyio._cpp against the built extension."""
    # stubtest imports the runtime module, so it needs the real package (with
    # the extension) importable, as it is when this runs.
    env = _absolute_pythonpath()
    command = [sys.executable, "-m", "mypy.stubtest", "anyio._cpp"]
    if STUBTEST_ALLOWLIST.exists():
        command += ["--allowlist", str(STUBTEST_ALLOWLIST)]
    with tempfile.TemporaryDirectory() as tmp:
        result = subprocess.run(
            command, env=env, cwd=tmp, capture_output=True, text=True
        )
    output = (result.stdout + result.stderr).strip()
    print(f"stubtest anyio._cpp: {'ok' if result.returncode == 0 else 'FAILED'}")
    if result.returncode != 0:
        return [output]
    return []


def default_versions() -> list[str]:
    # Upstream's configured target, and the running interpreter's.
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    return ["3.14"] if here == "3.14" else ["3.14", here]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.typecheck", description=__doc__
    )
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "anyio-sdist")
    parser.add_argument(
        "--python-version",
        action="append",
        help="mypy target version (repeatable); default: 3.14 and this interpreter's",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--no-stubtest", action="store_true")
    args = parser.parse_args(argv)
    versions = args.python_version or default_versions()

    failures = compare_upstream_run(args.cache, versions, verbose=args.verbose)
    failures += check_assert_types(args.cache, versions)
    if not args.no_stubtest:
        failures += run_stubtest(args.cache)
    if failures:
        print(f"{len(failures)} typing failures:", file=sys.stderr)
        for line in failures:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
