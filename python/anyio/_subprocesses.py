"""Child processes: :func:`open_process`, :func:`run_process` and the
:class:`~anyio.abc.Process` they return.

The child is started with :class:`subprocess.Popen` on both backends (so every
``Popen`` option works on every event loop, uvloop included); its pipes become
non-blocking byte streams and its exit is awaited through a pidfd where the
OS has them, by polling elsewhere. No event loop child watcher is involved.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from io import BytesIO
from subprocess import PIPE, CalledProcessError, CompletedProcess
from typing import IO, Any, TypeAlias, cast

from . import to_thread
from ._cancel import CancelScope
from ._fdwait import wait_readable
from ._pipes import PipeReceiveStream, PipeSendStream
from ._taskgroup import create_task_group
from ._time import sleep
from .abc import ByteReceiveStream, ByteSendStream, Process

StrOrBytesPath: TypeAlias = "str | bytes | os.PathLike[str] | os.PathLike[bytes]"

# Polling interval bounds for platforms without pidfds
_POLL_MIN = 0.001
_POLL_MAX = 0.05


class _Process(Process):
    """A child process with non-blocking pipe streams."""

    def __init__(self, popen: subprocess.Popen[bytes]):
        self._popen = popen
        self._stdin = PipeSendStream(popen.stdin) if popen.stdin else None
        self._stdout = PipeReceiveStream(popen.stdout) if popen.stdout else None
        self._stderr = PipeReceiveStream(popen.stderr) if popen.stderr else None

    async def aclose(self) -> None:
        # Closing our pipe ends first also unblocks a child stuck writing to a
        # pipe nobody reads (it gets EPIPE) so that it can exit.
        for stream in (self._stdin, self._stdout, self._stderr):
            if stream is not None:
                stream._close_now()

        try:
            await self.wait()
        except BaseException:
            # Never leave the child running (or unreaped) behind
            self.kill()
            with CancelScope(shield=True):
                await self.wait()

            raise

    async def wait(self) -> int:
        from .lowlevel import checkpoint

        returncode = self._popen.poll()
        if returncode is not None:
            await checkpoint()
            return returncode

        pidfd = _open_pidfd(self._popen.pid)
        if pidfd is not None:
            try:
                while returncode is None:
                    await wait_readable(pidfd)
                    returncode = self._popen.poll()
            finally:
                os.close(pidfd)

            return returncode

        delay = _POLL_MIN
        while returncode is None:
            await sleep(delay)
            delay = min(delay * 2, _POLL_MAX)
            returncode = self._popen.poll()

        return returncode

    def terminate(self) -> None:
        self._popen.terminate()

    def kill(self) -> None:
        self._popen.kill()

    def send_signal(self, signal: signal.Signals) -> None:
        self._popen.send_signal(signal)

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        return self._popen.poll()

    @property
    def stdin(self) -> ByteSendStream | None:
        return self._stdin

    @property
    def stdout(self) -> ByteReceiveStream | None:
        return self._stdout

    @property
    def stderr(self) -> ByteReceiveStream | None:
        return self._stderr


def _open_pidfd(pid: int) -> int | None:
    """A descriptor that becomes readable when the child exits, or None
    where the OS offers no such thing."""
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None

    try:
        return cast(int, pidfd_open(pid))
    except OSError:
        return None


async def open_process(
    command: StrOrBytesPath | Sequence[StrOrBytesPath],
    *,
    stdin: int | IO[Any] | None = PIPE,
    stdout: int | IO[Any] | None = PIPE,
    stderr: int | IO[Any] | None = PIPE,
    cwd: StrOrBytesPath | None = None,
    env: Mapping[str, str] | None = None,
    startupinfo: Any = None,
    creationflags: int = 0,
    start_new_session: bool = False,
    pass_fds: Sequence[int] = (),
    user: str | int | None = None,
    group: str | int | None = None,
    extra_groups: Iterable[str | int] | None = None,
    umask: int = -1,
) -> Process:
    """Start a child process without waiting for it.

    ``command`` given as a string (or bytes) runs through the shell; a
    sequence runs the program directly. The other arguments mean what they
    mean for :class:`subprocess.Popen`.

    The returned :class:`~anyio.abc.Process` is an async context manager:
    leaving it closes the pipes and waits for the child to exit (killing it if
    the wait is cancelled).

    :param stdin: ``PIPE`` (the default: ``process.stdin`` is a stream),
        ``DEVNULL``, a file object or descriptor, or ``None`` to inherit ours
    :param stdout: likewise, also ``STDOUT`` for stderr
    :param stderr: likewise
    """
    from .lowlevel import checkpoint, checkpoint_if_cancelled

    shell = isinstance(command, (str, bytes))
    # Windows-only options go to Popen everywhere: elsewhere it rejects values
    # other than the defaults with ValueError, as upstream lets it do.
    kwargs: dict[str, Any] = {
        "startupinfo": startupinfo,
        "creationflags": creationflags,
    }
    if sys.platform != "win32":
        kwargs["pass_fds"] = pass_fds
        kwargs["user"] = user
        kwargs["group"] = group
        kwargs["extra_groups"] = extra_groups
        kwargs["umask"] = umask

    spawn = partial(
        subprocess.Popen,
        command,
        shell=shell,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        env=env,
        start_new_session=start_new_session,
        bufsize=0,
        **kwargs,
    )
    # An already cancelled caller gets no child at all
    await checkpoint_if_cancelled()

    # Popen blocks until the child has exec'd (or failed to), so it runs in a
    # worker thread; shielded, since a child spawned behind a cancelled caller's
    # back would be left running with nobody to reap it.
    with CancelScope(shield=True):
        # (no text mode is asked for, so the pipes are binary)
        popen = cast("subprocess.Popen[bytes]", await to_thread.run_sync(spawn))

    process = _Process(popen)
    try:
        await checkpoint()
    except BaseException:
        process.kill()
        with CancelScope(shield=True):
            await process.aclose()

        raise

    return process


async def run_process(
    command: StrOrBytesPath | Sequence[StrOrBytesPath],
    *,
    input: bytes | None = None,
    stdin: int | IO[Any] | None = None,
    stdout: int | IO[Any] | None = PIPE,
    stderr: int | IO[Any] | None = PIPE,
    check: bool = True,
    cwd: StrOrBytesPath | None = None,
    env: Mapping[str, str] | None = None,
    startupinfo: Any = None,
    creationflags: int = 0,
    start_new_session: bool = False,
    pass_fds: Sequence[int] = (),
    user: str | int | None = None,
    group: str | int | None = None,
    extra_groups: Iterable[str | int] | None = None,
    umask: int = -1,
) -> CompletedProcess[bytes]:
    """Run a command to completion and collect its output.

    :param input: bytes to feed to the child's stdin (which is then closed);
        not together with ``stdin``
    :param check: raise :exc:`subprocess.CalledProcessError` if the child
        exits with a non-zero code
    :return: the exit code and the captured stdout and stderr (``None`` for a
        stream not captured)
    :raises ValueError: if both ``input`` and ``stdin`` are given
    """
    if input is not None and stdin is not None:
        raise ValueError("only one of stdin and input is allowed")

    outputs: list[bytes | None] = [None, None]

    async def drain(stream: ByteReceiveStream, index: int) -> None:
        buffer = BytesIO()
        async for chunk in stream:
            buffer.write(chunk)

        outputs[index] = buffer.getvalue()

    async with await open_process(
        command,
        stdin=PIPE if input else stdin,
        stdout=stdout,
        stderr=stderr,
        cwd=cwd,
        env=env,
        startupinfo=startupinfo,
        creationflags=creationflags,
        start_new_session=start_new_session,
        pass_fds=pass_fds,
        user=user,
        group=group,
        extra_groups=extra_groups,
        umask=umask,
    ) as process:
        async with create_task_group() as tg:
            if process.stdout:
                tg.start_soon(drain, process.stdout, 0)

            if process.stderr:
                tg.start_soon(drain, process.stderr, 1)

            if process.stdin and input:
                await process.stdin.send(input)
                await process.stdin.aclose()

            await process.wait()

    returncode = cast(int, process.returncode)
    if check and returncode != 0:
        raise CalledProcessError(returncode, command, outputs[0], outputs[1])

    return CompletedProcess(command, returncode, outputs[0], outputs[1])
