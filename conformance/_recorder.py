"""pytest plugin loaded into each conformance run: one JSON line per event.

Lines are flushed as they happen, so a run that crashes (or is killed for
hanging) still tells which tests finished and which one was running.
"""

from __future__ import annotations

import faulthandler
import gc
import json
import os
import sys
import threading
import time
from typing import Any

import pytest

_stream: Any = None
# Exit status of a process the watchdog ends because a test hung in C code
# (where pytest-timeout's signal cannot interrupt it).
HARD_TIMEOUT_EXIT = 70
_current: list[Any] = [None, 0.0]  # nodeid, start time


def _watchdog(limit: float) -> None:
    while True:
        time.sleep(1)
        nodeid, started = _current
        if nodeid is not None and time.monotonic() - started > limit:
            _emit({"event": "hard-timeout", "nodeid": nodeid})
            faulthandler.dump_traceback(all_threads=True)
            os._exit(HARD_TIMEOUT_EXIT)


def _emit(record: dict[str, Any]) -> None:
    if _stream is not None:
        _stream.write(json.dumps(record) + "\n")
        _stream.flush()


def pytest_configure(config: pytest.Config) -> None:
    global _stream
    path = os.environ.get("CONFORMANCE_RECORD")
    if path:
        _stream = open(path, "a", encoding="utf-8")
    limit = os.environ.get("CONFORMANCE_HARD_TIMEOUT")
    if limit:
        threading.Thread(target=_watchdog, args=(float(limit),), daemon=True).start()


def pytest_unconfigure(config: pytest.Config) -> None:
    global _stream
    if _stream is not None:
        _stream.close()
        _stream = None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # A resumed run skips the tests an earlier, crashed process already ran.
    path = os.environ.get("CONFORMANCE_SKIP")
    if not path:
        return

    with open(path, encoding="utf-8") as file:
        done = {line.strip() for line in file if line.strip()}
    skipped = [item for item in items if item.nodeid in done]
    if skipped:
        items[:] = [item for item in items if item.nodeid not in done]
        config.hook.pytest_deselected(items=skipped)


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _emit(
            {
                "event": "collect-error",
                "nodeid": report.nodeid,
                "message": str(report.longrepr)[-2000:],
            }
        )


def pytest_deselected(items: list[pytest.Item]) -> None:
    for item in items:
        _emit({"event": "deselected", "nodeid": item.nodeid})


def pytest_runtest_logstart(nodeid: str, location: object) -> None:
    _current[:] = [nodeid, time.monotonic()]
    _emit({"event": "start", "nodeid": nodeid})


def pytest_runtest_logfinish(nodeid: str, location: object) -> None:
    _current[:] = [None, 0.0]


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    record = {
        "event": "report",
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "xfail": hasattr(report, "wasxfail"),
        "duration": round(report.duration, 3),
    }
    if report.failed:
        record["message"] = report.longreprtext[-1500:]
    _emit(record)


# Upstream's socket tests create a socket and then bind or connect it; where
# that fails for IPv6 (this machine has none), the unbound socket is left to
# the garbage collector, and its ResourceWarning (an error under upstream's
# warning settings) then fails whichever later test the collector happens to
# run in. After each test of tests/test_sockets.py, collect its garbage and
# drop only that warning: an unclosed IPv6 socket that was never bound.
def _is_unbound_ipv6_socket_warning(unraisable: Any) -> bool:
    text = str(unraisable.exc_value)
    # The family shows as AddressFamily.AF_INET6 or as 10, depending on when
    # the collector runs; the unbound IPv6 address is the same either way.
    return (
        isinstance(unraisable.exc_value, ResourceWarning)
        and "unclosed <socket.socket" in text
        and "laddr=('::', 0, 0, 0)" in text
    )


@pytest.hookimpl(wrapper=True, trylast=True)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> Any:
    try:
        return (yield)
    finally:
        if item.nodeid.startswith("tests/test_sockets.py::"):
            previous = sys.unraisablehook

            def hook(unraisable: Any) -> None:
                if not _is_unbound_ipv6_socket_warning(unraisable):
                    previous(unraisable)

            sys.unraisablehook = hook
            try:
                gc.collect()
            finally:
                sys.unraisablehook = previous
