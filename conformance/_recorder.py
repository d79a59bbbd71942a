"""pytest plugin for every conformance run: one JSON line per event.

Two runs load it:

- upstream's test suite (conformance/tests_run.py), as ``-p conformance._recorder``;
- a dependent's test suite (``python -m conformance --downstream``), copied
  alone into an otherwise empty directory and loaded as ``-p _recorder``, so
  nothing else of this repository is importable there. It therefore imports
  nothing but the standard library and pytest.

Settings come from the environment: ``CONFORMANCE_RECORD`` (the JSON-lines
file to append to), ``CONFORMANCE_SKIP`` (a file of node ids an earlier,
crashed process already ran: left out of this one), ``CONFORMANCE_HARD_TIMEOUT``
(seconds after which the watchdog ends the process) and
``CONFORMANCE_UPSTREAM_SUITE`` (set for upstream's suite only: see the socket
warning below).

Lines are flushed as they happen, so a run that crashes (or is killed for
hanging) still tells which tests finished and which one was running. Under
pytest-xdist only the controller writes; it sees every worker's reports.
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

RECORD_ENV = "CONFORMANCE_RECORD"
SKIP_ENV = "CONFORMANCE_SKIP"
HARD_TIMEOUT_ENV = "CONFORMANCE_HARD_TIMEOUT"
UPSTREAM_SUITE_ENV = "CONFORMANCE_UPSTREAM_SUITE"
# Exit status of a process the watchdog ends because a test hung in C code
# (where pytest-timeout's signal cannot interrupt it).
HARD_TIMEOUT_EXIT = 70
# How much of a failure's text and of a skip's reason a record keeps (the end).
MESSAGE_CHARS = 3000
REASON_CHARS = 300

_stream: Any = None
_current: list[Any] = [None, 0.0]  # nodeid, start time


def _emit(record: dict[str, Any]) -> None:
    if _stream is not None:
        _stream.write(json.dumps(record) + "\n")
        _stream.flush()


def _watchdog(limit: float) -> None:
    while True:
        time.sleep(1)
        nodeid, started = _current
        if nodeid is not None and time.monotonic() - started > limit:
            _emit({"event": "hard-timeout", "nodeid": nodeid})
            # pytest captures fd 2 during a test: put the stacks beside the record.
            path = os.environ.get(RECORD_ENV, "") + ".stacks"
            with open(path, "a", encoding="utf-8") as stacks:
                stacks.write(f"hard timeout in {nodeid}\n")
                stacks.flush()
                faulthandler.dump_traceback(file=stacks, all_threads=True)
            os._exit(HARD_TIMEOUT_EXIT)


def _is_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    global _stream
    limit = os.environ.get(HARD_TIMEOUT_ENV)
    if limit:
        threading.Thread(target=_watchdog, args=(float(limit),), daemon=True).start()
    path = os.environ.get(RECORD_ENV)
    if path and not _is_xdist_worker(config):
        _stream = open(path, "a", encoding="utf-8")


def pytest_unconfigure(config: pytest.Config) -> None:
    global _stream
    if _stream is not None:
        _stream.close()
        _stream = None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    config: pytest.Config, items: list[pytest.Item]
) -> None:
    # A resumed run leaves out the tests that an earlier, killed process ran.
    path = os.environ.get(SKIP_ENV)
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
    record: dict[str, Any] = {
        "event": "report",
        "nodeid": report.nodeid,
        "when": report.when,
        "outcome": report.outcome,
        "xfail": hasattr(report, "wasxfail"),
        "duration": round(report.duration, 3),
    }
    if report.failed:
        record["message"] = report.longreprtext[-MESSAGE_CHARS:]
    elif report.skipped and isinstance(report.longrepr, tuple):
        record["reason"] = str(report.longrepr[2])[-REASON_CHARS:]
    _emit(record)


# Upstream's socket tests create a socket and then bind or connect it; where
# that fails for IPv6 (this machine has none), the unbound socket is left to
# the garbage collector, and its ResourceWarning (an error under upstream's
# warning settings) then fails whichever later test the collector happens to
# run in. After each test of upstream's tests/test_sockets.py, collect its
# garbage and drop only that warning: an unclosed IPv6 socket that was never
# bound. Dependents' suites are left as they are.
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
        if os.environ.get(UPSTREAM_SUITE_ENV) and item.nodeid.startswith(
            "tests/test_sockets.py::"
        ):
            previous = sys.unraisablehook

            def hook(unraisable: Any) -> None:
                if not _is_unbound_ipv6_socket_warning(unraisable):
                    previous(unraisable)

            sys.unraisablehook = hook
            try:
                gc.collect()
            finally:
                sys.unraisablehook = previous
