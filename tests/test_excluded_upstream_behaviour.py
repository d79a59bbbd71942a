"""The public behaviour behind upstream tests that the conformance run excludes.

Each upstream test listed in ``conformance/exclusions.toml`` reaches into
upstream's private machinery, but most also check something a user can see.
The tests here check that visible part through the public API (and, where no
public hook exists, through this package's own private seams), so that every
exclusion names a test of ours (its ``covered_by`` field).
"""

from __future__ import annotations

import asyncio
import compileall
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from tests._backends import ASYNCIO_IDS, on_backends

import anyio
from anyio import (
    CancelScope,
    ClosedResourceError,
    RunFinishedError,
    create_task_group,
    current_time,
    fail_after,
    from_thread,
    open_process,
    sleep,
    sleep_until,
    wait_all_tasks_blocked,
)
from anyio.lowlevel import current_token
from anyio.streams.tls import TLSStream

pytestmark = pytest.mark.anyio

# An idle event loop thread uses well under this share of the wall-clock time;
# one that re-schedules a callback in a tight loop uses nearly all of it.
SPIN_CPU_SHARE = 0.2


# upstream: tests/test_lazyimport.py::test_build_lazy_map_without_module_file
def test_works_from_a_sourceless_copy(tmp_path: Path) -> None:
    """Without its .py files (only .pyc, as some installers ship it), anyio still
    imports, resolves its public names and submodules lazily, lists them in dir()
    and reports the public module names."""
    package = Path(anyio.__file__).parent
    copy = tmp_path / "anyio"
    shutil.copytree(package, copy, ignore=shutil.ignore_patterns("__pycache__"))
    assert compileall.compile_dir(copy, legacy=True, quiet=1)
    for source in copy.rglob("*.py"):
        source.unlink()

    script = textwrap.dedent(
        """\
        import types
        import anyio
        assert anyio.__file__.endswith(".pyc"), anyio.__file__
        assert anyio.sleep.__module__ == "anyio", anyio.sleep.__module__
        assert anyio.CancelScope.__module__ == "anyio"
        assert isinstance(anyio.to_thread, types.ModuleType)
        assert "to_thread" in dir(anyio) and "sleep" in dir(anyio)
        import anyio.abc
        assert anyio.abc.UDPSocket.__module__ == "anyio.abc"
        print("ok")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# upstream: tests/test_eventloop.py::test_sleep_until_in_past
async def test_sleep_until_a_past_deadline_is_a_checkpoint() -> None:
    """A deadline in the past returns at once, but still as a checkpoint: a
    cancelled scope around it is honoured."""
    with fail_after(5):
        await sleep_until(current_time() - 500.102352)

    with CancelScope() as scope:
        scope.cancel()
        await sleep_until(current_time() - 500.102352)

    assert scope.cancelled_caught


# upstream: tests/test_eventloop.py::test_run_known_but_uninstalled_backend
def test_run_names_the_extra_of_a_missing_backend() -> None:
    """run() with a backend anyio knows but whose library is not installed
    raises LookupError telling how to install it."""
    script = textwrap.dedent(
        """\
        import sys
        sys.modules["trio"] = None  # as if Trio were not installed
        import anyio

        async def main():
            pass

        try:
            anyio.run(main, backend="trio")
        except LookupError as exc:
            print(exc)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "pip install anyio[trio]" in result.stdout


# upstream: tests/test_from_thread.py::test_run_sync_soon_closed_event_loop
def test_calls_into_a_finished_loop_run_nothing(anyio_backend_name: str) -> None:
    """A token whose event loop has ended makes from_thread calls raise
    RunFinishedError without running the function."""
    calls: list[str] = []

    async def get_token() -> object:
        return current_token()

    async def record() -> None:
        calls.append("async")

    token = anyio.run(get_token, backend=anyio_backend_name)
    with pytest.raises(RunFinishedError):
        from_thread.run_sync(calls.append, "sync", token=token)  # type: ignore[arg-type]
    with pytest.raises(RunFinishedError):
        from_thread.run(record, token=token)  # type: ignore[arg-type]

    assert calls == []


# upstream: tests/test_taskgroups.py::test_cancel_with_nested_task_groups
async def test_cancelling_around_a_shielded_task_in_nested_groups() -> None:
    """Cancelling an outer task group does not interrupt a shielded task two
    groups down, the enclosing groups wait for it, and the pending cancellation
    does not keep the event loop busy meanwhile."""
    events: list[str] = []
    cpu_share: list[float] = []

    async def shielded_task() -> None:
        with CancelScope(shield=True):
            wall, cpu = time.monotonic(), time.thread_time()
            await sleep(0.3)
            cpu_share.append((time.thread_time() - cpu) / (time.monotonic() - wall))
            events.append("shielded task done")

    async def middle_task() -> None:
        async with create_task_group() as tg:
            tg.start_soon(shielded_task)

    async with create_task_group() as tg:
        tg.start_soon(middle_task)
        await wait_all_tasks_blocked()
        tg.cancel_scope.cancel()

    assert events == ["shielded task done"]
    assert cpu_share[0] < SPIN_CPU_SHARE


# upstream: tests/test_taskgroups.py::test_no_spin_on_done_task_in_cancel_scope
@on_backends(*ASYNCIO_IDS)
async def test_cancelling_a_scope_left_open_by_a_finished_task() -> None:
    """A cancel scope entered by an asyncio task that finished without leaving
    it can still be cancelled, and that leaves the event loop idle."""

    async def owner() -> CancelScope:
        return CancelScope().__enter__()

    scope = await asyncio.create_task(owner())
    scope.cancel()
    wall, cpu = time.monotonic(), time.thread_time()
    await sleep(0.3)
    share = (time.thread_time() - cpu) / (time.monotonic() - wall)
    assert scope.cancel_called
    assert share < SPIN_CPU_SHARE


@pytest.fixture
def server_sock() -> Any:
    with socket.create_server(("127.0.0.1", 0)) as sock:
        yield sock


# upstream: tests/test_sockets.py::TestTCPStream::test_connect_tcp_closes_winner_on_outer_cancellation
async def test_connect_tcp_closes_a_won_connection_when_cancelled(
    server_sock: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection attempt that succeeds just as the caller is cancelled is
    closed, not leaked. (No public hook reaches that moment: this patches our
    own per-attempt connect.)"""
    import anyio._sockets

    original = anyio._sockets._connect_socket
    connected: list[socket.socket] = []

    async def connect_then_cancel(*args: Any) -> socket.socket:
        sock = await original(*args)
        connected.append(sock)
        scope.cancel()
        return sock

    monkeypatch.setattr(anyio._sockets, "_connect_socket", connect_then_cancel)
    returned = []
    with CancelScope() as scope:
        returned.append(await anyio.connect_tcp(*server_sock.getsockname()))

    for stream in returned:
        await stream.aclose()

    assert returned == []
    assert scope.cancelled_caught
    assert len(connected) == 1
    assert connected[0].fileno() == -1


def _resolve_everything_to(
    monkeypatch: pytest.MonkeyPatch, results: list[tuple[Any, ...]]
) -> None:
    # uvloop has its own resolver, which patching socket.getaddrinfo would not
    # reach: replace our own resolver function instead.
    import anyio._sockets

    async def resolve(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        return results

    monkeypatch.setattr(anyio._sockets, "_resolve", resolve)


# upstream: tests/test_sockets.py::TestTCPStream::test_connect_tcp_with_tls_unicode_hostname
async def test_connect_tcp_passes_a_unicode_host_name_to_tls_as_is(
    server_sock: socket.socket, monkeypatch: pytest.MonkeyPatch
) -> None:
    """connect_tcp(tls=True) hands the host name it was given, not an IDNA
    encoding of it, to TLSStream.wrap (which does the certificate matching)."""
    host, port = server_sock.getsockname()
    _resolve_everything_to(
        monkeypatch, [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (host, port))]
    )
    hostnames: list[object] = []

    async def fake_wrap(transport_stream: Any, **kwargs: Any) -> Any:
        hostnames.append(kwargs.get("hostname"))
        await transport_stream.aclose()
        return transport_stream

    monkeypatch.setattr(TLSStream, "wrap", fake_wrap)
    stream = await anyio.connect_tcp("faß.de", port, tls=True)
    assert hostnames == ["faß.de"]
    with pytest.raises(ClosedResourceError):
        await stream.send(b"x")


# upstream: tests/test_sockets.py::TestTCPListener::test_tcp_listener_total_bind_failure
async def test_tcp_listener_gives_up_without_a_consistent_port(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When the port picked for the first address can never be bound on the
    others, create_tcp_listener gives up after some tries with an OSError."""
    _resolve_everything_to(
        monkeypatch,
        [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", 0)),
        ],
    )
    original_bind = socket.socket.bind
    attempts: list[int] = []

    def bind(self: socket.socket, address: Any) -> None:
        # Pretend that every explicitly requested port is already in use
        if address[1] != 0:
            attempts.append(address[1])
            raise OSError(98, "Address already in use")

        original_bind(self, address)

    monkeypatch.setattr(socket.socket, "bind", bind)
    with pytest.raises(
        OSError, match="Could not create 2 listeners with a consistent port"
    ):
        await anyio.create_tcp_listener(local_host="two.test")

    assert len(attempts) > 1


PY = sys.executable


# upstream: tests/test_subprocesses.py::test_arguments_passed_through
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process options")
async def test_open_process_passes_posix_options_through(tmp_path: Path) -> None:
    """open_process hands cwd, env, start_new_session, pass_fds, user, group,
    extra_groups and umask to the new process."""
    code = textwrap.dedent(
        """\
        import os, sys
        print(os.getcwd())
        print(os.environ.get("FOO"))
        print(os.getsid(0))
        print(os.read(int(sys.argv[1]), 10).decode())
        print(os.getuid(), os.getgid())
        print(sorted(os.getgroups()))
        print(oct(os.umask(0)))
        """
    )
    read_end, write_end = os.pipe()
    os.write(write_end, b"passed")
    os.close(write_end)
    options: dict[str, Any] = {
        "cwd": tmp_path,
        "env": {**os.environ, "FOO": "bar"},
        "start_new_session": True,
        "pass_fds": (read_end,),
        "user": os.getuid(),
        "group": os.getgid(),
        "umask": 0o027,
    }
    # Setting the supplementary groups needs privileges
    expected_groups = sorted(os.getgroups())
    if os.geteuid() == 0:
        options["extra_groups"] = [1, 2]
        expected_groups = [1, 2]

    try:
        async with await open_process(
            [PY, "-c", code, str(read_end)], stdin=subprocess.DEVNULL, **options
        ) as process:
            assert process.stdout is not None
            output = b""
            async for chunk in process.stdout:
                output += chunk
            assert await process.wait() == 0
    finally:
        os.close(read_end)

    lines = output.decode().splitlines()
    assert lines == [
        str(tmp_path),
        "bar",
        lines[2],
        "passed",
        f"{os.getuid()} {os.getgid()}",
        str(expected_groups),
        "0o27",
    ]
    assert int(lines[2]) != os.getsid(0)


# upstream: tests/test_subprocesses.py::test_arguments_passed_through
@pytest.mark.skipif(sys.platform == "win32", reason="POSIX behaviour")
@pytest.mark.parametrize(
    "anyio_backend",
    # uvloop's subprocess support does not go through subprocess.Popen:
    # upstream ignores these options there too
    [
        pytest.param(("asyncio", {}), id="asyncio"),
        pytest.param(("trio", {}), id="trio"),
    ],
)
@pytest.mark.parametrize(
    "option",
    [{"startupinfo": object()}, {"creationflags": 4}],
    ids=["startupinfo", "creationflags"],
)
async def test_open_process_rejects_windows_only_options(
    option: dict[str, Any],
) -> None:
    with pytest.raises(ValueError, match="only supported on Windows"):
        async with await open_process([PY, "-c", "pass"], **option):
            pass
