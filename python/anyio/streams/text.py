"""Text streams: encode strings onto byte streams and decode them back."""

from __future__ import annotations

import codecs
from collections.abc import Callable, Mapping
from dataclasses import InitVar, dataclass, field
from typing import Any

from .._exceptions import EndOfStream
from ..abc import (
    AnyByteReceiveStream,
    AnyByteSendStream,
    AnyByteStream,
    AnyByteStreamConnectable,
    ObjectReceiveStream,
    ObjectSendStream,
    ObjectStream,
    ObjectStreamConnectable,
)


@dataclass(eq=False)
class TextReceiveStream(ObjectReceiveStream[str]):
    """Decodes the bytes received from a stream into strings.

    A multi-byte character split between two chunks is held back until its
    remaining bytes arrive, so every string returned is complete.

    :param transport_stream: the stream to receive bytes from
    :param encoding: the encoding of the incoming bytes
    :param errors: how to handle undecodable bytes (see :func:`codecs.decode`)
    """

    transport_stream: AnyByteReceiveStream
    encoding: InitVar[str] = "utf-8"
    errors: InitVar[str] = "strict"
    _decoder: codecs.IncrementalDecoder = field(init=False)

    def __post_init__(self, encoding: str, errors: str) -> None:
        # Looking the codec up here makes an unknown encoding fail at once.
        decoder_class = codecs.getincrementaldecoder(encoding)
        self._decoder = decoder_class(errors=errors)

    async def receive(self) -> str:
        while True:
            try:
                chunk = await self.transport_stream.receive()
            except EndOfStream:
                # Whatever the decoder still holds is an incomplete character;
                # let the error handler decide what it becomes. The reset makes
                # later calls report the end of the stream, not the same error.
                try:
                    text = self._decoder.decode(b"", final=True)
                finally:
                    self._decoder.reset()

                if text:
                    return text

                raise

            text = self._decoder.decode(chunk)
            if text:
                return text

    async def aclose(self) -> None:
        await self.transport_stream.aclose()
        self._decoder.reset()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.transport_stream.extra_attributes


@dataclass(eq=False)
class TextSendStream(ObjectSendStream[str]):
    """Encodes strings and sends the bytes on a stream.

    Encodings that start with a byte order mark (``utf-16``, ``utf-32``,
    ``utf-8-sig``) write it only before the first string.

    :param transport_stream: the stream to send bytes on
    :param encoding: the encoding to use
    :param errors: how to handle unencodable characters (see
        :func:`codecs.encode`)
    """

    transport_stream: AnyByteSendStream
    encoding: InitVar[str] = "utf-8"
    errors: str = "strict"
    _encoder: codecs.IncrementalEncoder = field(init=False)

    def __post_init__(self, encoding: str) -> None:
        encoder_class = codecs.getincrementalencoder(encoding)
        self._encoder = encoder_class(errors=self.errors)

    async def send(self, item: str) -> None:
        encoded = self._encoder.encode(item)
        await self.transport_stream.send(encoded)

    async def aclose(self) -> None:
        await self.transport_stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.transport_stream.extra_attributes


@dataclass(eq=False)
class TextStream(ObjectStream[str]):
    """A bidirectional text stream over a bidirectional byte stream.

    :param transport_stream: the byte stream to wrap
    :param encoding: the encoding used in both directions
    :param errors: the error handling used in both directions
    """

    transport_stream: AnyByteStream
    encoding: InitVar[str] = "utf-8"
    errors: InitVar[str] = "strict"
    _receive_stream: TextReceiveStream = field(init=False)
    _send_stream: TextSendStream = field(init=False)

    def __post_init__(self, encoding: str, errors: str) -> None:
        self._receive_stream = TextReceiveStream(
            self.transport_stream, encoding=encoding, errors=errors
        )
        self._send_stream = TextSendStream(
            self.transport_stream, encoding=encoding, errors=errors
        )

    async def receive(self) -> str:
        return await self._receive_stream.receive()

    async def send(self, item: str) -> None:
        await self._send_stream.send(item)

    async def send_eof(self) -> None:
        await self.transport_stream.send_eof()

    async def aclose(self) -> None:
        # Both halves share the transport; closing it once closes both.
        await self._receive_stream.aclose()

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return self.transport_stream.extra_attributes


class TextConnectable(ObjectStreamConnectable[str]):
    """Wraps every stream opened by another connectable in a :class:`TextStream`.

    :param connectable: the connectable that opens the underlying byte streams
    """

    def __init__(self, connectable: AnyByteStreamConnectable):
        self.connectable = connectable

    async def connect(self) -> TextStream:
        stream = await self.connectable.connect()
        return TextStream(stream)


__all__ = (
    "TextConnectable",
    "TextReceiveStream",
    "TextSendStream",
    "TextStream",
)
