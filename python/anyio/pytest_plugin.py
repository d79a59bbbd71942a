"""The pytest plugin: run async tests and fixtures on each requested backend.

Registered through the ``pytest11`` entry point. A test takes part when it is a
coroutine function and either carries the ``anyio`` marker, requests the
``anyio_backend`` fixture (directly or through another fixture) or runs in auto
mode. Its async fixtures and the test itself then run on one event loop, in one
task, kept open by :mod:`anyio._testrunner` for as long as any of them lives.
"""

from __future__ import annotations

import inspect
import socket
import sys
from collections.abc import Callable, Generator, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any, cast

import pytest

from ._testrunner import TestRunner, create_runner

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

try:
    from ._backend import get_available_backends
except ImportError:  # trees where the runtime has not landed yet

    def get_available_backends() -> tuple[str, ...]:
        import importlib.util

        found = importlib.util.find_spec("trio") is not None
        return ("asyncio", "trio") if found else ("asyncio",)


# -- backend selection ---------------------------------------------------------


def extract_backend_and_options(backend: object) -> tuple[str, dict[str, Any]]:
    """Split an ``anyio_backend`` value into the backend name and its options."""
    if isinstance(backend, str):
        return backend, {}
    elif (
        isinstance(backend, tuple)
        and len(backend) == 2
        and isinstance(backend[0], str)
        and isinstance(backend[1], dict)
    ):
        return backend[0], backend[1]

    raise TypeError("anyio_backend must be either a string or tuple of (string, dict)")


class _OpenRunner:
    __slots__ = ("backend", "options", "runner", "users")

    def __init__(
        self, backend: str, options: dict[str, Any], runner: TestRunner
    ) -> None:
        self.backend = backend
        self.options = options
        self.runner = runner
        self.users = 0


_open_runners: list[_OpenRunner] = []


@contextmanager
def get_runner(
    backend_name: str, backend_options: dict[str, Any]
) -> Iterator[TestRunner]:
    """Share the runner of this backend/options; close it with its last user.

    Every async fixture holds its runner until teardown, so a higher-scoped
    fixture keeps one event loop alive for all the tests inside its scope.
    """
    for entry in _open_runners:
        if (
            entry.backend == backend_name
            and entry.options == backend_options
            and not entry.runner.closed
        ):
            break
    else:
        entry = _OpenRunner(
            backend_name,
            dict(backend_options),
            create_runner(backend_name, backend_options),
        )
        _open_runners.append(entry)

    entry.users += 1
    try:
        yield entry.runner
    finally:
        entry.users -= 1
        if entry.users == 0:
            _open_runners.remove(entry)
            entry.runner.close()


# -- configuration -------------------------------------------------------------


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "anyio_mode",
        default="strict",
        help='AnyIO plugin mode (either "strict" or "auto")',
    )
    group = parser.getgroup("AnyIO")
    group.addoption(
        "--anyio-mode",
        action="store",
        dest="anyio_mode",
        default=None,
        choices=("strict", "auto"),
        help='AnyIO plugin mode (either "strict" or "auto"; overrides the ini option)',
    )


def _anyio_mode(config: pytest.Config) -> str:
    mode = config.getoption("anyio_mode", None)
    if mode is None:
        mode = config.getini("anyio_mode")

    return str(mode)


def _asyncio_plugin_mode(config: pytest.Config) -> str | None:
    if not config.pluginmanager.has_plugin("asyncio"):
        return None

    mode = config.getoption("asyncio_mode", None)
    if mode is None:
        try:
            mode = config.getini("asyncio_mode")
        except ValueError:
            return None

    return str(mode) if mode else None


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "anyio: mark the (coroutine function) test to be run asynchronously via anyio.",
    )
    if _anyio_mode(config) == "auto" and _asyncio_plugin_mode(config) == "auto":
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                "AnyIO auto mode has been enabled together with pytest-asyncio auto "
                "mode. This may cause unexpected behavior."
            ),
            stacklevel=1,
        )


# -- collection ----------------------------------------------------------------


def _inner_test(obj: Any) -> Any:
    """The function a test really runs (Hypothesis wraps it in a sync one)."""
    hypothesis = getattr(obj, "hypothesis", None)
    inner = getattr(hypothesis, "inner_test", None)
    return inner if inner is not None else obj


def _is_async_test(obj: Any) -> bool:
    return inspect.iscoroutinefunction(_inner_test(obj))


def _has_own_anyio_mark(obj: Any) -> bool:
    marks = getattr(obj, "pytestmark", ())
    if not isinstance(marks, (list, tuple)):
        marks = [marks]

    return any(getattr(mark, "name", None) == "anyio" for mark in marks)


@pytest.hookimpl(tryfirst=True)
def pytest_pycollect_makeitem(
    collector: pytest.Collector, name: str, obj: object
) -> None:
    if not isinstance(collector, (pytest.Module, pytest.Class)):
        return
    if not collector.istestfunction(obj, name) or not _is_async_test(obj):
        return

    if (
        _anyio_mode(collector.config) == "auto"
        or collector.get_closest_marker("anyio") is not None
        or _has_own_anyio_mark(obj)
    ):
        # The marker means "use the anyio_backend fixture", which then
        # parametrises the test over the backends.
        pytest.mark.usefixtures("anyio_backend")(obj)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    # A marker added by another plugin after collection came too late for the
    # fixture closure; collect such tests again now that they use the fixture.
    replaced = False
    new_items: list[pytest.Item] = []
    for item in items:
        if (
            isinstance(item, pytest.Function)
            and "anyio_backend" not in item.fixturenames
            and item.get_closest_marker("anyio") is not None
            and _is_async_test(item.obj)
            and hasattr(item.parent, "_genfunctions")
        ):
            func = item.function
            pytest.mark.usefixtures("anyio_backend")(func)
            regenerated = list(item.parent._genfunctions(item.originalname, func))  # type: ignore[union-attr]
            for new_item in regenerated:
                if new_item.get_closest_marker("anyio") is None:
                    new_item.add_marker("anyio")
            new_items.extend(regenerated)
            replaced = True
        else:
            new_items.append(item)

    if replaced:
        items[:] = new_items


# -- running fixtures ----------------------------------------------------------


def _resolve_fixture_function(fixturedef: Any, request: pytest.FixtureRequest) -> Any:
    from _pytest.fixtures import resolve_fixture_function

    return resolve_fixture_function(fixturedef, request)


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(
    fixturedef: Any, request: pytest.FixtureRequest
) -> Generator[None, Any, None]:
    func = fixturedef.func
    is_agen = inspect.isasyncgenfunction(func)
    if (
        not (is_agen or inspect.iscoroutinefunction(func))
        or "anyio_backend" not in request.fixturenames
    ):
        yield
        return

    backend_name, backend_options = extract_backend_and_options(
        request.getfixturevalue("anyio_backend")
    )
    bound = _resolve_fixture_function(fixturedef, request)

    # pytest calls the (sync) replacement with the fixture's own arguments;
    # being a generator, it keeps the runner open until the fixture's teardown.
    def run_fixture(**kwargs: Any) -> Iterator[Any]:
        with get_runner(backend_name, backend_options) as runner:
            if is_agen:
                with _outcomes_unwrapped():
                    value, teardown = runner.run_asyncgen_fixture(bound, kwargs)
                yield value
                with _outcomes_unwrapped():
                    teardown()
            else:
                with _outcomes_unwrapped():
                    value = runner.run_fixture(bound, kwargs)
                yield value

    fixturedef.func = run_fixture
    try:
        yield
    finally:
        fixturedef.func = func


# -- running tests -------------------------------------------------------------


def _outcome_types() -> tuple[type[BaseException], ...]:
    from _pytest.outcomes import Exit, OutcomeException

    return (OutcomeException, Exit, KeyboardInterrupt, SystemExit)


def _unwrap_outcome(exc: BaseException) -> BaseException | None:
    """The one pytest outcome (skip, fail, exit...) an exception group carries."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]

    return exc if isinstance(exc, _outcome_types()) else None


@contextmanager
def _outcomes_unwrapped() -> Iterator[None]:
    """Let pytest see a skip/fail/exit raised inside a task group as itself."""
    try:
        yield
    except BaseExceptionGroup as group:
        outcome = _unwrap_outcome(group)
        if outcome is None:
            raise

        raise outcome from None


def _run_in(
    runner: TestRunner, func: Callable[..., Any], kwargs: dict[str, Any]
) -> None:
    with _outcomes_unwrapped():
        runner.run_test(func, kwargs)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    funcargs = pyfuncitem.funcargs
    if "anyio_backend" not in funcargs or not _is_async_test(pyfuncitem.obj):
        return None

    backend_name, backend_options = extract_backend_and_options(
        funcargs["anyio_backend"]
    )
    argnames = pyfuncitem._fixtureinfo.argnames
    testargs = {name: funcargs[name] for name in argnames}
    hypothesis = getattr(pyfuncitem.obj, "hypothesis", None)
    with get_runner(backend_name, backend_options) as runner:
        if hypothesis is None:
            _run_in(runner, pyfuncitem.obj, testargs)
            return True

        # Hypothesis calls inner_test once per example: swap in a sync stand-in
        # for this item only (the wrapper is shared by every backend's item).
        original = hypothesis.inner_test

        def run_example(*args: Any, **kwargs: Any) -> None:
            _run_in(runner, lambda: original(*args, **kwargs), {})

        hypothesis.inner_test = run_example
        try:
            pyfuncitem.obj(**testargs)
        finally:
            hypothesis.inner_test = original

    return True


# -- fixtures ------------------------------------------------------------------


@pytest.fixture(scope="module", params=get_available_backends())
def anyio_backend(request: pytest.FixtureRequest) -> Any:
    return request.param


@pytest.fixture
def anyio_backend_name(anyio_backend: Any) -> str:
    return extract_backend_and_options(anyio_backend)[0]


@pytest.fixture
def anyio_backend_options(anyio_backend: Any) -> dict[str, Any]:
    return extract_backend_and_options(anyio_backend)[1]


class FreePortFactory:
    """Hands out port numbers that were free, never the same one twice.

    Each port is checked by binding it on the loopback address of every
    address family this host supports (or only the given family).

    :param kind: ``socket.SOCK_STREAM`` (TCP) or ``socket.SOCK_DGRAM`` (UDP)
    """

    def __init__(self, kind: socket.SocketKind) -> None:
        self._kind = kind
        self._generated: set[int] = set()
        self._families: tuple[socket.AddressFamily, ...] | None = None

    @property
    def kind(self) -> socket.SocketKind:
        return self._kind

    def _supported_families(self) -> tuple[socket.AddressFamily, ...]:
        if self._families is None:
            families = [socket.AF_INET]
            if socket.has_ipv6:
                try:
                    with socket.socket(socket.AF_INET6, self._kind) as sock:
                        sock.bind(("::1", 0))
                except OSError:
                    pass
                else:
                    families.append(socket.AF_INET6)

            self._families = tuple(families)

        return self._families

    def __call__(self, family: socket.AddressFamily | None = None) -> int:
        """Return a port number that was free when checked.

        :param family: check only this address family instead of all supported
        """
        families = (family,) if family is not None else self._supported_families()
        while True:
            port = self._try_port(families)
            if port and port not in self._generated:
                self._generated.add(port)
                return port

    def _try_port(self, families: tuple[socket.AddressFamily, ...]) -> int:
        port = 0
        with ExitStack() as stack:
            for family in families:
                sock = stack.enter_context(socket.socket(family, self._kind))
                host = "::1" if family == socket.AF_INET6 else "127.0.0.1"
                try:
                    sock.bind((host, port))
                except OSError:
                    if port == 0:
                        raise
                    return 0

                if port == 0:
                    port = cast(int, sock.getsockname()[1])

        return port


@pytest.fixture(scope="session")
def free_tcp_port_factory() -> FreePortFactory:
    return FreePortFactory(socket.SOCK_STREAM)


@pytest.fixture(scope="session")
def free_udp_port_factory() -> FreePortFactory:
    return FreePortFactory(socket.SOCK_DGRAM)


@pytest.fixture
def free_tcp_port(free_tcp_port_factory: Callable[[], int]) -> int:
    return free_tcp_port_factory()


@pytest.fixture
def free_udp_port(free_udp_port_factory: Callable[[], int]) -> int:
    return free_udp_port_factory()
