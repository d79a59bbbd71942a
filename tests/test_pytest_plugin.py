"""The pytest plugin, exercised through pytester sessions of its own."""

from __future__ import annotations

import os
import socket
from importlib.metadata import entry_points
from pathlib import Path

import pytest
from tests._backends import BACKENDS

import anyio
from anyio import get_available_backends
from anyio.pytest_plugin import FreePortFactory

pytestmark = pytest.mark.filterwarnings("ignore::pytest.PytestDeprecationWarning")


def _plugin_args() -> tuple[str, ...]:
    autoloaded = not os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD") and any(
        ep.name == "anyio" for ep in entry_points(group="pytest11")
    )
    plugin = "anyio" if autoloaded else "anyio.pytest_plugin"
    return ("-p", plugin, "-p", "no:asyncio", "-p", "no:trio", "-p", "no:cacheprovider")


ARGS = _plugin_args()
N_BACKENDS = len(get_available_backends())

# A conftest giving inner sessions our three variants, like tests/conftest.py.
THREE_BACKENDS = f"""
import pytest

@pytest.fixture(params=[pytest.param(v, id=k) for k, v in {BACKENDS!r}.items()])
def anyio_backend(request):
    return request.param
"""


def test_default_backends_and_ids(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from anyio._backend import current_async_library

        @pytest.mark.anyio
        async def test_runs(anyio_backend, anyio_backend_name, anyio_backend_options):
            assert anyio_backend == anyio_backend_name == current_async_library()
            assert anyio_backend_options == {}
        """
    )
    result = pytester.runpytest("-v", *ARGS)
    result.assert_outcomes(passed=N_BACKENDS)
    for backend in get_available_backends():
        result.stdout.fnmatch_lines([f"*test_runs[[]{backend}[]] PASSED*"])


def test_unmarked_coroutine_is_not_run(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        async def test_unmarked():
            pass
        """
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(failed=1)


def test_fixtures_and_test_share_loop_task_and_context(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeconftest(THREE_BACKENDS)
    pytester.makepyfile(
        """
        from contextvars import ContextVar
        import pytest
        from anyio import get_current_task

        pytestmark = pytest.mark.anyio
        var = ContextVar("var")

        @pytest.fixture
        async def plain():
            return get_current_task().id

        @pytest.fixture
        async def generator():
            token = var.set("from fixture")
            yield get_current_task().id
            assert var.get() == "from fixture"
            var.reset(token)

        async def test_same_task(plain, generator):
            assert plain == generator == get_current_task().id
            assert var.get() == "from fixture"
        """
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(passed=3)


def test_task_group_from_fixture_spans_test(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(THREE_BACKENDS)
    pytester.makepyfile(
        """
        import pytest
        from anyio import create_task_group, sleep, sleep_forever

        pytestmark = pytest.mark.anyio
        events = []

        @pytest.fixture
        async def background():
            async def worker():
                events.append("started")
                try:
                    await sleep_forever()
                finally:
                    events.append("cancelled")

            async with create_task_group() as tg:
                tg.start_soon(worker)
                yield tg
                tg.cancel_scope.cancel()

        async def test_uses_it(background):
            await sleep(0.01)
            assert events[-1] == "started"

        def test_torn_down():
            assert events.count("cancelled") == 3
        """
    )
    result = pytester.runpytest("-p", "no:randomly", *ARGS)
    result.assert_outcomes(passed=4)


def test_module_scoped_fixture_keeps_one_loop(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        pytestmark = pytest.mark.anyio

        @pytest.fixture(scope="module")
        def anyio_backend():
            return "asyncio"

        @pytest.fixture(scope="module")
        async def loop_of_fixture():
            yield asyncio.get_running_loop()

        async def test_one(loop_of_fixture):
            assert asyncio.get_running_loop() is loop_of_fixture

        async def test_two(loop_of_fixture):
            assert asyncio.get_running_loop() is loop_of_fixture
        """
    )
    pytester.runpytest(*ARGS).assert_outcomes(passed=2)


def test_sync_test_with_async_fixture(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from anyio import sleep
        from anyio._backend import current_async_library

        @pytest.fixture
        async def library():
            await sleep(0)
            return current_async_library()

        def test_sync(anyio_backend_name, library):
            assert library == anyio_backend_name
        """
    )
    pytester.runpytest(*ARGS).assert_outcomes(passed=N_BACKENDS)


def test_backend_options_reach_the_loop(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.fixture(params=[
            pytest.param(("asyncio", {"use_uvloop": True}), id="asyncio+uvloop"),
            pytest.param(("asyncio", {"debug": True}), id="debug"),
        ])
        def anyio_backend(request):
            return request.param

        @pytest.mark.anyio
        async def test_loop(anyio_backend_options):
            loop = asyncio.get_running_loop()
            if anyio_backend_options.get("use_uvloop"):
                assert type(loop).__module__.startswith("uvloop")
            else:
                assert loop.get_debug()
        """
    )
    pytester.runpytest(*ARGS).assert_outcomes(passed=2)


def test_bad_backend_value(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        def anyio_backend():
            return ["asyncio"]

        @pytest.mark.anyio
        async def test_it():
            pass
        """
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        ["*TypeError: anyio_backend must be either a string or tuple*"]
    )


def test_outcomes_inside_task_group(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(THREE_BACKENDS)
    pytester.makepyfile(
        """
        import pytest
        from anyio import create_task_group, sleep

        pytestmark = pytest.mark.anyio

        async def test_skip_in_group():
            async with create_task_group():
                pytest.skip("skipped inside a task group")

        @pytest.fixture
        async def unavailable():
            async with create_task_group():
                pytest.skip("fixture skipped inside a task group")
            yield

        async def test_skip_in_fixture_group(unavailable):
            pass

        @pytest.mark.xfail(strict=True)
        async def test_fail_in_child():
            async def child():
                pytest.fail("from a child task")

            async with create_task_group() as tg:
                tg.start_soon(child)
                await sleep(1)
        """
    )
    pytester.runpytest(*ARGS).assert_outcomes(skipped=6, xfailed=3)


def test_auto_mode_ini_and_flag(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        async def value():
            return 5

        async def test_auto(value):
            assert value == 5
        """
    )
    pytester.runpytest(*ARGS, "--anyio-mode=auto").assert_outcomes(passed=N_BACKENDS)
    pytester.makeini("[pytest]\nanyio_mode = auto\n")
    pytester.runpytest(*ARGS).assert_outcomes(passed=N_BACKENDS)
    # Strict mode: pytest itself refuses the async fixture of an unmarked test.
    pytester.runpytest(*ARGS, "--anyio-mode=strict").assert_outcomes(errors=1)


def test_hypothesis_runs_each_backend(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest
        from hypothesis import given, settings, strategies as st
        from anyio import sleep
        from anyio._backend import current_async_library

        seen = set()

        @pytest.mark.anyio
        @settings(deadline=None)  # a loaded CI machine must not fail it
        @given(x=st.integers())
        async def test_examples(x, anyio_backend):
            await sleep(0)
            assert current_async_library() == anyio_backend
            seen.add(anyio_backend)

        def test_all_seen():
            assert len(seen) == len({"asyncio", "trio"} & seen) > 0
        """
    )
    pytester.runpytest(*ARGS).assert_outcomes(passed=N_BACKENDS + 1)


def test_programmatic_marker(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import inspect
        import pytest

        def pytest_collection_modifyitems(items):
            for item in items:
                if inspect.iscoroutinefunction(getattr(item, "function", None)):
                    item.add_marker(pytest.mark.anyio)
        """
    )
    pytester.makepyfile(
        """
        async def test_marked_late():
            pass
        """
    )
    pytester.runpytest(*ARGS).assert_outcomes(passed=N_BACKENDS)


def test_dynamic_async_fixture_is_refused(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import pytest

        @pytest.fixture
        async def later():
            return 1

        @pytest.mark.anyio
        async def test_dynamic(request):
            request.getfixturevalue("later")
        """
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(failed=N_BACKENDS)
    result.stdout.fnmatch_lines(
        ["*RuntimeError: Cannot schedule a coroutine in the test runner*"]
    )


def test_asyncio_callback_exception_fails_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import asyncio
        import pytest

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.mark.anyio
        async def test_callback_raises():
            def callback():
                raise ZeroDivisionError("in callback")

            asyncio.get_running_loop().call_soon(callback)
            await asyncio.sleep(0)
        """
    )
    result = pytester.runpytest(*ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*ZeroDivisionError: in callback*"])


def _child_imports_this_anyio(monkeypatch: pytest.MonkeyPatch) -> None:
    """A child interpreter (runpytest_subprocess) must import this same anyio,
    from any directory."""
    package_parent = str(Path(anyio.__file__).resolve().parent.parent)
    monkeypatch.setenv(
        "PYTHONPATH",
        os.pathsep.join(filter(None, [package_parent, os.environ.get("PYTHONPATH")])),
    )


@pytest.mark.parametrize("backend", get_available_backends())
def test_keyboard_interrupt_stops_session(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    _child_imports_this_anyio(monkeypatch)
    pytester.makepyfile(
        f"""
        import pytest
        from anyio import create_task_group, sleep

        @pytest.fixture
        def anyio_backend():
            return {backend!r}

        @pytest.fixture
        async def resource():
            yield

        async def interrupt():
            raise KeyboardInterrupt

        @pytest.mark.anyio
        async def test_interrupted(resource):
            async with create_task_group() as tg:
                tg.start_soon(interrupt)
                await sleep(5)
            print("RESUMED")
        """
    )
    result = pytester.runpytest_subprocess(
        *ARGS, timeout=120
    )  # a hang, not slowness: CI may be loaded
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.no_fnmatch_line("*RESUMED*")


def test_free_port_fixtures(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket

        def test_ports(free_tcp_port, free_udp_port, free_tcp_port_factory, free_udp_port_factory):
            assert free_tcp_port_factory.kind == socket.SOCK_STREAM
            assert free_udp_port_factory.kind == socket.SOCK_DGRAM
            with socket.socket() as tcp:
                tcp.bind(("127.0.0.1", free_tcp_port))
            with socket.socket(type=socket.SOCK_DGRAM) as udp:
                udp.bind(("127.0.0.1", free_udp_port))
        """
    )
    pytester.runpytest(*ARGS).assert_outcomes(passed=1)


@pytest.mark.parametrize("kind", [socket.SOCK_STREAM, socket.SOCK_DGRAM])
def test_free_port_factory_never_repeats(kind: socket.SocketKind) -> None:
    factory = FreePortFactory(kind)
    ports = [factory() for _ in range(20)]
    assert len(set(ports)) == 20
    for port in ports:
        with socket.socket(socket.AF_INET, kind) as sock:
            sock.bind(("127.0.0.1", port))


@pytest.mark.skipif("trio" not in get_available_backends(), reason="needs trio")
def test_stuck_trio_run_is_reported_to_later_tests(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A test interrupted by pytest-timeout while a worker thread blocks: its
    # Trio run cannot wind down, and Trio allows one run per thread. The later
    # Trio test must say so instead of failing with "Already running trio".
    _child_imports_this_anyio(monkeypatch)
    pytester.makepyfile(
        """
        import threading

        import pytest
        from anyio import to_thread

        release = threading.Event()

        @pytest.fixture
        def anyio_backend():
            return "trio"

        @pytest.mark.anyio
        @pytest.mark.timeout(1)
        async def test_stuck():
            await to_thread.run_sync(release.wait)

        @pytest.mark.anyio
        async def test_after():
            pass

        def test_release():
            release.set()
        """
    )
    result = pytester.runpytest_subprocess(*ARGS, "-p", "timeout", timeout=120)
    result.assert_outcomes(passed=1, failed=2)
    result.stdout.fnmatch_lines(
        ["*Timeout*", "*A Trio run abandoned by an earlier test*"]
    )
