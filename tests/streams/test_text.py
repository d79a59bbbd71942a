"""TextReceiveStream, TextSendStream, TextStream and TextConnectable."""

from __future__ import annotations

from typing import Any

import pytest
from tests.streams._chunk_streams import ChunkSink, ChunkSource, Marker

from anyio import EndOfStream
from anyio.abc import (
    ObjectStream,
    ObjectStreamConnectable,
)
from anyio.streams.stapled import StapledObjectStream
from anyio.streams.text import (
    TextConnectable,
    TextReceiveStream,
    TextSendStream,
    TextStream,
)

pytestmark = pytest.mark.anyio


async def test_receive_split_character() -> None:
    # "å" is c3 a5, "ö" is c3 b6: the second chunk completes the "ö".
    stream = TextReceiveStream(ChunkSource(b"\xc3\xa5\xc3", b"\xb6!"))
    assert await stream.receive() == "å"
    assert await stream.receive() == "ö!"
    with pytest.raises(EndOfStream):
        await stream.receive()


async def test_receive_waits_for_whole_character() -> None:
    # Chunks that decode to nothing are not returned as empty strings.
    stream = TextReceiveStream(ChunkSource(b"\xe2", b"\x82", b"", b"\xac"))
    assert await stream.receive() == "€"


async def test_receive_other_encoding() -> None:
    stream = TextReceiveStream(ChunkSource(b"\xe5\xe4\xf6"), encoding="latin-1")
    assert await stream.receive() == "åäö"


async def test_receive_invalid_bytes() -> None:
    stream = TextReceiveStream(ChunkSource(b"\xff", b"ok"))
    with pytest.raises(UnicodeDecodeError):
        await stream.receive()

    assert await stream.receive() == "ok"


async def test_receive_replace() -> None:
    stream = TextReceiveStream(ChunkSource(b"a\xffb"), errors="replace")
    assert await stream.receive() == "a\ufffdb"


@pytest.mark.parametrize(
    "errors, first_result",
    [("replace", "\ufffd"), ("ignore", None), ("strict", UnicodeDecodeError)],
)
async def test_truncated_character_at_end(errors: str, first_result: Any) -> None:
    stream = TextReceiveStream(ChunkSource(b"\xc3"), errors=errors)
    if first_result is None:
        with pytest.raises(EndOfStream):
            await stream.receive()
    elif isinstance(first_result, str):
        assert await stream.receive() == first_result
    else:
        with pytest.raises(first_result):
            await stream.receive()

    # Whatever happened to the truncated character, the stream then ends.
    with pytest.raises(EndOfStream):
        await stream.receive()


def test_unknown_encoding() -> None:
    with pytest.raises(LookupError, match="unknown encoding: klingon"):
        TextReceiveStream(ChunkSource(), encoding="klingon")
    with pytest.raises(LookupError, match="unknown encoding: klingon"):
        TextSendStream(ChunkSink(), encoding="klingon")
    with pytest.raises(LookupError, match="unknown encoding: klingon"):
        TextStream(StapledObjectStream(ChunkSink(), ChunkSource()), encoding="klingon")


async def test_send() -> None:
    sink = ChunkSink()
    stream = TextSendStream(sink)
    await stream.send("åäö")
    assert sink.sent == [b"\xc3\xa5\xc3\xa4\xc3\xb6"]


async def test_send_errors() -> None:
    sink = ChunkSink()
    strict = TextSendStream(sink, encoding="ascii")
    with pytest.raises(UnicodeEncodeError):
        await strict.send("€")

    lenient = TextSendStream(sink, encoding="ascii", errors="replace")
    await lenient.send("€1")
    assert sink.sent == [b"?1"]
    assert lenient.errors == "replace"


async def test_send_type_error() -> None:
    with pytest.raises(TypeError):
        await TextSendStream(ChunkSink()).send(b"bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32", "utf-8-sig"])
async def test_byte_order_mark_once(encoding: str) -> None:
    sink = ChunkSink()
    stream = TextSendStream(sink, encoding=encoding)
    await stream.send("ab")
    await stream.send("cd")
    assert b"".join(sink.sent).decode(encoding) == "abcd"
    assert len(sink.sent[1]) < len(sink.sent[0])

    receiver = TextReceiveStream(ChunkSource(*sink.sent), encoding=encoding)
    assert await receiver.receive() == "ab"
    assert await receiver.receive() == "cd"


async def test_text_stream() -> None:
    sink = ChunkSink()
    source = ChunkSource("héllo".encode())
    stream = TextStream(StapledObjectStream(sink, source))
    assert await stream.receive() == "héllo"
    await stream.send("wörld")
    assert sink.sent == ["wörld".encode()]
    # The stapled stream's receive side wins on conflicting attributes.
    assert stream.extra(Marker.name) == "source"

    await stream.send_eof()
    assert sink.closed and not source.closed
    await stream.aclose()
    assert source.closed


async def test_text_stream_encoding() -> None:
    sink = ChunkSink()
    stream = TextStream(
        StapledObjectStream(sink, ChunkSource(b"\xe9")), encoding="latin-1"
    )
    assert await stream.receive() == "é"
    await stream.send("ü")
    assert sink.sent == [b"\xfc"]


async def test_half_streams_forward_attributes_and_close() -> None:
    source = ChunkSource()
    receiver = TextReceiveStream(source)
    assert receiver.extra(Marker.name) == "source"
    await receiver.aclose()
    assert source.closed

    sink = ChunkSink()
    sender = TextSendStream(sink)
    assert sender.extra(Marker.name) == "sink"
    await sender.aclose()
    assert sink.closed


async def test_text_connectable() -> None:
    sink = ChunkSink()

    class Connector(ObjectStreamConnectable[bytes]):
        async def connect(self) -> ObjectStream[bytes]:
            return StapledObjectStream(sink, ChunkSource(b"hi"))

    async with await TextConnectable(Connector()).connect() as stream:
        assert isinstance(stream, TextStream)
        assert await stream.receive() == "hi"
        await stream.send("yo")

    assert sink.sent == [b"yo"]
