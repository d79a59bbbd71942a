"""Memory object streams: in-process channels that carry Python objects between
tasks, with an optional buffer.

The state (buffer, queues of waiting tasks, counts of open handles) and the hot
methods live in the C++ core (``anyio._cpp``); the classes here add the
interfaces of :mod:`anyio.abc` on top, so a memory stream is an
:class:`~anyio.abc.ObjectSendStream` / :class:`~anyio.abc.ObjectReceiveStream`.
"""

from __future__ import annotations

import math
import sys
import warnings
from types import TracebackType
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from .. import _cpp
from .._tasks_info import TaskInfo, get_current_task
from ..abc import ObjectReceiveStream, ObjectSendStream

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

__all__ = (
    "MemoryObjectReceiveStream",
    "MemoryObjectSendStream",
    "MemoryObjectStreamStatistics",
)

T_Item = TypeVar("T_Item")
T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)


class MemoryObjectStreamStatistics(NamedTuple):
    current_buffer_used: int  #: number of items stored in the buffer
    #: maximum number of items that can be stored on this stream (or :data:`math.inf`)
    max_buffer_size: float
    open_send_streams: int  #: number of unclosed clones of the send stream
    open_receive_streams: int  #: number of unclosed clones of the receive stream
    #: number of tasks blocked on :meth:`MemoryObjectSendStream.send`
    tasks_waiting_send: int
    #: number of tasks blocked on :meth:`MemoryObjectReceiveStream.receive`
    tasks_waiting_receive: int


class _MemoryObjectItemReceiver(Generic[T_Item]):
    """A record of a task waiting for an item and the item it was given.

    The C++ core keeps its own waiter records; this class stays for code that
    builds or inspects these records by name.
    """

    def __init__(self) -> None:
        self.task_info: TaskInfo = get_current_task()
        self.item: T_Item | None = None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(task_info={self.task_info!r}, item={self.item!r})"
        )


class MemoryObjectSendStream(_cpp.MemorySendStreamBase, ObjectSendStream[T_contra]):
    """The sending end of a memory object stream.

    :meth:`clone` makes further handles; the receivers see the end of the stream
    once every handle has been closed.
    """

    if TYPE_CHECKING:

        def __init__(self, _state: _cpp.MemoryStreamState) -> None: ...

        async def send(self, item: T_contra) -> None:
            """Send an item, waiting while the buffer is full.

            :raises ~anyio.ClosedResourceError: if this handle was closed
            :raises ~anyio.BrokenResourceError: if every receive handle is closed
            """

        def send_nowait(self, item: T_contra) -> None:
            """Send an item without waiting.

            :raises ~anyio.WouldBlock: if the buffer is full and no task is
                waiting to receive
            """

        def clone(self) -> MemoryObjectSendStream[T_contra]: ...
        def statistics(self) -> MemoryObjectStreamStatistics: ...

    async def aclose(self) -> None:
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} at {id(self):x} {state} {self._state!r}>"


class MemoryObjectReceiveStream(
    _cpp.MemoryReceiveStreamBase, ObjectReceiveStream[T_co]
):
    """The receiving end of a memory object stream; ``async for`` receives until
    every send handle has been closed and the buffer is empty."""

    if TYPE_CHECKING:

        def __init__(self, _state: _cpp.MemoryStreamState) -> None: ...

        async def receive(self) -> T_co:
            """Receive the next item, waiting until one is available.

            :raises ~anyio.ClosedResourceError: if this handle was closed
            :raises ~anyio.EndOfStream: if every send handle was closed and the
                buffer is empty
            """

        def receive_nowait(self) -> T_co:
            """Receive the next item without waiting.

            :raises ~anyio.WouldBlock: if no item is available
            """

        def clone(self) -> MemoryObjectReceiveStream[T_co]: ...
        def statistics(self) -> MemoryObjectStreamStatistics: ...
        def __aiter__(self) -> Self: ...
        async def __anext__(self) -> T_co: ...

    async def aclose(self) -> None:
        self.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<{type(self).__name__} at {id(self):x} {state} {self._state!r}>"


class create_memory_object_stream(
    tuple[MemoryObjectSendStream[T_Item], MemoryObjectReceiveStream[T_Item]],
):
    """Create a memory object stream: a pair of send and receive handles.

    Subscript it to name the item type: ``create_memory_object_stream[int](5)``.

    :param max_buffer_size: how many items the stream holds before ``send()``
        waits for a receiver (an ``int``, or :data:`math.inf` for no limit);
        0 makes every send wait for a receiver
    :param item_type: deprecated; subscript the function instead
    :return: a tuple of (send stream, receive stream)
    """

    def __new__(  # type: ignore[misc]
        cls, max_buffer_size: float = 0, item_type: object = None
    ) -> tuple[MemoryObjectSendStream[T_Item], MemoryObjectReceiveStream[T_Item]]:
        if max_buffer_size != math.inf and not isinstance(max_buffer_size, int):
            raise ValueError("max_buffer_size must be either an integer or math.inf")
        if max_buffer_size < 0:
            raise ValueError("max_buffer_size cannot be negative")
        if item_type is not None:
            warnings.warn(
                "The item_type argument has been deprecated in AnyIO 4.0. "
                "Use create_memory_object_stream[YourItemType](...) instead.",
                DeprecationWarning,
                stacklevel=2,
            )

        state = _cpp.MemoryStreamState(max_buffer_size)
        return MemoryObjectSendStream(state), MemoryObjectReceiveStream(state)


# Public as anyio.create_memory_object_stream (this module does not export it).
create_memory_object_stream.__module__ = "anyio"


_cpp.register_hooks(memory_statistics=MemoryObjectStreamStatistics)
