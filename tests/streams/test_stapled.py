"""StapledByteStream, StapledObjectStream and MultiListener."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

import anyio
from anyio import (
    ClosedResourceError,
    EndOfStream,
    TypedAttributeSet,
    create_task_group,
    typed_attribute,
)
from anyio.abc import (
    ByteReceiveStream,
    ByteSendStream,
    Listener,
    ObjectReceiveStream,
    ObjectSendStream,
    TaskGroup,
)
from anyio.streams.stapled import MultiListener, StapledByteStream, StapledObjectStream

pytestmark = pytest.mark.anyio


class Origin(TypedAttributeSet):
    name: str = typed_attribute()
    sender_only: str = typed_attribute()


class Bytes(ByteReceiveStream):
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.closed = False

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if self.closed:
            raise ClosedResourceError
        if not self.data:
            raise EndOfStream

        chunk, self.data = self.data[:max_bytes], self.data[max_bytes:]
        return chunk

    async def aclose(self) -> None:
        self.closed = True

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {Origin.name: lambda: "receiver"}


class ByteSink(ByteSendStream):
    def __init__(self) -> None:
        self.data = bytearray()
        self.closed = False

    async def send(self, item: bytes) -> None:
        if self.closed:
            raise ClosedResourceError

        self.data += item

    async def aclose(self) -> None:
        self.closed = True

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {Origin.name: lambda: "sender", Origin.sender_only: lambda: "yes"}


class Items(ObjectReceiveStream[str]):
    def __init__(self, *items: str) -> None:
        self.items = list(items)
        self.closed = False

    async def receive(self) -> str:
        if self.closed:
            raise ClosedResourceError
        if not self.items:
            raise EndOfStream

        return self.items.pop(0)

    async def aclose(self) -> None:
        self.closed = True


class ItemSink(ObjectSendStream[str]):
    def __init__(self) -> None:
        self.items: list[str] = []
        self.closed = False

    async def send(self, item: str) -> None:
        if self.closed:
            raise ClosedResourceError

        self.items.append(item)

    async def aclose(self) -> None:
        self.closed = True


class NowaitSink(ItemSink):
    def send_nowait(self, item: str) -> None:
        self.items.append(item + " (nowait)")


class BrokenNowaitSink(ItemSink):
    def send_nowait(self, item: str) -> None:
        raise AttributeError("something inside is missing")


class TestStapledByteStream:
    async def test_send_receive(self) -> None:
        sink, source = ByteSink(), Bytes(b"incoming")
        stream = StapledByteStream(sink, source)
        assert stream.send_stream is sink
        assert stream.receive_stream is source
        assert await stream.receive(2) == b"in"
        assert await stream.receive() == b"coming"
        await stream.send(b"out")
        assert sink.data == b"out"

    @pytest.mark.parametrize("max_bytes", [0, -1])
    async def test_invalid_max_bytes(self, max_bytes: int) -> None:
        stream = StapledByteStream(ByteSink(), Bytes(b"x"))
        with pytest.raises(ValueError, match="^max_bytes must be a positive integer$"):
            await stream.receive(max_bytes)

    async def test_send_eof(self) -> None:
        sink, source = ByteSink(), Bytes(b"still here")
        stream = StapledByteStream(sink, source)
        await stream.send_eof()
        await stream.send_eof()
        with pytest.raises(ClosedResourceError):
            await stream.send(b"x")

        assert await stream.receive() == b"still here"

    async def test_aclose(self) -> None:
        sink, source = ByteSink(), Bytes(b"data")
        async with StapledByteStream(sink, source):
            pass

        assert sink.closed and source.closed

    async def test_extra_attributes(self) -> None:
        stream = StapledByteStream(ByteSink(), Bytes(b""))
        assert stream.extra(Origin.name) == "receiver"
        assert stream.extra(Origin.sender_only) == "yes"


class TestStapledObjectStream:
    async def test_send_receive(self) -> None:
        sink, source = ItemSink(), Items("a", "b")
        stream = StapledObjectStream(sink, source)
        assert [item async for item in stream] == ["a", "b"]
        await stream.send("c")
        assert sink.items == ["c"]

    async def test_send_eof_and_aclose(self) -> None:
        sink, source = ItemSink(), Items("a")
        stream = StapledObjectStream(sink, source)
        await stream.send_eof()
        with pytest.raises(ClosedResourceError):
            await stream.send("x")

        assert await stream.receive() == "a"
        await stream.aclose()
        with pytest.raises(ClosedResourceError):
            await stream.receive()

    def test_send_nowait(self) -> None:
        sink = NowaitSink()
        StapledObjectStream(sink, Items()).send_nowait("x")
        assert sink.items == ["x (nowait)"]

    def test_send_nowait_missing(self) -> None:
        stream = StapledObjectStream(ItemSink(), Items())
        with pytest.raises(
            NotImplementedError,
            match="^'send_nowait' method not implemented in <class "
            "'.*test_stapled.ItemSink'>$",
        ):
            stream.send_nowait("x")

    def test_send_nowait_attribute_error_kept(self) -> None:
        stream = StapledObjectStream(BrokenNowaitSink(), Items())
        with pytest.raises(AttributeError, match="something inside is missing"):
            stream.send_nowait("x")

    def test_repr_and_identity(self) -> None:
        sink, source = ItemSink(), Items()
        stream = StapledObjectStream(sink, source)
        assert repr(stream) == (
            f"StapledObjectStream(send_stream={sink!r}, receive_stream={source!r})"
        )
        assert stream != StapledObjectStream(sink, source)


class FakeListener(Listener[str]):
    def __init__(self, name: str, connections: int) -> None:
        self.name = name
        self.connections = connections
        self.closed = False
        self.task_groups: list[TaskGroup | None] = []

    async def serve(
        self, handler: Callable[[str], Any], task_group: TaskGroup | None = None
    ) -> None:
        self.task_groups.append(task_group)
        for number in range(self.connections):
            await anyio.sleep(0)
            handler(f"{self.name}-{number}")

    async def aclose(self) -> None:
        self.closed = True

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {Origin.name: lambda: self.name}


class TestMultiListener:
    async def test_serve_all(self) -> None:
        first, second = FakeListener("a", 2), FakeListener("b", 1)
        multi = MultiListener([first, second])
        accepted: list[str] = []
        await multi.serve(accepted.append)
        assert sorted(accepted) == ["a-0", "a-1", "b-0"]
        assert first.task_groups == second.task_groups == [None]

    async def test_serve_passes_task_group(self) -> None:
        listener = FakeListener("a", 1)
        async with create_task_group() as tg:
            await MultiListener([listener]).serve(lambda _: None, tg)

        assert listener.task_groups == [tg]

    async def test_flattening(self) -> None:
        first, second, third = (FakeListener(name, 0) for name in "abc")
        inner = MultiListener([second, third])
        outer = MultiListener([first, inner])
        assert outer.listeners == [first, second, third]
        assert inner.listeners == []

        await outer.aclose()
        assert first.closed and second.closed and third.closed

    async def test_extra_attributes(self) -> None:
        multi = MultiListener([FakeListener("a", 0), FakeListener("b", 0)])
        # Later listeners win.
        assert multi.extra(Origin.name) == "b"
        assert MultiListener[str]([]).extra_attributes == {}
