"""The backends the project runs on, declared once for every tool that needs them.

The tests (the ``anyio_backend`` fixture in tests/conftest.py and the tests that
pick a subset), the documentation's examples (the root conftest.py), the
conformance run (upstream's suite uses the same three test ids) and the
benchmarks all read the ids from here. An id is what pytest shows in a test's
name; ``asyncio+uvloop`` is anyio's asyncio backend with its public option
``use_uvloop``.

Plain data and the standard library only, apart from the helpers that build
pytest parameters (they import pytest when called): the benchmark workers
import this module in interpreters that have no pytest.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")

ASYNCIO = "asyncio"
ASYNCIO_UVLOOP = "asyncio+uvloop"
TRIO = "trio"

# Test id -> (anyio backend name, backend options).
BACKENDS: dict[str, tuple[str, dict[str, Any]]] = {
    ASYNCIO: ("asyncio", {}),
    ASYNCIO_UVLOOP: ("asyncio", {"use_uvloop": True}),
    TRIO: ("trio", {}),
}
BACKEND_IDS: tuple[str, ...] = tuple(BACKENDS)
# The ids whose tasks are asyncio tasks (stock loop or uvloop).
ASYNCIO_IDS: tuple[str, ...] = (ASYNCIO, ASYNCIO_UVLOOP)


def backend(backend_id: str) -> tuple[str, dict[str, Any]]:
    """(anyio backend name, a fresh copy of its options) for an id."""
    name, options = BACKENDS[backend_id]
    return name, dict(options)


def backend_params(*backend_ids: str) -> list[Any]:
    """``pytest.param((name, options), id=...)`` for the given ids (all if none):
    the values of an ``anyio_backend`` fixture or parametrisation."""
    import pytest

    return [pytest.param(backend(i), id=i) for i in backend_ids or BACKEND_IDS]


def on_backends(*backend_ids: str) -> Any:
    """A marker running an anyio test on the given backend ids only."""
    import pytest

    return pytest.mark.parametrize("anyio_backend", backend_params(*backend_ids))


def run_plain_loop(backend_id: str, main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """Run ``main()`` as the main task of a fresh event loop of an asyncio id,
    without ``anyio.run``: the way frameworks host anyio code in tasks of
    their own."""
    if backend_id == ASYNCIO:
        return asyncio.run(main())
    if backend_id != ASYNCIO_UVLOOP:
        raise ValueError(f"{backend_id!r} is not one of {ASYNCIO_IDS}")

    import uvloop

    if sys.version_info >= (3, 11):
        with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
            return runner.run(main())
    # Python 3.10 has no asyncio.Runner: what it does, by hand.
    loop = uvloop.new_event_loop()
    try:
        asyncio.set_event_loop(loop)
        return loop.run_until_complete(main())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        asyncio.set_event_loop(None)
        loop.close()
