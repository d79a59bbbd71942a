"""Join separate send and receive streams into one, and listeners into one."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from .._taskgroup import create_task_group
from ..abc import (
    ByteReceiveStream,
    ByteSendStream,
    ByteStream,
    Listener,
    ObjectReceiveStream,
    ObjectSendStream,
    ObjectStream,
    TaskGroup,
)

T_Item = TypeVar("T_Item")
T_Stream = TypeVar("T_Stream")


@dataclass(eq=False)
class StapledByteStream(ByteStream):
    """A bidirectional byte stream made of a send stream and a receive stream.

    Typed attributes come from both; the receive stream's win on conflicts.

    :param send_stream: the stream that :meth:`send` writes to
    :param receive_stream: the stream that :meth:`receive` reads from
    """

    send_stream: ByteSendStream
    receive_stream: ByteReceiveStream

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")

        return await self.receive_stream.receive(max_bytes)

    async def send(self, item: bytes) -> None:
        await self.send_stream.send(item)

    async def send_eof(self) -> None:
        """Close the send stream; the receive stream stays open."""
        await self.send_stream.aclose()

    async def aclose(self) -> None:
        await self.send_stream.aclose()
        await self.receive_stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {
            **self.send_stream.extra_attributes,
            **self.receive_stream.extra_attributes,
        }


@dataclass(eq=False)
class StapledObjectStream(ObjectStream[T_Item]):
    """A bidirectional object stream made of a send stream and a receive stream.

    Typed attributes come from both; the receive stream's win on conflicts.

    :param send_stream: the stream that :meth:`send` writes to
    :param receive_stream: the stream that :meth:`receive` reads from
    """

    send_stream: ObjectSendStream[T_Item]
    receive_stream: ObjectReceiveStream[T_Item]

    async def receive(self) -> T_Item:
        return await self.receive_stream.receive()

    async def send(self, item: T_Item) -> None:
        await self.send_stream.send(item)

    def send_nowait(self, item: T_Item) -> None:
        """Send an item without waiting, if the send stream supports that.

        :raises NotImplementedError: if the send stream has no ``send_nowait()``
        """
        # Look the method up first, so that an AttributeError raised inside
        # send_nowait() itself is not mistaken for a missing method.
        try:
            send_nowait = self.send_stream.send_nowait  # type: ignore[attr-defined]
        except AttributeError:
            raise NotImplementedError(
                f"'send_nowait' method not implemented in {type(self.send_stream)}"
            ) from None

        send_nowait(item)

    async def send_eof(self) -> None:
        """Close the send stream; the receive stream stays open."""
        await self.send_stream.aclose()

    async def aclose(self) -> None:
        await self.send_stream.aclose()
        await self.receive_stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {
            **self.send_stream.extra_attributes,
            **self.receive_stream.extra_attributes,
        }


@dataclass(eq=False)
class MultiListener(Listener[T_Stream]):
    """Serves several listeners at once as if they were one.

    Nested multi-listeners are flattened: their listeners move into this one.
    Typed attributes come from all listeners; later ones win on conflicts.

    :param listeners: the listeners to serve
    """

    listeners: Sequence[Listener[T_Stream]]

    def __post_init__(self) -> None:
        flattened: list[Listener[T_Stream]] = []
        for listener in self.listeners:
            if isinstance(listener, MultiListener):
                flattened.extend(listener.listeners)
                # The nested one must not close the moved listeners again.
                del listener.listeners[:]  # type: ignore[attr-defined]
            else:
                flattened.append(listener)

        self.listeners = flattened

    async def serve(
        self, handler: Callable[[T_Stream], Any], task_group: TaskGroup | None = None
    ) -> None:
        async with create_task_group() as tg:
            for listener in self.listeners:
                tg.start_soon(listener.serve, handler, task_group)

    async def aclose(self) -> None:
        for listener in self.listeners:
            await listener.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        attributes: dict[Any, Callable[[], Any]] = {}
        for listener in self.listeners:
            attributes.update(listener.extra_attributes)

        return attributes


__all__ = (
    "MultiListener",
    "StapledByteStream",
    "StapledObjectStream",
)
