"""A drop-in anyio whose structured-concurrency core runs in C++.

The public names are those of anyio 4.16; each section below is one area of the
API and imports from the private module that implements it.
"""

from __future__ import annotations

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

# -- cancel scopes, task groups, task introspection ---------------------------

# -- synchronization primitives -----------------------------------------------

# -- memory object streams ----------------------------------------------------

# -- typed attributes, resources, context manager mixins ----------------------

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

# -- submodules ----------------------------------------------------------------
from . import functools as functools
from . import itertools as itertools
