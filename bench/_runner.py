"""Drive worker processes: one per (implementation, backend) and batch of workloads.

A worker that hangs past the per-workload timeout is killed, one that dies is
reported, and in both cases the remaining workloads go to a fresh worker, so a
crash in one workload costs that workload's cell and nothing else.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from bench._env import ROOT, Interpreter


@dataclass
class Task:
    workload: str
    n: int
    reps: int
    warmup_n: int

    def as_json(self) -> dict[str, Any]:
        return {
            "workload": self.workload,
            "n": self.n,
            "reps": self.reps,
            "warmup_n": self.warmup_n,
        }


@dataclass
class BatchResult:
    hello: dict[str, Any] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


def _reader(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _stderr_tail(path: str, limit: int = 400) -> str:
    try:
        with open(path, errors="replace") as f:
            text = f.read()
    except OSError:
        return ""
    return " ".join(text.strip().splitlines()[-4:])[-limit:]


def _run_once(
    interp: Interpreter,
    backend: str,
    tasks: list[Task],
    timeout: float,
    out: BatchResult,
) -> list[Task]:
    """Run tasks in one worker; return those left undone by a crash or hang."""
    job = {
        "impl": interp.worker_impl,
        "backend": backend,
        "tasks": [t.as_json() for t in tasks],
    }
    with tempfile.NamedTemporaryFile("w+", suffix=".stderr", delete=False) as err:
        err_path = err.name
    with open(err_path, "w") as err_file:
        proc = subprocess.Popen(
            [interp.python, "-m", "bench._worker"],
            cwd=ROOT,
            env=interp.env(),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
        )
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(json.dumps(job))
    proc.stdin.close()
    lines: queue.Queue[str | None] = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()

    pending = {t.workload: t for t in tasks}
    current: str | None = None
    deadline = time.monotonic() + timeout
    try:
        while pending:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                proc.kill()
                proc.wait()
                if current is None:  # hung before starting anything
                    current = next(iter(pending))
                out.results[current] = {
                    "status": "timeout",
                    "detail": f"no result within {timeout:.0f} s",
                }
                del pending[current]
                return list(pending.values())
            if line is None:  # the worker exited
                code = proc.wait()
                detail = f"worker exited with code {code}: {_stderr_tail(err_path)}"
                if "import_error" in out.hello:
                    for name in pending:
                        out.results[name] = {
                            "status": "error",
                            "detail": "import anyio: " + out.hello["import_error"],
                        }
                    return []
                victim = current if current in pending else next(iter(pending))
                out.results[victim] = {"status": "crashed", "detail": detail}
                del pending[victim]
                return list(pending.values())
            event = json.loads(line)
            kind = event.pop("event")
            if kind == "hello":
                out.hello = event
            elif kind == "start":
                current = event["workload"]
                deadline = time.monotonic() + timeout
            elif kind == "result":
                name = event.pop("workload")
                out.results[name] = event
                pending.pop(name, None)
        proc.wait(timeout=30)
        return []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        try:
            os.unlink(err_path)
        except OSError:
            pass


def run_batch(
    interp: Interpreter, backend: str, tasks: list[Task], timeout: float
) -> BatchResult:
    out = BatchResult()
    remaining = list(tasks)
    while remaining:
        remaining = _run_once(interp, backend, remaining, timeout, out)
    return out
