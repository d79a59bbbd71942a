"""BufferedByteReceiveStream, BufferedByteStream and BufferedConnectable."""

from __future__ import annotations

import pytest
from tests.streams._chunk_streams import ChunkSink, ChunkSource, Marker

from anyio import (
    ClosedResourceError,
    DelimiterNotFound,
    EndOfStream,
    IncompleteRead,
)
from anyio.abc import (
    ByteReceiveStream,
    ObjectStream,
    ObjectStreamConnectable,
)
from anyio.streams.buffered import (
    BufferedByteReceiveStream,
    BufferedByteStream,
    BufferedConnectable,
)
from anyio.streams.stapled import StapledObjectStream

pytestmark = pytest.mark.anyio


class RecordingByteSource(ByteReceiveStream):
    """A byte stream that records the max_bytes of each call."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.requests: list[int] = []

    async def receive(self, max_bytes: int = 65536) -> bytes:
        self.requests.append(max_bytes)
        if not self.data:
            raise EndOfStream

        chunk, self.data = self.data[:max_bytes], self.data[max_bytes:]
        return chunk

    async def aclose(self) -> None:
        pass


async def test_receive_splits_large_chunk() -> None:
    stream = BufferedByteReceiveStream(ChunkSource(b"abcdef"))
    assert await stream.receive(4) == b"abcd"
    assert stream.buffer == b"ef"
    assert await stream.receive(4) == b"ef"
    with pytest.raises(EndOfStream):
        await stream.receive()


async def test_receive_returns_buffered_data_only() -> None:
    source = ChunkSource(b"later")
    stream = BufferedByteReceiveStream(source)
    stream.feed_data(b"now")
    # The buffer is served on its own, without reading the wrapped stream.
    assert await stream.receive(100) == b"now"
    assert source.chunks == [b"later"]


async def test_receive_skips_empty_messages() -> None:
    stream = BufferedByteReceiveStream(ChunkSource(b"", b"", b"x", b"", b"yz", b""))
    assert await stream.receive() == b"x"
    assert await stream.receive() == b"yz"
    with pytest.raises(EndOfStream):
        await stream.receive()


async def test_byte_stream_gets_max_bytes() -> None:
    source = RecordingByteSource(b"abcdefgh")
    stream = BufferedByteReceiveStream(source)
    assert await stream.receive(3) == b"abc"
    assert await stream.receive_exactly(4) == b"defg"
    assert source.requests == [3, 4]


@pytest.mark.parametrize("max_bytes", [0, -5])
async def test_receive_invalid_max_bytes(max_bytes: int) -> None:
    stream = BufferedByteReceiveStream(ChunkSource(b"abc"))
    with pytest.raises(ValueError, match="^max_bytes must be a positive integer$"):
        await stream.receive(max_bytes)

    # The check comes before the closed check.
    await stream.aclose()
    with pytest.raises(ValueError, match="max_bytes must be a positive integer"):
        await stream.receive(max_bytes)


async def test_receive_exactly() -> None:
    stream = BufferedByteReceiveStream(ChunkSource(b"ab", b"cde", b"fgh"))
    result = await stream.receive_exactly(4)
    assert result == b"abcd"
    assert type(result) is bytes
    assert stream.buffer == b"e"
    assert await stream.receive_exactly(0) == b""
    assert await stream.receive_exactly(4) == b"efgh"


async def test_receive_exactly_incomplete() -> None:
    stream = BufferedByteReceiveStream(ChunkSource(b"abc", b"d"))
    with pytest.raises(IncompleteRead) as exc_info:
        await stream.receive_exactly(10)

    assert str(exc_info.value) == (
        "The stream was closed before the read operation could be completed"
    )
    assert isinstance(exc_info.value.__cause__, EndOfStream)


async def test_receive_until() -> None:
    stream = BufferedByteReceiveStream(ChunkSource(b"GET / HT", b"TP/1.1\r", b"\nrest"))
    result = await stream.receive_until(b"\r\n", 100)
    assert result == b"GET / HTTP/1.1"
    assert type(result) is bytes
    assert stream.buffer == b"rest"
    assert await stream.receive_until(b"t", 100) == b"res"
    assert stream.buffer == b""


async def test_receive_until_empty_delimiter() -> None:
    stream = BufferedByteReceiveStream(ChunkSource())
    assert await stream.receive_until(b"", 10) == b""


async def test_receive_until_buffered_beyond_max_bytes() -> None:
    # The whole buffer is searched: max_bytes limits how much is accumulated
    # while waiting for the delimiter, not where it may be found.
    stream = BufferedByteReceiveStream(ChunkSource())
    stream.feed_data(b"abcdef;gh")
    assert await stream.receive_until(b";", 3) == b"abcdef"
    assert stream.buffer == b"gh"


async def test_receive_until_not_found() -> None:
    stream = BufferedByteReceiveStream(ChunkSource(b"12345", b"67890", b"!"))
    with pytest.raises(DelimiterNotFound) as exc_info:
        await stream.receive_until(b"!", 8)

    assert str(exc_info.value) == (
        "The delimiter was not found among the first 8 bytes"
    )
    # Everything read so far stays available.
    assert stream.buffer == b"1234567890"
    assert await stream.receive_until(b"!", 20) == b"1234567890"


async def test_receive_until_incomplete() -> None:
    stream = BufferedByteReceiveStream(ChunkSource(b"abc", b"def"))
    with pytest.raises(IncompleteRead):
        await stream.receive_until(b"\n", 100)

    assert stream.buffer == b"abcdef"


@pytest.mark.parametrize(
    "method, args",
    [
        pytest.param("receive", (2,), id="receive"),
        pytest.param("receive_exactly", (2,), id="receive_exactly"),
        pytest.param("receive_until", (b"\n", 10), id="receive_until"),
    ],
)
async def test_closed(method: str, args: tuple[object, ...]) -> None:
    source = ChunkSource()
    stream = BufferedByteReceiveStream(source)
    stream.feed_data(b"ab\ncd")
    await stream.aclose()
    assert source.closed
    # Buffered data is not handed out after an explicit close.
    with pytest.raises(ClosedResourceError):
        await getattr(stream, method)(*args)


async def test_feed_data() -> None:
    stream = BufferedByteReceiveStream(ChunkSource(b"stream"))
    stream.feed_data(b"one,")
    stream.feed_data(bytearray(b"two,"))
    stream.feed_data([0x33, 0x2C])
    assert await stream.receive_exactly(14) == b"one,two,3,stre"
    with pytest.raises(ValueError):
        stream.feed_data([256])


async def test_extra_attributes_forwarded() -> None:
    stream = BufferedByteReceiveStream(ChunkSource())
    assert stream.extra(Marker.name) == "source"


async def test_identity_equality_and_repr() -> None:
    source = ChunkSource()
    first = BufferedByteReceiveStream(source)
    second = BufferedByteReceiveStream(source)
    assert first != second
    assert len({first, second}) == 2
    assert repr(first).startswith("BufferedByteReceiveStream(receive_stream=")


async def test_buffered_stream() -> None:
    sink = ChunkSink()
    source = ChunkSource(b"hello world")
    stream = BufferedByteStream(StapledObjectStream(sink, source))
    assert await stream.receive_until(b" ", 20) == b"hello"
    await stream.send(b"reply")
    assert sink.sent == [b"reply"]

    # send_eof() closes only the sending side.
    await stream.send_eof()
    assert sink.closed
    assert not source.closed
    assert await stream.receive() == b"world"

    await stream.aclose()
    assert source.closed


async def test_buffered_connectable() -> None:
    sink = ChunkSink()
    source = ChunkSource(b"abcd")

    class Connector(ObjectStreamConnectable[bytes]):
        async def connect(self) -> ObjectStream[bytes]:
            return StapledObjectStream(sink, source)

    async with await BufferedConnectable(Connector()).connect() as stream:
        assert isinstance(stream, BufferedByteStream)
        await stream.send(b"out")
        assert await stream.receive_exactly(2) == b"ab"

    assert sink.sent == [b"out"]
    assert sink.closed and source.closed
