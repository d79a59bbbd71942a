"""pytest plugin for ``python -m conformance --downstream``: one JSON line per event.

Loaded into a dependent's test run (``-p _downstream_plugin`` from a directory
holding only this file, so nothing else of this repository is importable).
Under pytest-xdist only the controller writes; it sees every worker's reports.
A watchdog ends a process whose test outlives the hard limit (a hang in C code
that pytest-timeout's signal cannot interrupt), after writing which test it was.
"""

from __future__ import annotations

import faulthandler
import json
import os
import threading
import time
from typing import Any

import pytest

HARD_TIMEOUT_EXIT = 70
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
            path = os.environ.get("DOWNSTREAM_RECORD", "") + ".stacks"
            with open(path, "a", encoding="utf-8") as stacks:
                stacks.write(f"hard timeout in {nodeid}\n")
                stacks.flush()
                faulthandler.dump_traceback(file=stacks, all_threads=True)
            os._exit(HARD_TIMEOUT_EXIT)


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_configure(config: pytest.Config) -> None:
    global _stream
    limit = os.environ.get("DOWNSTREAM_HARD_TIMEOUT")
    if limit:
        threading.Thread(target=_watchdog, args=(float(limit),), daemon=True).start()
    path = os.environ.get("DOWNSTREAM_RECORD")
    if path and not _is_worker(config):
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
    path = os.environ.get("DOWNSTREAM_SKIP")
    if not path:
        return
    with open(path, encoding="utf-8") as file:
        done = {line.strip() for line in file if line.strip()}
    kept = [item for item in items if item.nodeid not in done]
    if len(kept) != len(items):
        config.hook.pytest_deselected(
            items=[item for item in items if item.nodeid in done]
        )
        items[:] = kept


def pytest_collectreport(report: pytest.CollectReport) -> None:
    if report.failed:
        _emit(
            {
                "event": "collect-error",
                "nodeid": report.nodeid,
                "message": str(report.longrepr)[-2000:],
            }
        )


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
    }
    if report.failed:
        record["message"] = report.longreprtext[-3000:]
    elif report.skipped and isinstance(report.longrepr, tuple):
        record["message"] = str(report.longrepr[2])[-300:]
    _emit(record)
