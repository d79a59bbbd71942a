"""Fetch the upstream sdist once and unpack only its tests/ and docs/."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

UPSTREAM_VERSION = "4.16.0"
_KEEP = ("tests/", "docs/")


def _download(download_dir: Path) -> Path:
    existing = sorted(download_dir.glob(f"anyio-{UPSTREAM_VERSION}.tar.gz"))
    if existing:
        return existing[0]

    download_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--no-binary",
            ":all:",
            "--disable-pip-version-check",
            "--dest",
            str(download_dir),
            f"anyio=={UPSTREAM_VERSION}",
        ],
        check=True,
    )
    found = sorted(download_dir.glob(f"anyio-{UPSTREAM_VERSION}.tar.gz"))
    if not found:
        raise RuntimeError(
            f"pip download left no anyio-{UPSTREAM_VERSION}.tar.gz in {download_dir}"
        )

    return found[0]


def _extract(archive: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    with tarfile.open(archive) as tar:
        members = []
        for member in tar.getmembers():
            # "anyio-4.16.0/tests/..." -> keep tests/ and docs/ only (never src/)
            _, _, inner = member.name.partition("/")
            if not inner.startswith(_KEEP) or not (member.isfile() or member.isdir()):
                continue
            member.name = inner
            members.append(member)

        if sys.version_info >= (3, 12) or hasattr(tarfile, "data_filter"):
            tar.extractall(partial, members=members, filter="data")
        else:  # pragma: no cover - old 3.10/3.11 patch releases
            tar.extractall(partial, members=members)

    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def fetch(cache_dir: Path) -> Path:
    """Return the directory holding upstream's tests/ and docs/, fetching if needed."""
    target = cache_dir / f"anyio-{UPSTREAM_VERSION}"
    if (target / "tests" / "conftest.py").is_file() and (target / "docs").is_dir():
        return target

    archive = _download(cache_dir / "download")
    _extract(archive, target)
    return target


def fetch_pristine(cache_dir: Path) -> Path:
    """Like fetch(), but a copy that no run modifies: the conformance run
    patches its own copy (import guards, text patches), which moves the line
    numbers that other checks name."""
    target = cache_dir / "pristine" / f"anyio-{UPSTREAM_VERSION}"
    if (target / "tests" / "conftest.py").is_file() and (target / "docs").is_dir():
        return target

    _extract(_download(cache_dir / "download"), target)
    return target
