"""The interface of a running child process."""

from __future__ import annotations

from abc import abstractmethod
from signal import Signals

from ._resources import AsyncResource
from ._streams import ByteReceiveStream, ByteSendStream


class Process(AsyncResource):
    """A child process started by :func:`anyio.open_process`."""

    @abstractmethod
    async def wait(self) -> int:
        """Wait for the process to exit and return its exit code."""

    @abstractmethod
    def terminate(self) -> None:
        """Ask the process to terminate (``SIGTERM`` on POSIX)."""

    @abstractmethod
    def kill(self) -> None:
        """Kill the process (``SIGKILL`` on POSIX)."""

    @abstractmethod
    def send_signal(self, signal: Signals) -> None:
        """Send the given signal to the process (POSIX only)."""

    @property
    @abstractmethod
    def pid(self) -> int:
        """The process ID."""

    @property
    @abstractmethod
    def returncode(self) -> int | None:
        """The exit code, or None while the process is still running."""

    @property
    @abstractmethod
    def stdin(self) -> ByteSendStream | None:
        """The stream to the process's standard input, if piped."""

    @property
    @abstractmethod
    def stdout(self) -> ByteReceiveStream | None:
        """The stream from the process's standard output, if piped."""

    @property
    @abstractmethod
    def stderr(self) -> ByteReceiveStream | None:
        """The stream from the process's standard error, if piped."""
