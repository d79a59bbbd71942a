"""Benchmark worker: runs workloads for one (implementation, backend) pair.

Started by the runner as ``python -m bench._worker`` with the repository root
as working directory. Which ``anyio`` it imports is decided by the interpreter
and PYTHONPATH the runner picks (our source tree, or the upstream venv), never
by this module. The job arrives as JSON on stdin; results leave as JSON lines
on the original stdout, one per event, flushed at once so the runner can tell
which workload was running if the process dies or hangs. Anything a workload
prints goes to stderr instead.

Events: ``hello`` (versions, which anyio), ``start`` (a workload begins),
``result`` (status ok / n/a / error, per-op samples).
"""

from __future__ import annotations

import importlib
import json
import os
import platform
import sys
import traceback
from collections.abc import Callable, Coroutine
from typing import IO, Any

from tests._backends import ASYNCIO_UVLOOP, TRIO, backend

from bench.workloads import REGISTRY, Workload
from bench.workloads._common import settle

_out: IO[str]


def emit(event: str, **fields: Any) -> None:
    _out.write(json.dumps({"event": event, **fields}) + "\n")
    _out.flush()


def dist_version(name: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def describe_exception(exc: BaseException) -> str:
    """One line: the innermost leaf of any exception group, and where it was raised."""
    while getattr(exc, "exceptions", None):  # an exception group
        exc = exc.exceptions[0]  # type: ignore[attr-defined]
    frames = traceback.extract_tb(exc.__traceback__)
    where = (
        f" at {os.path.basename(frames[-1].filename)}:{frames[-1].lineno}"
        if frames
        else ""
    )
    text = f"{type(exc).__name__}: {exc}".strip().rstrip(":")
    return (text[:300] + where).replace("\n", " ")


def missing_names(anyio: Any, requires: tuple[str, ...]) -> list[str]:
    """Dotted public names from ``requires`` that this anyio does not provide."""
    missing = []
    for dotted in requires:
        obj: Any = anyio
        path = "anyio"
        for part in dotted.split("."):
            path = f"{path}.{part}"
            if hasattr(obj, part):
                obj = getattr(obj, part)
                continue
            try:  # a submodule that the package does not import eagerly
                obj = importlib.import_module(path)
            except ImportError:
                missing.append(dotted)
                break
    return missing


Driver = Callable[[], Coroutine[Any, Any, list[float]]]


def make_driver(
    body: Callable[[int], Any], n: int, reps: int, warmup_n: int, kind: str
) -> Driver:
    scale = 1e9 if kind == "time" else 1.0

    async def driver() -> list[float]:
        if warmup_n:
            await body(warmup_n)
        samples = []
        for _ in range(reps):
            settle()
            value, ops = await body(n)
            samples.append(value * scale / ops)
        return samples

    return driver


def run_anyio(anyio: Any, backend_id: str, driver: Driver) -> list[float]:
    name, options = backend(backend_id)
    return list(anyio.run(driver, backend=name, backend_options=options))


def run_raw(backend: str, driver: Driver) -> list[float]:
    if backend == TRIO:
        import trio

        return trio.run(driver)
    import asyncio

    loop: asyncio.AbstractEventLoop
    if backend == ASYNCIO_UVLOOP:
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        return loop.run_until_complete(driver())
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        asyncio.set_event_loop(None)
        loop.close()


def run_task(
    impl: str, backend: str, task: dict[str, Any], anyio: Any
) -> dict[str, Any]:
    workload: Workload = REGISTRY[task["workload"]]
    if impl == "raw":
        body, label = workload.raw_for(backend)
        if body is None:
            return {"status": "n/a", "detail": "no raw equivalent"}
    else:
        if backend not in workload.backends:
            return {"status": "n/a", "detail": f"not run on {backend}"}
        missing = missing_names(anyio, workload.requires)
        if missing:
            return {"status": "n/a", "detail": "not implemented: " + ", ".join(missing)}
        body, label = workload.anyio, ""
    driver = make_driver(body, task["n"], task["reps"], task["warmup_n"], workload.kind)
    try:
        if impl == "raw":
            samples = run_raw(backend, driver)
        else:
            samples = run_anyio(anyio, backend, driver)
    except BaseException as exc:  # a failing workload must not end the run
        if isinstance(exc, KeyboardInterrupt):
            raise
        return {"status": "error", "detail": describe_exception(exc)}
    return {"status": "ok", "samples": samples, "label": label}


def main() -> int:
    global _out
    # Keep the protocol stream for ourselves; stray prints go to stderr.
    _out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    sys.stdout = sys.stderr
    job = json.load(sys.stdin)
    impl, backend = job["impl"], job["backend"]

    hello: dict[str, Any] = {
        "python": platform.python_version(),
        "executable": sys.executable,
        "trio": dist_version("trio"),
        "uvloop": dist_version("uvloop"),
    }
    anyio: Any = None
    if impl == "anyio":
        try:
            import anyio
        except BaseException as exc:
            hello["import_error"] = describe_exception(exc)
        else:
            hello["anyio_file"] = anyio.__file__
            hello["anyio_version"] = getattr(
                anyio, "__version__", None
            ) or dist_version("anyio")
    emit("hello", **hello)
    if impl == "anyio" and anyio is None:
        return 1

    for task in job["tasks"]:
        emit("start", workload=task["workload"])
        outcome = run_task(impl, backend, task, anyio)
        emit("result", workload=task["workload"], **outcome)
    return 0


if __name__ == "__main__":
    sys.exit(main())
