"""Buffering wrappers for byte streams: exact-size and delimited reads."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, SupportsIndex

from .._exceptions import (
    ClosedResourceError,
    DelimiterNotFound,
    EndOfStream,
    IncompleteRead,
)
from ..abc import (
    AnyByteReceiveStream,
    AnyByteStream,
    AnyByteStreamConnectable,
    ByteReceiveStream,
    ByteStream,
    ByteStreamConnectable,
)


def _check_max_bytes(max_bytes: int) -> None:
    if max_bytes < 1:
        raise ValueError("max_bytes must be a positive integer")


@dataclass(eq=False)
class BufferedByteReceiveStream(ByteReceiveStream):
    """Wraps a byte stream, or an object stream of bytes, with a read buffer.

    Besides ordinary :meth:`receive`, the buffer makes it possible to read an
    exact number of bytes (:meth:`receive_exactly`) or everything up to a
    delimiter (:meth:`receive_until`). Data read from the wrapped stream but not
    yet consumed stays in the buffer for the next call.

    :param receive_stream: the stream to read from
    """

    receive_stream: AnyByteReceiveStream
    _buffer: bytearray = field(init=False, default_factory=bytearray)
    _closed: bool = field(init=False, default=False)

    async def aclose(self) -> None:
        # Closed from this side even if closing the wrapped stream fails.
        self._closed = True
        await self.receive_stream.aclose()

    @property
    def buffer(self) -> bytes:
        """The bytes received from the wrapped stream but not consumed yet."""
        return bytes(self._buffer)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.receive_stream.extra_attributes

    def feed_data(self, data: Iterable[SupportsIndex], /) -> None:
        """Append `data` to the end of the buffer.

        Fed bytes come out after what is already buffered but before anything
        not yet read from the wrapped stream.

        :param data: the bytes (or any iterable of byte values) to append
        """
        self._buffer.extend(data)

    async def _read_more(self, wanted: int = 65536) -> None:
        """Append the next chunk from the wrapped stream to the buffer.

        :param wanted: how many bytes the caller still needs (a hint passed
            on to byte streams)
        :raises ~anyio.IncompleteRead: if the wrapped stream has ended
        """
        try:
            if isinstance(self.receive_stream, ByteReceiveStream):
                chunk = await self.receive_stream.receive(wanted)
            else:
                chunk = await self.receive_stream.receive()
        except EndOfStream as exc:
            raise IncompleteRead from exc

        self._buffer.extend(chunk)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        _check_max_bytes(max_bytes)
        if self._closed:
            raise ClosedResourceError

        if self._buffer:
            chunk = bytes(self._buffer[:max_bytes])
            del self._buffer[:max_bytes]
            return chunk

        if isinstance(self.receive_stream, ByteReceiveStream):
            return await self.receive_stream.receive(max_bytes)

        # Object streams may deliver empty messages; they carry no data, and
        # an empty result would look like a broken stream to the caller.
        while not (chunk := await self.receive_stream.receive()):
            pass

        if len(chunk) > max_bytes:
            # Keep the part that does not fit for the next call.
            self._buffer.extend(chunk[max_bytes:])
            return chunk[:max_bytes]

        return chunk

    async def receive_exactly(self, nbytes: int) -> bytes:
        """Read exactly `nbytes` bytes.

        :param nbytes: the number of bytes to read
        :return: the bytes read
        :raises ~anyio.IncompleteRead: if the stream ends before `nbytes` bytes
            arrive (the bytes that did arrive stay in the buffer)
        :raises ~anyio.ClosedResourceError: if this stream was closed
        """
        if self._closed:
            raise ClosedResourceError

        while len(self._buffer) < nbytes:
            await self._read_more(nbytes - len(self._buffer))

        result = bytes(self._buffer[:nbytes])
        del self._buffer[:nbytes]
        return result

    async def receive_until(self, delimiter: bytes, max_bytes: int) -> bytes:
        """Read up to (not including) the next occurrence of `delimiter`.

        The delimiter itself is consumed as well.

        :param delimiter: the bytes that end the data to read
        :param max_bytes: how many bytes to accumulate at most while looking
            for the delimiter
        :return: the bytes before the delimiter
        :raises ~anyio.IncompleteRead: if the stream ends before the delimiter
            is found (the received bytes stay in the buffer)
        :raises ~anyio.DelimiterNotFound: if `max_bytes` bytes were buffered
            without the delimiter among them
        :raises ~anyio.ClosedResourceError: if this stream was closed
        """
        if self._closed:
            raise ClosedResourceError

        search_from = 0
        while True:
            index = self._buffer.find(delimiter, search_from)
            if index >= 0:
                result = bytes(self._buffer[:index])
                del self._buffer[: index + len(delimiter)]
                return result

            if len(self._buffer) >= max_bytes:
                raise DelimiterNotFound(max_bytes)

            # Only the tail of the old buffer can start a delimiter that
            # straddles the boundary with the new data.
            search_from = max(len(self._buffer) - len(delimiter) + 1, 0)
            await self._read_more()


@dataclass(eq=False, init=False)
class BufferedByteStream(BufferedByteReceiveStream, ByteStream):
    """A bidirectional buffered stream: buffered reads, and sends passed
    straight through to the wrapped stream.

    :param stream: the bidirectional stream to wrap
    """

    def __init__(self, stream: AnyByteStream):
        super().__init__(stream)

    async def send(self, item: bytes) -> None:
        await self.receive_stream.send(item)  # type: ignore[union-attr]

    async def send_eof(self) -> None:
        await self.receive_stream.send_eof()  # type: ignore[union-attr]


class BufferedConnectable(ByteStreamConnectable):
    """Wraps every stream opened by another connectable in a
    :class:`BufferedByteStream`.

    :param connectable: the connectable that opens the underlying streams
    """

    def __init__(self, connectable: AnyByteStreamConnectable):
        self.connectable = connectable

    async def connect(self) -> BufferedByteStream:
        stream = await self.connectable.connect()
        return BufferedByteStream(stream)


__all__ = (
    "BufferedByteReceiveStream",
    "BufferedByteStream",
    "BufferedConnectable",
)
