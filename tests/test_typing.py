"""Type-checking conformance: what mypy sees of this package matches upstream.

These run mypy (about a minute in all, the first run longer): upstream anyio
4.16.0's own ``mypy --strict`` run over its tests and docs snippets with each
package, the ``assert_type`` file in ``tests/typing/``, mypy's stubtest over the
C++ extension's stub, and the public-signature comparison. Upstream's sdist and
wheel are fetched once into ``.cache/`` (as ``python -m conformance`` does).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conformance import signatures, typecheck

import anyio

CACHE = Path(__file__).resolve().parent.parent / ".cache" / "anyio-sdist"

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def test_py_typed_shipped() -> None:
    # The anyio under test is the installed one in CI: its py.typed came from
    # the wheel.
    assert (Path(anyio.__file__).parent / "py.typed").is_file()


def test_upstream_mypy_run_gives_no_new_errors() -> None:
    extra = typecheck.compare_upstream_run(CACHE, typecheck.default_versions())
    assert extra == []


def test_assert_types() -> None:
    errors = typecheck.check_assert_types(CACHE, typecheck.default_versions())
    assert errors == []


def test_stub_matches_extension() -> None:
    assert typecheck.run_stubtest(CACHE) == []


def test_public_signatures_match_upstream() -> None:
    assert signatures.run(CACHE, "3.14") == 0
