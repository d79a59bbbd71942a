"""Byte streams over the non-blocking ends of OS pipes (a child process's
standard streams), driven by :mod:`anyio._fdwait` like the socket streams."""

from __future__ import annotations

import os
from typing import IO, Any

from ._exceptions import (
    BrokenResourceError,
    BusyResourceError,
    ClosedResourceError,
    EndOfStream,
)
from ._fdwait import notify_closing, wait_readable, wait_writable
from .abc import ByteReceiveStream, ByteSendStream
from .lowlevel import cancel_shielded_checkpoint, checkpoint, checkpoint_if_cancelled


class _PipeEnd:
    _file: IO[Any]
    _fd: int
    _closed: bool
    _busy: bool

    def _init_pipe(self, file: IO[Any]) -> None:
        self._file = file
        self._fd = file.fileno()
        os.set_blocking(self._fd, False)
        self._closed = False
        self._busy = False
        self._released = False

    def _release(self) -> None:
        """Let go of the descriptor (once), leaving the stream's state alone."""
        if not self._released:
            self._released = True
            try:
                notify_closing(self._fd)
            finally:
                self._file.close()

    def _close_now(self) -> None:
        if not self._closed:
            self._closed = True
            self._release()

    async def aclose(self) -> None:
        self._close_now()
        await checkpoint()


class PipeReceiveStream(_PipeEnd, ByteReceiveStream):
    """The reading end of a pipe (a child's stdout or stderr)."""

    def __init__(self, file: IO[Any]):
        self._init_pipe(file)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not isinstance(max_bytes, int) or max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")

        if self._busy:
            raise BusyResourceError("reading from")

        self._busy = True
        try:
            await checkpoint_if_cancelled()
            waited = False
            while True:
                if self._closed:
                    raise ClosedResourceError

                if self._released:
                    # The end of the stream was read before: the descriptor is
                    # gone, and every later read is at the end too.
                    data = b""
                    break

                try:
                    data = os.read(self._fd, max_bytes)
                except (BlockingIOError, InterruptedError):
                    await wait_readable(self._fd)
                    waited = True
                except OSError as exc:
                    if self._closed:
                        raise ClosedResourceError from None

                    raise BrokenResourceError from exc
                else:
                    break

            if not waited:
                await cancel_shielded_checkpoint()
        finally:
            self._busy = False

        if not data:
            # Nothing more can come: the descriptor is closed now rather than
            # when the stream is, so a stream read to its end and then dropped
            # (a child whose grandchild held the pipe open until it exited)
            # leaves no open pipe behind. The stream stays open: receive()
            # keeps raising EndOfStream until aclose().
            self._release()
            raise EndOfStream

        return data


class PipeSendStream(_PipeEnd, ByteSendStream):
    """The writing end of a pipe (a child's stdin)."""

    def __init__(self, file: IO[Any]):
        self._init_pipe(file)

    async def send(self, item: bytes) -> None:
        if self._busy:
            raise BusyResourceError("writing to")

        self._busy = True
        try:
            await checkpoint_if_cancelled()
            view = memoryview(item).cast("B")
            waited = False
            while True:
                if self._closed:
                    raise ClosedResourceError

                try:
                    written = os.write(self._fd, view)
                except (BlockingIOError, InterruptedError):
                    await wait_writable(self._fd)
                    waited = True
                except OSError as exc:
                    if self._closed:
                        raise ClosedResourceError from None

                    raise BrokenResourceError from exc
                else:
                    view = view[written:]
                    if not view:
                        break

            if not waited:
                await cancel_shielded_checkpoint()
        finally:
            self._busy = False
