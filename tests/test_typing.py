"""Type-checking conformance: what mypy sees of this package matches upstream.

These run mypy (about a minute in all, the first run longer): upstream anyio
4.16.0's own ``mypy --strict`` run over its tests and docs snippets with each
package, the ``assert_type`` file in ``tests/typing/``, mypy's stubtest over the
C++ extension's stub, and the public-signature comparison. Upstream's sdist and
wheel are fetched once into ``.cache/`` (as ``python -m conformance`` does).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conformance import signatures, typecheck

import anyio

if sys.version_info >= (3, 11):
    from typing import Never
else:
    from typing_extensions import Never

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


def test_task_handle_takes_a_start_value_parameter() -> None:
    # As upstream: TaskHandle[T_Retval, T_StartValue], the second defaulting
    # to Never, so TaskHandle[int] still works at run time.
    from typing import get_args

    assert get_args(anyio.TaskHandle[int])[0] is int
    if sys.version_info >= (3, 11):
        # Python 3.10's typing fills in no defaults for type parameters.
        assert get_args(anyio.TaskHandle[int]) == get_args(anyio.TaskHandle[int, Never])
    assert get_args(anyio.TaskHandle[int, str]) == (int, str)
