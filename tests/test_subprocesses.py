"""Child processes: open_process, run_process and the Process streams."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from textwrap import dedent

import pytest

from anyio import (
    BrokenResourceError,
    CancelScope,
    ClosedResourceError,
    EndOfStream,
    create_task_group,
    fail_after,
    open_process,
    run_process,
    wait_all_tasks_blocked,
)
from anyio.abc import ByteReceiveStream

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX process semantics"),
]

PY = sys.executable


async def read_line(stream: ByteReceiveStream) -> bytes:
    # One byte at a time, so nothing after the newline is consumed
    line = b""
    while not line.endswith(b"\n"):
        line += await stream.receive(1)

    return line


@pytest.mark.parametrize("shell", [False, True], ids=["exec", "shell"])
async def test_run_process_with_input(shell: bool) -> None:
    code = "import sys; print(sys.stdin.read()[::-1])"
    command = f'{PY} -c "{code}"' if shell else [PY, "-c", code]
    result = await run_process(command, input=b"abc")
    assert result.returncode == 0
    assert result.stdout.rstrip() == b"cba"
    assert result.stderr == b""
    assert result.args == command


async def test_run_process_check() -> None:
    code = "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)"
    with pytest.raises(subprocess.CalledProcessError) as exc_info:
        await run_process([PY, "-c", code])

    assert exc_info.value.returncode == 3
    assert exc_info.value.stdout.rstrip() == b"out"
    assert exc_info.value.stderr.rstrip() == b"err"

    result = await run_process([PY, "-c", code], check=False)
    assert result.returncode == 3


async def test_run_process_options(tmp_path: Path) -> None:
    code = "import os; print(os.getcwd()); print(os.environ['ANYIO_TEST'])"
    result = await run_process(
        [PY, "-c", code], cwd=tmp_path, env={**os.environ, "ANYIO_TEST": "yes"}
    )
    assert result.stdout.decode().split() == [str(tmp_path), "yes"]


async def test_run_process_new_session() -> None:
    code = "import os; print(os.getsid(0))"
    same = await run_process([PY, "-c", code])
    new = await run_process([PY, "-c", code], start_new_session=True)
    assert int(same.stdout) == os.getsid(0)
    assert int(new.stdout) != os.getsid(0)


async def test_run_process_user_group_umask() -> None:
    code = "import os; print(os.umask(0))"
    result = await run_process(
        [PY, "-c", code], user=os.getuid(), group=os.getgid(), umask=0o027
    )
    assert int(result.stdout) == 0o027


async def test_input_and_stdin_conflict(tmp_path: Path) -> None:
    with (tmp_path / "in").open("wb") as file:
        with pytest.raises(ValueError, match="only one of stdin and input"):
            await run_process([PY, "--version"], input=b"x", stdin=file)


async def test_run_process_uncaptured(capfd: pytest.CaptureFixture[str]) -> None:
    code = "import sys; print('to out'); print('to err', file=sys.stderr)"
    result = await run_process([PY, "-c", code], stdout=None, stderr=None)
    assert result.stdout is None and result.stderr is None
    out, err = capfd.readouterr()
    assert out == "to out\n"
    assert err == "to err\n"


async def test_files_as_standard_streams(tmp_path: Path) -> None:
    (tmp_path / "in").write_text("from a file\n")
    code = (
        "import sys; text = sys.stdin.read().strip(); "
        "print(text.upper()); print(text[::-1], file=sys.stderr)"
    )
    with (
        (tmp_path / "in").open("rb") as fin,
        (tmp_path / "out").open("wb") as fout,
        (tmp_path / "err").open("wb") as ferr,
    ):
        async with await open_process(
            [PY, "-c", code], stdin=fin, stdout=fout, stderr=ferr
        ) as process:
            assert process.stdin is None and process.stdout is None
            assert await process.wait() == 0

    assert (tmp_path / "out").read_text() == "FROM A FILE\n"
    assert (tmp_path / "err").read_text() == "elif a morf\n"


async def test_interactive_process_and_terminate(tmp_path: Path) -> None:
    script = tmp_path / "script.py"
    script.write_text(
        dedent(
            """\
            import signal, sys, time
            signal.signal(signal.SIGTERM, lambda *args: sys.exit(2))
            for line in sys.stdin:
                print(line.strip().upper(), flush=True)
                if line.strip() == "wait":
                    time.sleep(10)
            """
        )
    )
    async with await open_process([PY, str(script)]) as process:
        assert process.stdin and process.stdout
        assert process.pid > 0
        assert process.returncode is None
        await process.stdin.send(b"hello\n")
        assert await read_line(process.stdout) == b"HELLO\n"
        await process.stdin.send(b"wait\n")
        assert await read_line(process.stdout) == b"WAIT\n"
        process.terminate()
        with fail_after(5):
            assert await process.wait() == 2

        assert process.returncode == 2


async def test_kill_and_send_signal() -> None:
    # The child takes SIGINT's default handler back (a CI job started in the
    # background inherits SIGINT ignored) and says so before the signal is sent.
    child = (
        "import signal, time; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "print('ready', flush=True); time.sleep(10)"
    )
    async with await open_process([PY, "-c", child]) as process:
        assert process.stdout
        said = b""
        while not said.endswith(b"\n"):
            said += await process.stdout.receive()
        assert said == b"ready\n"
        process.send_signal(signal.SIGINT)
        assert await process.wait() != 0

    async with await open_process([PY, "-c", "import time; time.sleep(10)"]) as process:
        process.kill()
        assert await process.wait() == -signal.SIGKILL


async def test_concurrent_waits() -> None:
    results: list[int] = []

    async def wait() -> None:
        results.append(await process.wait())

    async with await open_process(
        [PY, "-c", "import time; time.sleep(0.2)"]
    ) as process:
        async with create_task_group() as tg:
            for _ in range(3):
                tg.start_soon(wait)

    assert results == [0, 0, 0]


@pytest.mark.parametrize("max_bytes", [0, -1])
async def test_receive_bad_max_bytes(max_bytes: int) -> None:
    async with await open_process([PY, "-c", "print('x')"]) as process:
        assert process.stdout
        with pytest.raises(ValueError, match="max_bytes must be a positive integer"):
            await process.stdout.receive(max_bytes)


async def test_streams_after_exit() -> None:
    async with await open_process([PY, "-c", ""]) as process:
        await process.wait()
        assert process.stdin and process.stdout and process.stderr
        with pytest.raises(BrokenResourceError):
            for _ in range(3):
                await process.stdin.send(b"nobody reads this")

        with pytest.raises(EndOfStream):
            await process.stdout.receive()

        with pytest.raises(EndOfStream):
            await process.stderr.receive()

    with pytest.raises(ClosedResourceError):
        await process.stdin.send(b"x")

    with pytest.raises(ClosedResourceError):
        await process.stdout.receive()


async def test_cancelled_exit_kills_child() -> None:
    with CancelScope() as scope:
        async with await open_process(
            [PY, "-c", "import time; time.sleep(10)"]
        ) as process:
            scope.cancel()

    assert scope.cancelled_caught
    assert process.returncode == -signal.SIGKILL
    assert process.stdout is not None
    with pytest.raises(ClosedResourceError):
        await process.stdout.receive()


async def test_close_while_reading() -> None:
    async with await open_process([PY, "-c", "import time; time.sleep(10)"]) as process:
        assert process.stdout
        async with create_task_group() as tg:

            async def close_later() -> None:
                await wait_all_tasks_blocked()
                assert process.stdout
                await process.stdout.aclose()

            tg.start_soon(close_later)
            with pytest.raises(ClosedResourceError):
                await process.stdout.receive()

        process.kill()


async def test_aclose_unblocks_writer() -> None:
    """Closing the process closes our end of its stdout, so a child blocked
    writing to it (nobody reading) gets EPIPE and can exit."""
    process = await open_process(
        [PY, "-c", "import sys; sys.stdout.write('x' * 10**7)"]
    )
    with fail_after(5):
        await process.aclose()

    assert process.returncode != 0


async def test_wait_does_not_wait_for_pipes() -> None:
    """A grandchild holding the stdout pipe open must not delay wait()."""
    code = dedent(
        """\
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"])
        """
    )
    process = await open_process([PY, "-c", code])
    assert process.stdin and process.stdout and process.stderr
    with fail_after(5):
        assert await process.wait() == 0

    # Closing stdin lets the grandchild finish; then the pipes end
    await process.stdin.aclose()
    with fail_after(5):
        async for _ in process.stdout:
            pass

    await process.aclose()


async def test_missing_program() -> None:
    with pytest.raises(FileNotFoundError):
        await open_process(["/nonexistent/program"])


async def test_cancelled_caller_spawns_nothing(tmp_path: Path) -> None:
    marker = tmp_path / "spawned"
    with CancelScope() as scope:
        scope.cancel()
        await open_process([PY, "-c", f"open({str(marker)!r}, 'w').close()"])

    assert scope.cancelled_caught
    # Spawning and running another child gives one started anyway time to
    # create the file
    await run_process([PY, "-c", "pass"])
    assert not marker.exists()
