"""Garbage in, no crash out: every callable of the private extension
``anyio._cpp`` (functions, types, methods and attributes of objects made by
``__new__`` and never initialised, and of the public objects built on it)
called with garbage arguments, outside any loop, in asyncio and in Trio.

A call may raise anything but SystemError; it may not kill the interpreter
or hang. Cases run in batches, each batch in one subprocess; a dead batch
names the case it died in (the child reports each case before running it).
"""

from __future__ import annotations

import gc
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

CONTEXTS = ["none", "asyncio", "trio"]
BATCHES = 3  # per context
TIMEOUT = int(os.environ.get("ANYIO_FUZZ_TIMEOUT", "20"))

HERE = Path(__file__).resolve()


class _Opaque:
    pass


async def _a_coroutine() -> None:
    pass


def _current_task() -> Any:
    import sniffio

    try:
        lib = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return None
    if lib == "trio":
        import trio

        return trio.lowlevel.current_task()
    import asyncio

    return asyncio.current_task()


def _garbage() -> list[tuple[tuple[Any, ...], dict[str, Any]]]:
    """Argument sets: wrong types, odd numbers, wrong counts, and objects of
    the kinds the core handles (tasks, scopes, coroutines, callables)."""
    import anyio

    coro = _a_coroutine()
    coro.close()
    task = _current_task()
    return [
        ((), {}),
        ((None,), {}),
        ((0,), {}),
        ((-1,), {}),
        ((2**64,), {}),
        ((math.nan,), {}),
        ((-math.inf,), {}),
        (("x",), {}),
        ((_Opaque(),), {}),
        ((None, None, None), {}),
        (((), {}), {}),
        ((1, 2, 3, 4, 5), {}),
        ((), {"bogus": 1}),
        ((coro,), {}),
        ((task,), {}),
        ((anyio.CancelScope(),), {}),
        ((ValueError("x"),), {}),
        ((task, anyio.CancelScope(), 1), {}),
        ((print, (), True, None), {}),
        ((True, print, ()), {}),
        ((None, print, (), None), {}),
        ((print,), {}),
    ]


# Names whose calls with plausible garbage could legitimately block or change
# process-wide tuning for the rest of the batch; they are still called, with
# the arguments listed here only.
_SAFE_ONLY: dict[str, list[tuple[tuple[Any, ...], dict[str, Any]]]] = {}

# Protocol operations tried on every object besides its named attributes.
_PROTOCOL: list[tuple[str, Callable[[Any], Any]]] = [
    ("repr", repr),
    ("hash", hash),
    ("bool", bool),
    ("next", next),
    ("iter", iter),
    ("await", lambda o: o.__await__()),
    ("dir", dir),
]


def _public_objects() -> list[tuple[str, Callable[[], Any]]]:
    import anyio

    def streams() -> Any:
        return anyio.create_memory_object_stream[Any](1)

    return [
        ("Event", anyio.Event),
        ("Lock", anyio.Lock),
        ("Semaphore", lambda: anyio.Semaphore(1, max_value=2)),
        ("CapacityLimiter", lambda: anyio.CapacityLimiter(1)),
        ("CancelScope", anyio.CancelScope),
        ("MemoryObjectSendStream", lambda: streams()[0]),
        ("MemoryObjectReceiveStream", lambda: streams()[1]),
        ("checkpoint", lambda: anyio.lowlevel.checkpoint()),
    ]


def _cases() -> list[tuple[str, ...]]:
    """Every case as a tuple of names (stable across processes)."""
    import anyio._cpp as cpp

    cases: list[tuple[str, ...]] = []
    nargs = len(_garbage())
    for name in sorted(dir(cpp)):
        if name.startswith("__"):
            continue
        obj = getattr(cpp, name)
        if not callable(obj):
            continue
        cases += [("call", name, str(i)) for i in range(nargs)]
        if isinstance(obj, type):
            cases.append(("new", name))
            for attr in sorted(vars(obj)):
                if attr.startswith("__") and attr not in (
                    "__aenter__",
                    "__aexit__",
                    "__enter__",
                    "__exit__",
                ):
                    continue
                cases.append(("setattr", name, attr))
                cases += [("method", name, attr, str(i)) for i in range(nargs)]
            cases += [("proto", name, p) for p, _ in _PROTOCOL]
    for label, make in _public_objects():
        obj = make()
        for attr in sorted(dir(obj)):
            if attr.startswith("__") and attr not in (
                "__aenter__",
                "__aexit__",
                "__enter__",
                "__exit__",
            ):
                continue
            cases += [("public", label, attr, str(i)) for i in range(nargs)]
            cases.append(("pubset", label, attr))
        if hasattr(obj, "close"):
            obj.close()
    return cases


def _uninitialised(type_name: str) -> Any:
    import anyio._cpp as cpp

    tp = getattr(cpp, type_name)
    return tp.__new__(tp)


def _settle(result: Any) -> None:
    # An awaitable or coroutine that came back is stepped once and closed, so
    # a half-built one gets exercised rather than just dropped.
    if hasattr(result, "send") and hasattr(result, "close"):
        try:
            result.send(None)
        except BaseException:
            pass
        try:
            result.close()
        except BaseException:
            pass


def _run_case(case: tuple[str, ...], in_trio: bool) -> str:
    import anyio._cpp as cpp

    garbage = _garbage()
    kind = case[0]
    if kind == "call":
        args, kwargs = garbage[int(case[2])]
        res = getattr(cpp, case[1])(*args, **kwargs)
        if not in_trio:
            _settle(res)
        return "ok"
    if kind == "new":
        _uninitialised(case[1])
        return "ok"
    if kind in ("method", "setattr", "proto"):
        obj = _uninitialised(case[1])
    else:
        obj = dict(_public_objects())[case[1]]()
    if kind in ("setattr", "pubset"):
        try:
            setattr(obj, case[2], _Opaque())
        finally:
            try:
                delattr(obj, case[2])
            except BaseException:
                pass
        return "ok"
    if kind == "proto":
        res = dict(_PROTOCOL)[case[2]](obj)
        if not in_trio:
            _settle(res)
        return "ok"
    attr = getattr(obj, case[2])
    if callable(attr):
        args, kwargs = garbage[int(case[3])]
        res = attr(*args, **kwargs)
        if not in_trio:
            _settle(res)
    return "ok"


def _child(context: str) -> None:
    cases = [tuple(c) for c in json.loads(sys.stdin.read())]
    out = sys.stdout

    def run_all(in_trio: bool) -> None:
        for n, case in enumerate(cases):
            out.write("START " + json.dumps(case) + "\n")
            out.flush()
            try:
                outcome = _run_case(case, in_trio)
            except SystemError as exc:
                outcome = f"SystemError: {exc}"
            except BaseException as exc:
                outcome = type(exc).__name__
            if n % 64 == 63:
                gc.collect()
            out.write("END " + json.dumps(outcome) + "\n")
            out.flush()

    if context == "none":
        run_all(False)
    elif context == "asyncio":
        import asyncio

        async def main() -> None:
            run_all(False)

        asyncio.run(main())
    else:
        import trio

        async def trio_main() -> None:
            run_all(True)

        trio.run(trio_main)
    gc.collect()
    out.write("DONE\n")
    out.flush()


def _spawn(context: str, cases: list[tuple[str, ...]]) -> tuple[int, str, str]:
    env = dict(os.environ)
    # The child imports the same anyio as this process (the in-place tree, an
    # installed copy or the sanitizer build's package).
    import anyio

    here = str(Path(anyio.__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([here, env.get("PYTHONPATH", "")])
    env["PYTHONFAULTHANDLER"] = "1"
    try:
        proc = subprocess.run(
            [sys.executable, str(HERE), context],
            input=json.dumps(cases),
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        out = (
            exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        )
        err = (
            exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        )
        return -999, out, "timed out (hang)\n" + err
    return proc.returncode, proc.stdout, proc.stderr


def _failures(context: str, cases: list[tuple[str, ...]]) -> Iterator[str]:
    rc, stdout, stderr = _spawn(context, cases)
    current: str | None = None
    for line in stdout.splitlines():
        if line.startswith("START "):
            current = line[6:]
        elif line.startswith("END "):
            outcome = json.loads(line[4:])
            if outcome.startswith("SystemError"):
                yield f"{context} {current}: {outcome}"
            current = None
    if rc != 0 or not stdout.endswith("DONE\n"):
        if current is not None:
            # Name the culprit: does the case crash on its own?
            alone_rc, alone_out, _ = _spawn(context, [tuple(json.loads(current))])
            alone = "alone too" if alone_rc != 0 else "only after the cases before it"
            yield f"{context} {current}: process died (rc={rc}, {alone})\n{stderr[-2000:]}"
            rest = cases[[json.dumps(list(c)) for c in cases].index(current) + 1 :]
            if rest:
                yield from _failures(context, rest)
        else:
            yield f"{context}: process died outside any case (rc={rc})\n{stderr[-2000:]}"


@pytest.mark.parametrize("batch", range(BATCHES))
@pytest.mark.parametrize("context", CONTEXTS)
def test_cpp_fuzz(context: str, batch: int) -> None:
    cases = _cases()
    mine = cases[batch::BATCHES]
    failures = list(_failures(context, mine))
    assert not failures, f"{len(failures)} of {len(mine)} cases failed:\n" + "\n".join(
        failures
    )


if __name__ == "__main__":
    _child(sys.argv[1])
