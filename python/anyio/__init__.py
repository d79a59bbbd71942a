"""A drop-in anyio whose structured-concurrency core runs in C++.

The public names are those of anyio 4.16. None of them is imported with the
package: each is imported from the private module that implements it the first
time it is used (module ``__getattr__``), and so is each public submodule
(``anyio.abc``, ``anyio.streams``, ``anyio.to_thread``...), so ``import anyio``
stays cheap and ``anyio.streams.tls`` works without importing it first. The
imports under ``TYPE_CHECKING`` are the same table for type checkers; a test
checks that the two agree.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # -- exceptions ---------------------------------------------------------------
    from ._exceptions import BrokenResourceError as BrokenResourceError
    from ._exceptions import BrokenWorkerInterpreter as BrokenWorkerInterpreter
    from ._exceptions import BrokenWorkerProcess as BrokenWorkerProcess
    from ._exceptions import BusyResourceError as BusyResourceError
    from ._exceptions import ClosedResourceError as ClosedResourceError
    from ._exceptions import ConnectionFailed as ConnectionFailed
    from ._exceptions import DelimiterNotFound as DelimiterNotFound
    from ._exceptions import EndOfStream as EndOfStream
    from ._exceptions import FutureAlreadyFinished as FutureAlreadyFinished
    from ._exceptions import FutureCancelled as FutureCancelled
    from ._exceptions import FutureFailed as FutureFailed
    from ._exceptions import FutureNotFinished as FutureNotFinished
    from ._exceptions import IncompleteRead as IncompleteRead
    from ._exceptions import NoEventLoopError as NoEventLoopError
    from ._exceptions import RunFinishedError as RunFinishedError
    from ._exceptions import TaskCancelled as TaskCancelled
    from ._exceptions import TaskFailed as TaskFailed
    from ._exceptions import TaskNotFinished as TaskNotFinished
    from ._exceptions import TypedAttributeLookupError as TypedAttributeLookupError
    from ._exceptions import WouldBlock as WouldBlock

    # -- running, backends, time (foundation) -------------------------------------
    from ._backend import get_all_backends as get_all_backends
    from ._backend import get_available_backends as get_available_backends
    from ._backend import get_cancelled_exc_class as get_cancelled_exc_class
    from ._run import run as run
    from ._time import current_time as current_time
    from ._time import sleep as sleep
    from ._time import sleep_forever as sleep_forever
    from ._time import sleep_until as sleep_until

    # -- cancel scopes, task groups, task introspection ---------------------------
    from ._cancel import CancelScope as CancelScope
    from ._cancel import current_effective_deadline as current_effective_deadline
    from ._cancel import fail_after as fail_after
    from ._cancel import fail_at as fail_at
    from ._cancel import move_on_after as move_on_after
    from ._cancel import move_on_at as move_on_at
    from ._taskgroup import TASK_STATUS_IGNORED as TASK_STATUS_IGNORED
    from ._taskgroup import TaskHandle as TaskHandle
    from ._taskgroup import create_task_group as create_task_group
    from ._tasks_info import TaskInfo as TaskInfo
    from ._tasks_info import get_current_task as get_current_task
    from ._tasks_info import get_running_tasks as get_running_tasks
    from ._tasks_info import wait_all_tasks_blocked as wait_all_tasks_blocked

    # -- synchronization primitives -----------------------------------------------
    from ._sync import CapacityLimiter as CapacityLimiter
    from ._sync import CapacityLimiterStatistics as CapacityLimiterStatistics
    from ._sync import Condition as Condition
    from ._sync import ConditionStatistics as ConditionStatistics
    from ._sync import Event as Event
    from ._sync import EventStatistics as EventStatistics
    from ._sync import Future as Future
    from ._sync import Lock as Lock
    from ._sync import LockStatistics as LockStatistics
    from ._sync import ResourceGuard as ResourceGuard
    from ._sync import Semaphore as Semaphore
    from ._sync import SemaphoreStatistics as SemaphoreStatistics

    # -- memory object streams ----------------------------------------------------
    from .streams.memory import (
        create_memory_object_stream as create_memory_object_stream,
    )

    # -- typed attributes, resources, context manager mixins ----------------------
    from ._contextmanagers import AsyncContextManagerMixin as AsyncContextManagerMixin
    from ._contextmanagers import ContextManagerMixin as ContextManagerMixin
    from ._resources import aclose_forcefully as aclose_forcefully
    from ._typedattr import TypedAttributeProvider as TypedAttributeProvider
    from ._typedattr import TypedAttributeSet as TypedAttributeSet
    from ._typedattr import typed_attribute as typed_attribute

    # -- files, paths, temporary files --------------------------------------------
    from ._fileio import AsyncFile as AsyncFile
    from ._fileio import Path as Path
    from ._fileio import open_file as open_file
    from ._fileio import wrap_file as wrap_file
    from ._tempfile import NamedTemporaryFile as NamedTemporaryFile
    from ._tempfile import SpooledTemporaryFile as SpooledTemporaryFile
    from ._tempfile import TemporaryDirectory as TemporaryDirectory
    from ._tempfile import TemporaryFile as TemporaryFile
    from ._tempfile import gettempdir as gettempdir
    from ._tempfile import gettempdirb as gettempdirb
    from ._tempfile import mkdtemp as mkdtemp
    from ._tempfile import mkstemp as mkstemp

    # -- concurrency utilities (gather, as_completed, amap) -----------------------
    from ._concurrency_utils import amap as amap
    from ._concurrency_utils import as_completed as as_completed
    from ._concurrency_utils import gather as gather

    # -- networking, subprocesses, signals ----------------------------------------
    from ._signals import open_signal_receiver as open_signal_receiver
    from ._sockets import TCPConnectable as TCPConnectable
    from ._sockets import UNIXConnectable as UNIXConnectable
    from ._sockets import as_connectable as as_connectable
    from ._sockets import connect_tcp as connect_tcp
    from ._sockets import connect_unix as connect_unix
    from ._sockets import create_connected_udp_socket as create_connected_udp_socket
    from ._sockets import (
        create_connected_unix_datagram_socket as create_connected_unix_datagram_socket,
    )
    from ._sockets import create_tcp_listener as create_tcp_listener
    from ._sockets import create_udp_socket as create_udp_socket
    from ._sockets import create_unix_datagram_socket as create_unix_datagram_socket
    from ._sockets import create_unix_listener as create_unix_listener
    from ._sockets import getaddrinfo as getaddrinfo
    from ._sockets import getnameinfo as getnameinfo
    from ._sockets import notify_closing as notify_closing
    from ._sockets import wait_readable as wait_readable
    from ._sockets import wait_socket_readable as wait_socket_readable
    from ._sockets import wait_socket_writable as wait_socket_writable
    from ._sockets import wait_writable as wait_writable
    from ._subprocesses import open_process as open_process
    from ._subprocesses import run_process as run_process

    # -- submodules ------------------------------------------------------------
    from . import abc as abc
    from . import from_thread as from_thread
    from . import functools as functools
    from . import itertools as itertools
    from . import lowlevel as lowlevel
    from . import to_interpreter as to_interpreter
    from . import to_process as to_process
    from . import to_thread as to_thread
    from . import streams as streams

# Each public name and the private module (relative to this package) it lives in.
_PUBLIC: dict[str, str] = {
    "BrokenResourceError": "._exceptions",
    "BrokenWorkerInterpreter": "._exceptions",
    "BrokenWorkerProcess": "._exceptions",
    "BusyResourceError": "._exceptions",
    "ClosedResourceError": "._exceptions",
    "ConnectionFailed": "._exceptions",
    "DelimiterNotFound": "._exceptions",
    "EndOfStream": "._exceptions",
    "FutureAlreadyFinished": "._exceptions",
    "FutureCancelled": "._exceptions",
    "FutureFailed": "._exceptions",
    "FutureNotFinished": "._exceptions",
    "IncompleteRead": "._exceptions",
    "NoEventLoopError": "._exceptions",
    "RunFinishedError": "._exceptions",
    "TaskCancelled": "._exceptions",
    "TaskFailed": "._exceptions",
    "TaskNotFinished": "._exceptions",
    "TypedAttributeLookupError": "._exceptions",
    "WouldBlock": "._exceptions",
    "get_all_backends": "._backend",
    "get_available_backends": "._backend",
    "get_cancelled_exc_class": "._backend",
    "run": "._run",
    "current_time": "._time",
    "sleep": "._time",
    "sleep_forever": "._time",
    "sleep_until": "._time",
    "CancelScope": "._cancel",
    "current_effective_deadline": "._cancel",
    "fail_after": "._cancel",
    "fail_at": "._cancel",
    "move_on_after": "._cancel",
    "move_on_at": "._cancel",
    "TASK_STATUS_IGNORED": "._taskgroup",
    "TaskHandle": "._taskgroup",
    "create_task_group": "._taskgroup",
    "TaskInfo": "._tasks_info",
    "get_current_task": "._tasks_info",
    "get_running_tasks": "._tasks_info",
    "wait_all_tasks_blocked": "._tasks_info",
    "CapacityLimiter": "._sync",
    "CapacityLimiterStatistics": "._sync",
    "Condition": "._sync",
    "ConditionStatistics": "._sync",
    "Event": "._sync",
    "EventStatistics": "._sync",
    "Future": "._sync",
    "Lock": "._sync",
    "LockStatistics": "._sync",
    "ResourceGuard": "._sync",
    "Semaphore": "._sync",
    "SemaphoreStatistics": "._sync",
    "create_memory_object_stream": ".streams.memory",
    "AsyncContextManagerMixin": "._contextmanagers",
    "ContextManagerMixin": "._contextmanagers",
    "aclose_forcefully": "._resources",
    "TypedAttributeProvider": "._typedattr",
    "TypedAttributeSet": "._typedattr",
    "typed_attribute": "._typedattr",
    "AsyncFile": "._fileio",
    "Path": "._fileio",
    "open_file": "._fileio",
    "wrap_file": "._fileio",
    "NamedTemporaryFile": "._tempfile",
    "SpooledTemporaryFile": "._tempfile",
    "TemporaryDirectory": "._tempfile",
    "TemporaryFile": "._tempfile",
    "gettempdir": "._tempfile",
    "gettempdirb": "._tempfile",
    "mkdtemp": "._tempfile",
    "mkstemp": "._tempfile",
    "amap": "._concurrency_utils",
    "as_completed": "._concurrency_utils",
    "gather": "._concurrency_utils",
    "open_signal_receiver": "._signals",
    "TCPConnectable": "._sockets",
    "UNIXConnectable": "._sockets",
    "as_connectable": "._sockets",
    "connect_tcp": "._sockets",
    "connect_unix": "._sockets",
    "create_connected_udp_socket": "._sockets",
    "create_connected_unix_datagram_socket": "._sockets",
    "create_tcp_listener": "._sockets",
    "create_udp_socket": "._sockets",
    "create_unix_datagram_socket": "._sockets",
    "create_unix_listener": "._sockets",
    "getaddrinfo": "._sockets",
    "getnameinfo": "._sockets",
    "notify_closing": "._sockets",
    "wait_readable": "._sockets",
    "wait_socket_readable": "._sockets",
    "wait_socket_writable": "._sockets",
    "wait_writable": "._sockets",
    "open_process": "._subprocesses",
    "run_process": "._subprocesses",
}

# Public submodules reachable as attributes before they are imported.
_SUBMODULES = frozenset(
    {
        "abc",
        "from_thread",
        "functools",
        "itertools",
        "lowlevel",
        "streams",
        "to_interpreter",
        "to_process",
        "to_thread",
    }
)

# Old spellings that still resolve, with a DeprecationWarning: alias -> name.
_DEPRECATED = {"BrokenWorkerIntepreter": "BrokenWorkerInterpreter"}


# Hidden from type checkers, which see the imports above: a misspelt name
# stays an error for them.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        from ._lazy import resolve

        return resolve(globals(), name, _PUBLIC, _SUBMODULES, _DEPRECATED)

    def __dir__() -> list[str]:
        return sorted({*_PUBLIC, *_SUBMODULES})


del TYPE_CHECKING
