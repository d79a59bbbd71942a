"""The exception classes of anyio's public API.

Names, bases and messages follow anyio 4.16 so that ``except`` clauses written
for upstream anyio keep matching.
"""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


class BrokenResourceError(Exception):
    """A resource became unusable through something outside the caller's control
    (a peer vanished, a worker died, every receiver of a stream went away)."""


class BrokenWorkerProcess(Exception):
    """A worker process of :mod:`anyio.to_process` died or spoke out of turn."""


class BrokenWorkerInterpreter(Exception):
    """Code run in a worker interpreter raised an exception.

    :param excinfo: the exception information object the interpreter handed back;
        its ``formatted`` attribute holds the remote traceback as text
    """

    def __init__(self, excinfo: Any):
        # The remote traceback cannot cross interpreters as objects, only as text.
        super().__init__(excinfo.formatted)
        self.excinfo = excinfo


class BusyResourceError(Exception):
    """Another task is already using the resource in a way that excludes others."""

    def __init__(self, action: str):
        super().__init__(f"Another task is already {action} this resource")


class ClosedResourceError(Exception):
    """The resource was closed (by this side) and cannot be used any more."""


class ConnectionFailed(OSError):
    """Every attempt to connect failed (raised by connectables)."""


class DelimiterNotFound(Exception):
    """The delimiter did not appear within the maximum number of bytes."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            f"The delimiter was not found among the first {max_bytes} bytes"
        )


class EndOfStream(Exception):
    """The other end closed the stream: nothing more will arrive."""


class IncompleteRead(Exception):
    """The stream ended before the requested number of bytes (or the delimiter)
    arrived."""

    def __init__(self) -> None:
        super().__init__(
            "The stream was closed before the read operation could be completed"
        )


class TypedAttributeLookupError(LookupError):
    """No provider in the chain offers the requested typed attribute."""


class WouldBlock(Exception):
    """The ``*_nowait`` variant of an operation would have had to wait."""


class NoEventLoopError(RuntimeError):
    """An async function of anyio was called with no event loop running in this
    thread (or, for ``from_thread``, no event loop to reach)."""


class RunFinishedError(RuntimeError):
    """The event loop a token refers to has already finished."""

    def __init__(self) -> None:
        super().__init__(
            "The event loop associated with the given token has already finished"
        )


class TaskFailed(Exception):
    """The task behind a :class:`~anyio.TaskHandle` raised an exception; that
    exception is the ``__cause__``."""


class TaskCancelled(TaskFailed):
    """The task behind a :class:`~anyio.TaskHandle` was cancelled."""


class TaskNotFinished(Exception):
    """The task behind a :class:`~anyio.TaskHandle` has not finished yet."""


class FutureFailed(Exception):
    """The :class:`~anyio.Future` finished with an exception; that exception is
    the ``__cause__``."""


class FutureCancelled(FutureFailed):
    """The :class:`~anyio.Future` was cancelled."""


class FutureNotFinished(Exception):
    """The :class:`~anyio.Future` has no result or exception yet."""


class FutureAlreadyFinished(Exception):
    """The :class:`~anyio.Future` already has a result, an exception or was
    cancelled."""


def iterate_exceptions(
    exception: BaseException,
) -> Generator[BaseException, None, None]:
    """Yield the leaf exceptions of a (possibly nested) exception group."""
    if isinstance(exception, BaseExceptionGroup):
        for exc in exception.exceptions:
            yield from iterate_exceptions(exc)
    else:
        yield exception
