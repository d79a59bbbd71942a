"""In-memory object streams of byte chunks, wrapped by the stream classes under test."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from anyio import ClosedResourceError, EndOfStream, TypedAttributeSet, typed_attribute
from anyio.abc import ObjectReceiveStream, ObjectSendStream


class Marker(TypedAttributeSet):
    """A typed attribute each side reports, to check attribute forwarding."""

    name: str = typed_attribute()


class ChunkSource(ObjectReceiveStream[bytes]):
    """Delivers the given chunks, then reports the end of the stream."""

    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)
        self.closed = False

    async def receive(self) -> bytes:
        if self.closed:
            raise ClosedResourceError
        if not self.chunks:
            raise EndOfStream

        return self.chunks.pop(0)

    async def aclose(self) -> None:
        self.closed = True

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {Marker.name: lambda: "source"}


class ChunkSink(ObjectSendStream[bytes]):
    """Keeps what is sent, in order, until closed."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False

    async def send(self, item: bytes) -> None:
        if self.closed:
            raise ClosedResourceError

        self.sent.append(item)

    async def aclose(self) -> None:
        self.closed = True

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {Marker.name: lambda: "sink"}
