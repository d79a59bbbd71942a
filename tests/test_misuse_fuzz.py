"""Misuse of the public API (wrong types, None, NaN/inf/huge numbers, use
outside a loop or from a thread, after close, twice) on each backend, each
batch in a subprocess. The exception type each case raises is compared with
the one upstream anyio 4.16.0 raised for the same case, recorded in
``misuse_expected.json`` by running this file's child mode under upstream:

    /path/to/upstream/python tests/test_misuse_fuzz.py record > tests/misuse_expected.json

Cases where this package deliberately differs are listed in ``DIFFERENCES``
with the reason (see also docs/conformance.md).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

if __name__ == "__main__":  # run as a script (child and record modes)
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests._backends import BACKEND_IDS, BACKENDS

HERE = Path(__file__).resolve()
EXPECTED = HERE.parent / "misuse_expected.json"

# "backend:case" -> why this package does something else than upstream.
DIFFERENCES: dict[str, str] = {
    "outside:outside_semaphore_release": "primitives work before any loop runs (wider)",
    "outside:outside_scope_cancel": "a CancelScope can be made and cancelled before any loop runs (wider)",
    "asyncio:scope_enter_twice": "a scope is entered once on every backend (upstream: only on Trio)",
    "asyncio+uvloop:scope_enter_twice": "a scope is entered once on every backend (upstream: only on Trio)",
    "trio:limiter_none": "TypeError, as on asyncio (upstream: Trio's internal AssertionError)",
    "trio:to_thread_async_func": "runs the function as on asyncio (upstream: Trio rejects it); "
    "to_thread belongs to the threads work",
}

Case = Callable[[], Any]


def _cases() -> dict[str, Case]:
    import anyio
    from anyio import from_thread, to_thread
    from anyio.lowlevel import checkpoint

    nan, inf = math.nan, math.inf
    cases: dict[str, Case] = {}

    def add(name: str) -> Callable[[Case], Case]:
        def deco(f: Case) -> Case:
            cases[name] = f
            return f

        return deco

    for label, value in [
        ("nan", nan),
        ("inf", inf),
        ("neg", -1),
        ("str", "x"),
        ("none", None),
        ("huge", 10**400),
    ]:

        async def sleep(value: Any = value) -> None:
            with anyio.move_on_after(0):
                await anyio.sleep(value)

        cases[f"sleep_{label}"] = sleep

        async def fail_after(value: Any = value) -> None:
            with anyio.fail_after(value):
                pass

        cases[f"fail_after_{label}"] = fail_after

        async def move_on_after(value: Any = value) -> None:
            with anyio.move_on_after(value):
                pass

        cases[f"move_on_after_{label}"] = move_on_after

        async def scope_deadline(value: Any = value) -> None:
            anyio.CancelScope(deadline=value)

        cases[f"scope_deadline_{label}"] = scope_deadline

        async def semaphore(value: Any = value) -> None:
            anyio.Semaphore(value)

        cases[f"semaphore_{label}"] = semaphore

        async def limiter(value: Any = value) -> None:
            anyio.CapacityLimiter(value)

        cases[f"limiter_{label}"] = limiter

        async def limiter_set(value: Any = value) -> None:
            anyio.CapacityLimiter(1).total_tokens = value

        cases[f"limiter_set_{label}"] = limiter_set

        async def stream_size(value: Any = value) -> None:
            anyio.create_memory_object_stream(value)

        cases[f"stream_size_{label}"] = stream_size

        async def notify(value: Any = value) -> None:
            condition = anyio.Condition()
            async with condition:
                condition.notify(value)

        cases[f"notify_{label}"] = notify

    @add("lock_release_unheld")
    async def _() -> None:
        anyio.Lock().release()

    @add("lock_acquire_twice")
    async def _() -> None:
        lock = anyio.Lock()
        await lock.acquire()
        await lock.acquire()

    @add("semaphore_over_max")
    async def _() -> None:
        anyio.Semaphore(1, max_value=1).release()

    @add("limiter_release_unheld")
    async def _() -> None:
        anyio.CapacityLimiter(1).release()

    @add("limiter_acquire_twice")
    async def _() -> None:
        limiter = anyio.CapacityLimiter(2)
        await limiter.acquire()
        await limiter.acquire()

    @add("limiter_unhashable_borrower")
    async def _() -> None:
        await anyio.CapacityLimiter(1).acquire_on_behalf_of([])

    @add("condition_notify_unheld")
    async def _() -> None:
        anyio.Condition().notify()

    @add("condition_wait_unheld")
    async def _() -> None:
        await anyio.Condition().wait()

    @add("send_after_close")
    async def _() -> None:
        send, receive = anyio.create_memory_object_stream[int](1)
        send.close()
        await send.send(1)

    @add("receive_after_close")
    async def _() -> None:
        send, receive = anyio.create_memory_object_stream[int](1)
        receive.close()
        await receive.receive()

    @add("send_no_receivers")
    async def _() -> None:
        send, receive = anyio.create_memory_object_stream[int](1)
        receive.close()
        send.send_nowait(1)

    @add("receive_no_senders")
    async def _() -> None:
        send, receive = anyio.create_memory_object_stream[int](1)
        send.close()
        receive.receive_nowait()

    @add("send_nowait_full")
    async def _() -> None:
        send, receive = anyio.create_memory_object_stream[int](0)
        send.send_nowait(1)

    @add("clone_after_close")
    async def _() -> None:
        send, receive = anyio.create_memory_object_stream[int](1)
        send.close()
        send.clone()

    @add("start_soon_none")
    async def _() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(None)  # type: ignore[arg-type]

    @add("start_soon_not_async")
    async def _() -> None:
        async with anyio.create_task_group() as tg:
            tg.start_soon(print)  # type: ignore[arg-type]

    @add("start_soon_after_exit")
    async def _() -> None:
        async with anyio.create_task_group() as tg:
            pass
        tg.start_soon(checkpoint)

    @add("task_group_enter_twice")
    async def _() -> None:
        tg = anyio.create_task_group()
        async with tg:
            pass
        async with tg:
            pass

    @add("start_never_started")
    async def _() -> None:
        async def body(task_status: Any) -> None:
            pass

        async with anyio.create_task_group() as tg:
            await tg.start(body)

    @add("scope_enter_twice")
    async def _() -> None:
        scope = anyio.CancelScope()
        with scope:
            pass
        with scope:
            pass

    @add("scope_exit_unentered")
    async def _() -> None:
        anyio.CancelScope().__exit__(None, None, None)

    @add("to_thread_none")
    async def _() -> None:
        await to_thread.run_sync(None)  # type: ignore[arg-type]

    @add("to_thread_async_func")
    async def _() -> None:
        await to_thread.run_sync(checkpoint)

    @add("from_thread_in_loop")
    async def _() -> None:
        from_thread.run_sync(print)

    @add("event_set_from_thread")
    async def _() -> None:
        event = anyio.Event()
        errors: list[BaseException] = []

        def target() -> None:
            try:
                event.set()
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=target)
        thread.start()
        thread.join()
        if errors:
            raise errors[0]

    @add("resource_guard_twice")
    async def _() -> None:
        guard = anyio.ResourceGuard()
        with guard:
            with guard:
                pass

    @add("sleep_until_nan")
    async def _() -> None:
        with anyio.move_on_after(0):
            await anyio.sleep_until(nan)

    return cases


def _sync_cases() -> dict[str, Callable[[], Any]]:
    """Used outside any event loop."""
    import anyio
    from anyio import from_thread

    async def noop() -> None:
        pass

    return {
        "outside_current_time": anyio.current_time,
        "outside_event_set": lambda: anyio.Event().set(),
        "outside_lock_acquire_nowait": lambda: anyio.Lock().acquire_nowait(),
        "outside_semaphore_release": lambda: anyio.Semaphore(0).release(),
        "outside_scope_cancel": lambda: anyio.CancelScope().cancel(),
        "outside_get_cancelled_exc_class": anyio.get_cancelled_exc_class,
        "outside_send_nowait": lambda: anyio.create_memory_object_stream[int](1)[
            0
        ].send_nowait(1),
        "outside_from_thread": lambda: from_thread.run_sync(print),
        "run_none": lambda: anyio.run(None),  # type: ignore[arg-type]
        "run_sync_func": lambda: anyio.run(print),  # type: ignore[arg-type]
        "run_bad_backend": lambda: anyio.run(noop, backend="nope"),
    }


def _outcome(run: Callable[[], Any]) -> str:
    try:
        result = run()
    except SystemError as exc:
        return f"SystemError: {exc}"
    except BaseException as exc:
        if len(getattr(exc, "exceptions", ())) == 1:  # a group of one
            return f"{type(exc).__name__}[{type(exc.exceptions[0]).__name__}]"
        return type(exc).__name__
    if hasattr(result, "close"):
        result.close()
    return "ok"


def _child(backend: str) -> None:
    import anyio

    out: dict[str, str] = {}
    if backend == "outside":
        for name, case in _sync_cases().items():
            sys.stdout.write(f"START {name}\n")
            sys.stdout.flush()
            out[name] = _outcome(case)
    else:
        cases = _cases()
        name_, options = BACKENDS[backend]

        async def main() -> None:
            for name, case in cases.items():
                sys.stdout.write(f"START {name}\n")
                sys.stdout.flush()
                out[name] = await _aoutcome(case)

        anyio.run(main, backend=name_, backend_options=options)
    sys.stdout.write("RESULT " + json.dumps(out) + "\n")
    sys.stdout.flush()


async def _aoutcome(case: Callable[[], Awaitable[Any]]) -> str:
    try:
        await case()
    except SystemError as exc:
        return f"SystemError: {exc}"
    except BaseException as exc:
        if len(getattr(exc, "exceptions", ())) == 1:  # a group of one
            return f"{type(exc).__name__}[{type(exc.exceptions[0]).__name__}]"
        return type(exc).__name__
    return "ok"


def _run_child(backend: str, python: str = sys.executable) -> dict[str, str]:
    env = dict(os.environ)
    if python == sys.executable:
        import anyio

        env["PYTHONPATH"] = os.pathsep.join(
            [
                str(Path(anyio.__file__).resolve().parent.parent),
                env.get("PYTHONPATH", ""),
            ]
        )
    proc = subprocess.run(
        [python, str(HERE), "child", backend],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    lines = proc.stdout.splitlines()
    if proc.returncode != 0 or not lines or not lines[-1].startswith("RESULT "):
        last = [line for line in lines if line.startswith("START ")][-1:]
        pytest.fail(
            f"{backend}: child died (rc={proc.returncode}) in {last}\n{proc.stderr[-3000:]}"
        )
    return json.loads(lines[-1][7:])  # type: ignore[no-any-return]


# Where upstream's own outcome depends on the Python version, and the table
# (recorded on Python 3.11) does not apply: (backend, case, from version) and
# upstream's outcome there, checked with upstream anyio 4.16.0 on that version.
VERSION_DEPENDENT: dict[tuple[str, str], tuple[tuple[int, int], str]] = {
    # anyio.sleep(10**400) on uvloop (0.23): upstream anyio 4.16.0 completes
    # on Python 3.11 and raises OverflowError on 3.13, as this package does.
    ("asyncio+uvloop", "sleep_huge"): ((3, 13), "OverflowError"),
}


def _expected_outcomes(backend: str) -> dict[str, str]:
    expected: dict[str, str] = json.loads(EXPECTED.read_text())[backend]
    for (where, name), (since, outcome) in VERSION_DEPENDENT.items():
        if where == backend and sys.version_info >= since:
            expected[name] = outcome
    return expected


@pytest.mark.parametrize("backend", ["outside", *BACKEND_IDS])
def test_misuse_matches_upstream(backend: str) -> None:
    expected = _expected_outcomes(backend)
    got = _run_child(backend)
    system_errors = {k: v for k, v in got.items() if v.startswith("SystemError")}
    assert not system_errors
    assert set(got) == set(expected), (
        "regenerate misuse_expected.json after changing the cases"
    )
    differ = {
        name: (expected[name], got[name])
        for name in got
        if got[name] != expected[name] and f"{backend}:{name}" not in DIFFERENCES
    }
    assert not differ, "upstream vs ours: " + json.dumps(differ, indent=1)


if __name__ == "__main__":
    if sys.argv[1] == "child":
        _child(sys.argv[2])
    elif sys.argv[1] == "record":
        table = {b: _run_child(b, sys.executable) for b in ["outside", *BACKEND_IDS]}
        print(json.dumps(table, indent=1, sort_keys=True))
