"""Stream, listener and connectable interfaces.

Object streams carry arbitrary Python objects one at a time; byte streams carry
bytes without preserving the boundaries between sends. "Unreliable" streams may
lose or reorder items (datagram sockets); the others may not.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeAlias, TypeVar

from .._exceptions import EndOfStream
from .._typedattr import TypedAttributeProvider
from ._resources import AsyncResource

if TYPE_CHECKING:
    from ._tasks import TaskGroup

T_Item = TypeVar("T_Item")
T_co = TypeVar("T_co", covariant=True)
T_contra = TypeVar("T_contra", contravariant=True)


class UnreliableObjectReceiveStream(
    AsyncResource, TypedAttributeProvider, Generic[T_co]
):
    """Receives objects that may have been lost or reordered on the way.

    ``async for`` over the stream receives items until the stream ends.
    """

    def __aiter__(self) -> UnreliableObjectReceiveStream[T_co]:
        return self

    async def __anext__(self) -> T_co:
        try:
            return await self.receive()
        except EndOfStream:
            raise StopAsyncIteration from None

    @abstractmethod
    async def receive(self) -> T_co:
        """Receive the next item.

        :raises ~anyio.ClosedResourceError: if this stream was closed
        :raises ~anyio.EndOfStream: if the other end finished sending
        :raises ~anyio.BrokenResourceError: if the stream broke
        """


class UnreliableObjectSendStream(
    AsyncResource, TypedAttributeProvider, Generic[T_contra]
):
    """Sends objects without a guarantee that they arrive, or arrive in order."""

    @abstractmethod
    async def send(self, item: T_contra) -> None:
        """Send an item.

        :raises ~anyio.ClosedResourceError: if this stream was closed
        :raises ~anyio.BrokenResourceError: if the receiving end went away
        """


class UnreliableObjectStream(
    UnreliableObjectReceiveStream[T_Item], UnreliableObjectSendStream[T_Item]
):
    """A bidirectional unreliable object stream."""


class ObjectReceiveStream(UnreliableObjectReceiveStream[T_co]):
    """Receives every sent object exactly once, in the order sent."""


class ObjectSendStream(UnreliableObjectSendStream[T_contra]):
    """Sends objects that arrive exactly once, in order."""


class ObjectStream(
    ObjectReceiveStream[T_Item],
    ObjectSendStream[T_Item],
    UnreliableObjectStream[T_Item],
):
    """A bidirectional reliable object stream."""

    @abstractmethod
    async def send_eof(self) -> None:
        """Close the sending direction only; receiving keeps working."""


class ByteReceiveStream(AsyncResource, TypedAttributeProvider):
    """Receives bytes in chunks whose sizes need not match what was sent.

    ``async for`` over the stream yields chunks until the stream ends.
    """

    def __aiter__(self) -> ByteReceiveStream:
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.receive()
        except EndOfStream:
            raise StopAsyncIteration from None

    @abstractmethod
    async def receive(self, max_bytes: int = 65536) -> bytes:
        """Receive at most `max_bytes` bytes (at least one).

        :param max_bytes: the largest chunk to return
        :raises ~anyio.EndOfStream: if the other end finished sending
        """


class ByteSendStream(AsyncResource, TypedAttributeProvider):
    """Sends bytes as a continuous stream."""

    @abstractmethod
    async def send(self, item: bytes) -> None:
        """Send the given bytes."""


class ByteStream(ByteReceiveStream, ByteSendStream):
    """A bidirectional byte stream."""

    @abstractmethod
    async def send_eof(self) -> None:
        """Close the sending direction only; receiving keeps working."""


#: A receive stream of bytes of either kind, possibly lossy.
AnyUnreliableByteReceiveStream: TypeAlias = (
    UnreliableObjectReceiveStream[bytes] | ByteReceiveStream
)
#: A send stream of bytes of either kind, possibly lossy.
AnyUnreliableByteSendStream: TypeAlias = (
    UnreliableObjectSendStream[bytes] | ByteSendStream
)
#: A bidirectional stream of bytes of either kind, possibly lossy.
AnyUnreliableByteStream: TypeAlias = UnreliableObjectStream[bytes] | ByteStream
#: A reliable receive stream of bytes: an object stream of bytes or a byte stream.
AnyByteReceiveStream: TypeAlias = ObjectReceiveStream[bytes] | ByteReceiveStream
#: A reliable send stream of bytes: an object stream of bytes or a byte stream.
AnyByteSendStream: TypeAlias = ObjectSendStream[bytes] | ByteSendStream
#: A reliable bidirectional stream of bytes of either kind.
AnyByteStream: TypeAlias = ObjectStream[bytes] | ByteStream


class Listener(AsyncResource, TypedAttributeProvider, Generic[T_co]):
    """Accepts incoming connections."""

    @abstractmethod
    async def serve(
        self, handler: Callable[[T_co], Any], task_group: TaskGroup | None = None
    ) -> None:
        """Accept connections forever, running `handler` on each in a new task.

        :param handler: called with each accepted connection
        :param task_group: the task group to run handlers in (by default, one
            created for the duration of this call)
        """


class ObjectStreamConnectable(Generic[T_co], metaclass=ABCMeta):
    """Something that can open a new object stream on demand."""

    @abstractmethod
    async def connect(self) -> ObjectStream[T_co]:
        """Open and return a new object stream."""


class ByteStreamConnectable(metaclass=ABCMeta):
    """Something that can open a new byte stream on demand."""

    @abstractmethod
    async def connect(self) -> ByteStream:
        """Open and return a new byte stream."""


#: Opens either an object stream of bytes or a byte stream.
AnyByteStreamConnectable: TypeAlias = (
    ObjectStreamConnectable[bytes] | ByteStreamConnectable
)
