"""Running synchronous functions in worker subinterpreters.

Subinterpreters need Python 3.13 or later; on older versions :func:`run_sync`
raises :exc:`RuntimeError`, as anyio 4.16 does there.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Final, TypeVar

from .lowlevel import RunVar

if sys.version_info >= (3, 11):
    from typing import TypeVarTuple, Unpack
else:
    from typing_extensions import TypeVarTuple, Unpack

if TYPE_CHECKING:
    from ._sync import CapacityLimiter

T_Retval = TypeVar("T_Retval")
PosArgsT = TypeVarTuple("PosArgsT")

#: Default number of worker interpreters running at once
DEFAULT_CPU_COUNT: Final = 8
#: Seconds an idle worker interpreter is kept
MAX_WORKER_IDLE_TIME: Final = 30

_default_interpreter_limiter: RunVar[CapacityLimiter] = RunVar(
    "_default_interpreter_limiter"
)


async def run_sync(
    func: Callable[[Unpack[PosArgsT]], T_Retval],
    *args: Unpack[PosArgsT],
    limiter: CapacityLimiter | None = None,
) -> T_Retval:
    """Call ``func(*args)`` in a worker subinterpreter and return its result.

    :raises RuntimeError: on Python versions without subinterpreter support
        (before 3.13), and on later ones, where this package does not run
        subinterpreters yet
    """
    if sys.version_info < (3, 13):
        raise RuntimeError("subinterpreters require at least Python 3.13")

    raise RuntimeError("this anyio build does not support subinterpreters yet")


def current_default_interpreter_limiter() -> CapacityLimiter:
    """The capacity limiter :func:`run_sync` uses by default (as many
    interpreters as CPUs, at most :data:`DEFAULT_CPU_COUNT`)."""
    from ._sync import CapacityLimiter

    try:
        return _default_interpreter_limiter.get()
    except LookupError:
        limiter = CapacityLimiter(
            min(os.cpu_count() or DEFAULT_CPU_COUNT, DEFAULT_CPU_COUNT)
        )
        _default_interpreter_limiter.set(limiter)
        return limiter


__all__ = (
    "current_default_interpreter_limiter",
    "run_sync",
)
