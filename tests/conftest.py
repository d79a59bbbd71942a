"""Shared test configuration: every async test runs on each backend."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests._backends import backend_params

# Longer than any test: an idle worker thread outlives the test that started it.
IDLE_TIMEOUT_FOR_TESTS = 3600


@pytest.fixture(params=backend_params())
def anyio_backend(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def keep_idle_workers() -> Iterator[None]:
    """Worker threads do not leave when idle while the test runs.

    A worker idle for the default timeout (10 s) leaves and a later call starts
    a new thread: legitimate, but on a loaded machine or a sanitizer build it
    would make a test that counts threads depend on timing.
    """
    from anyio import _cpp

    old_timeout = _cpp.set_default_idle_timeout(IDLE_TIMEOUT_FOR_TESTS)
    try:
        yield
    finally:
        _cpp.set_default_idle_timeout(old_timeout)
