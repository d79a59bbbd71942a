"""The abstract stream, socket and resource classes of anyio.abc."""

from __future__ import annotations

import socket
from typing import Any

import pytest

import anyio
from anyio import (
    EndOfStream,
    TypedAttributeLookupError,
    aclose_forcefully,
    create_task_group,
)
from anyio.abc import (
    AsyncResource,
    ByteReceiveStream,
    ObjectReceiveStream,
    ObjectSendStream,
    ObjectStream,
    SocketAttribute,
    SocketListener,
    SocketStream,
    UDPPacketType,
    UDPSocket,
    UNIXDatagramPacketType,
    UNIXDatagramSocket,
)

pytestmark = pytest.mark.anyio


class Countdown(ObjectReceiveStream[int]):
    def __init__(self, start: int) -> None:
        self.value = start
        self.closed = False

    async def receive(self) -> int:
        if self.value == 0:
            raise EndOfStream

        self.value -= 1
        return self.value + 1

    async def aclose(self) -> None:
        self.closed = True


class Chunks(ByteReceiveStream):
    def __init__(self, *chunks: bytes) -> None:
        self.chunks = list(chunks)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if not self.chunks:
            raise EndOfStream

        return self.chunks.pop(0)

    async def aclose(self) -> None:
        pass


def test_abstract_methods() -> None:
    assert AsyncResource.__abstractmethods__ == {"aclose"}
    assert ObjectStream.__abstractmethods__ == {
        "aclose",
        "receive",
        "send",
        "send_eof",
    }
    with pytest.raises(TypeError):
        ObjectReceiveStream()  # type: ignore[abstract]


def test_public_module() -> None:
    assert SocketStream.__module__ == "anyio.abc"
    assert repr(ObjectSendStream) == "<class 'anyio.abc.ObjectSendStream'>"


async def test_async_with_closes() -> None:
    stream = Countdown(1)
    async with stream as entered:
        assert entered is stream
        assert not stream.closed

    assert stream.closed


async def test_object_stream_iteration() -> None:
    assert [item async for item in Countdown(3)] == [3, 2, 1]


async def test_byte_stream_iteration() -> None:
    assert [chunk async for chunk in Chunks(b"ab", b"c")] == [b"ab", b"c"]


async def test_aclose_forcefully() -> None:
    class SlowClose(AsyncResource):
        def __init__(self) -> None:
            self.outcome = "not closed"

        async def aclose(self) -> None:
            try:
                await anyio.sleep(5)
            except anyio.get_cancelled_exc_class():
                self.outcome = "cancelled"
                raise

            self.outcome = "completed"

    resource = SlowClose()
    with anyio.fail_after(2):
        await aclose_forcefully(resource)

    assert resource.outcome == "cancelled"


class FakeSocketStream(SocketStream):
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @property
    def _raw_socket(self) -> socket.socket:
        return self.sock

    async def receive(self, max_bytes: int = 65536) -> bytes:
        raise EndOfStream

    async def send(self, item: bytes) -> None:
        pass

    async def send_eof(self) -> None:
        pass

    async def aclose(self) -> None:
        self.sock.close()


def test_socket_attributes_tcp() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        listening = FakeSocketStream(server)
        port = server.getsockname()[1]
        assert listening.extra(SocketAttribute.family) == socket.AF_INET
        assert listening.extra(SocketAttribute.local_address) == ("127.0.0.1", port)
        assert listening.extra(SocketAttribute.local_port) == port
        assert listening.extra(SocketAttribute.raw_socket) is server
        with pytest.raises(TypedAttributeLookupError):
            listening.extra(SocketAttribute.remote_address)
        with pytest.raises(TypedAttributeLookupError):
            listening.extra(SocketAttribute.remote_port)

        with socket.create_connection(("127.0.0.1", port)) as client:
            connected = FakeSocketStream(client)
            assert connected.extra(SocketAttribute.remote_address) == (
                "127.0.0.1",
                port,
            )
            assert connected.extra(SocketAttribute.remote_port) == port


def test_socket_attributes_ipv6() -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support")

    with socket.socket(socket.AF_INET6) as sock:
        try:
            sock.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback")

        port = sock.getsockname()[1]
        # The 4-tuple of IPv6 is reduced to (host, port).
        assert FakeSocketStream(sock).extra(SocketAttribute.local_address) == (
            "::1",
            port,
        )


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="no UNIX sockets")
def test_socket_attributes_unix() -> None:
    left, right = socket.socketpair(socket.AF_UNIX)
    with left, right:
        stream = FakeSocketStream(left)
        assert stream.extra(SocketAttribute.family) == socket.AF_UNIX
        assert stream.extra(SocketAttribute.local_address) == ""
        assert stream.extra(SocketAttribute.remote_address) == ""
        # Ports exist only for IP sockets.
        with pytest.raises(TypedAttributeLookupError):
            stream.extra(SocketAttribute.local_port)
        with pytest.raises(TypedAttributeLookupError):
            stream.extra(SocketAttribute.remote_port)


async def test_socket_listener_serve() -> None:
    class FakeListener(SocketListener):
        def __init__(self, sock: socket.socket, count: int) -> None:
            self.sock = sock
            self.remaining = count

        @property
        def _raw_socket(self) -> socket.socket:
            return self.sock

        async def accept(self) -> SocketStream:
            if not self.remaining:
                await anyio.sleep_forever()

            self.remaining -= 1
            return FakeSocketStream(self.sock)

        async def aclose(self) -> None:
            pass

    handled: list[SocketStream] = []

    async def handler(stream: SocketStream) -> None:
        handled.append(stream)

    with socket.socket() as sock:
        listener = FakeListener(sock, 3)
        async with create_task_group() as tg:
            tg.start_soon(listener.serve, handler, tg)
            await anyio.wait_all_tasks_blocked()
            tg.cancel_scope.cancel()

        assert len(handled) == 3

        # Without a task group, serve() makes one of its own.
        listener = FakeListener(sock, 2)
        with anyio.move_on_after(0.1):
            await listener.serve(handler)

        assert len(handled) == 5


async def test_sendto() -> None:
    sent: list[Any] = []

    class FakeUDP(UDPSocket):
        async def send(self, item: UDPPacketType) -> None:
            sent.append(item)

        async def receive(self) -> UDPPacketType:
            raise EndOfStream

        async def aclose(self) -> None:
            pass

        @property
        def _raw_socket(self) -> socket.socket:
            raise NotImplementedError

    class FakeUNIX(UNIXDatagramSocket):
        async def send(self, item: UNIXDatagramPacketType) -> None:
            sent.append(item)

        async def receive(self) -> UNIXDatagramPacketType:
            raise EndOfStream

        async def aclose(self) -> None:
            pass

        @property
        def _raw_socket(self) -> socket.socket:
            raise NotImplementedError

    await FakeUDP().sendto(b"hi", "localhost", 1234)
    await FakeUNIX().sendto(b"yo", "/tmp/sock")
    assert sent == [(b"hi", ("localhost", 1234)), (b"yo", "/tmp/sock")]
