"""Sockets: TCP/UNIX streams and listeners, UDP and UNIX datagram sockets,
name resolution, descriptor waiting and connectables (loopback only)."""

from __future__ import annotations

import gc
import os
import socket
import struct
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import anyio._sockets
from anyio import (
    BrokenResourceError,
    BusyResourceError,
    CancelScope,
    ClosedResourceError,
    ConnectionFailed,
    EndOfStream,
    TCPConnectable,
    TypedAttributeLookupError,
    UNIXConnectable,
    as_connectable,
    connect_tcp,
    connect_unix,
    create_connected_udp_socket,
    create_connected_unix_datagram_socket,
    create_task_group,
    create_tcp_listener,
    create_udp_socket,
    create_unix_datagram_socket,
    create_unix_listener,
    fail_after,
    getaddrinfo,
    getnameinfo,
    move_on_after,
    notify_closing,
    wait_all_tasks_blocked,
    wait_readable,
    wait_socket_readable,
    wait_socket_writable,
    wait_writable,
)
from anyio.abc import SocketAttribute, SocketListener, SocketStream
from anyio.streams.tls import TLSConnectable

if sys.version_info < (3, 11):
    from exceptiongroup import ExceptionGroup

pytestmark = pytest.mark.anyio


def _ipv6_works() -> bool:
    if not socket.has_ipv6:
        return False

    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False

    return True


has_ipv6 = _ipv6_works()
needs_ipv6 = pytest.mark.skipif(not has_ipv6, reason="no IPv6 loopback")
needs_unix = pytest.mark.skipif(
    sys.platform == "win32", reason="no UNIX sockets on Windows"
)


@pytest.fixture(
    params=[
        pytest.param(("127.0.0.1", socket.AF_INET), id="ipv4"),
        pytest.param(("::1", socket.AF_INET6), id="ipv6", marks=needs_ipv6),
    ]
)
def loopback(request: pytest.FixtureRequest) -> tuple[str, socket.AddressFamily]:
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def server_sock(loopback: tuple[str, socket.AddressFamily]) -> Iterator[socket.socket]:
    host, family = loopback
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.bind((host, 0))
    sock.listen()
    yield sock
    sock.close()


@pytest.fixture
def server_addr(server_sock: socket.socket) -> tuple[str, int]:
    return server_sock.getsockname()[:2]  # type: ignore[no-any-return]


@pytest.fixture
def unused_port(loopback: tuple[str, socket.AddressFamily]) -> int:
    host, family = loopback
    with socket.socket(family) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]  # type: ignore[no-any-return]


@pytest.fixture
def short_tmp() -> Iterator[Path]:
    # AF_UNIX paths are limited to ~100 bytes; pytest's tmp_path can be longer
    with tempfile.TemporaryDirectory() as path:
        yield Path(path)


def fake_resolver(monkeypatch: pytest.MonkeyPatch, results: list[Any]) -> None:
    """Make every name resolve to ``results`` (uvloop has its own resolver, so
    patching socket.getaddrinfo would not reach it)."""

    async def resolve(*args: Any, **kwargs: Any) -> list[Any]:
        return results

    monkeypatch.setattr(anyio._sockets, "_resolve", resolve)


def fill(sock: socket.socket) -> None:
    sock.setblocking(False)
    try:
        while True:
            sock.send(b"x" * 65536)
    except BlockingIOError:
        pass


class TestTCPStream:
    async def test_send_receive_and_attributes(
        self,
        server_sock: socket.socket,
        server_addr: tuple[str, int],
        loopback: tuple[str, socket.AddressFamily],
    ) -> None:
        async with await connect_tcp(*server_addr) as stream:
            peer, _ = server_sock.accept()
            with peer:
                raw = stream.extra(SocketAttribute.raw_socket)
                assert raw.gettimeout() == 0
                assert raw.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
                assert stream.extra(SocketAttribute.family) == loopback[1]
                assert (
                    stream.extra(SocketAttribute.local_address)
                    == (raw.getsockname()[:2])
                )
                assert (
                    stream.extra(SocketAttribute.local_port) == (raw.getsockname()[1])
                )
                assert stream.extra(SocketAttribute.remote_address) == server_addr
                assert stream.extra(SocketAttribute.remote_port) == server_addr[1]

                await stream.send(b"hello")
                assert peer.recv(100) == b"hello"
                peer.sendall(b"world")
                assert await stream.receive() == b"world"

    @pytest.mark.parametrize("max_bytes", [0, -1])
    async def test_receive_bad_max_bytes(
        self, server_addr: tuple[str, int], max_bytes: int
    ) -> None:
        async with await connect_tcp(*server_addr) as stream:
            with pytest.raises(ValueError, match="max_bytes must be a positive"):
                await stream.receive(max_bytes)

    async def test_large_transfer_and_send_eof(
        self, server_sock: socket.socket, server_addr: tuple[str, int]
    ) -> None:
        payload = bytes(range(256)) * 8192  # 2 MiB: more than the socket buffers

        def echo_reversed() -> None:
            conn, _ = server_sock.accept()
            with conn:
                data = bytearray()
                while chunk := conn.recv(65536):
                    data += chunk

                conn.sendall(bytes(data[::-1]))

        thread = threading.Thread(target=echo_reversed)
        thread.start()
        try:
            async with await connect_tcp(*server_addr) as stream:
                await stream.send(payload)
                await stream.send_eof()
                received = bytearray()
                async for chunk in stream:
                    received += chunk
        finally:
            thread.join()

        assert bytes(received) == payload[::-1]

    async def test_receive_after_peer_closed(
        self, server_sock: socket.socket, server_addr: tuple[str, int]
    ) -> None:
        async with await connect_tcp(*server_addr) as stream:
            server_sock.accept()[0].close()
            with pytest.raises(EndOfStream):
                await stream.receive()

            with pytest.raises(EndOfStream):
                await stream.receive()

        with pytest.raises(ClosedResourceError):
            await stream.receive()

    async def test_send_after_peer_reset(
        self, server_sock: socket.socket, server_addr: tuple[str, int]
    ) -> None:
        async with await connect_tcp(*server_addr) as stream:
            peer, _ = server_sock.accept()
            peer.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            peer.close()
            with pytest.raises(BrokenResourceError) as exc_info:
                for _ in range(1000):
                    await stream.send(b"data")

            assert isinstance(exc_info.value.__cause__, OSError)

        with pytest.raises(ClosedResourceError):
            await stream.send(b"data")

    async def test_receive_after_peer_reset(
        self, server_sock: socket.socket, server_addr: tuple[str, int]
    ) -> None:
        async with await connect_tcp(*server_addr) as stream:
            peer, _ = server_sock.accept()
            peer.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            peer.close()
            with pytest.raises(BrokenResourceError) as exc_info:
                await stream.receive()

            assert isinstance(exc_info.value.__cause__, ConnectionResetError)

    async def test_concurrent_receive_is_busy(
        self, server_addr: tuple[str, int]
    ) -> None:
        async with await connect_tcp(*server_addr) as stream:
            async with create_task_group() as tg:
                tg.start_soon(stream.receive)
                await wait_all_tasks_blocked()
                with pytest.raises(BusyResourceError, match="already reading from"):
                    await stream.receive()

                tg.cancel_scope.cancel()

    async def test_concurrent_send_is_busy(self, server_addr: tuple[str, int]) -> None:
        async def send_forever() -> None:
            while True:
                await stream.send(b"\0" * 65536)

        async with await connect_tcp(*server_addr) as stream:
            async with create_task_group() as tg:
                tg.start_soon(send_forever)
                await wait_all_tasks_blocked()
                with pytest.raises(BusyResourceError, match="already writing to"):
                    await stream.send(b"x")

                tg.cancel_scope.cancel()

    async def test_close_wakes_receiver(self, server_addr: tuple[str, int]) -> None:
        async def close_later() -> None:
            await wait_all_tasks_blocked()
            await stream.aclose()

        async with await connect_tcp(*server_addr) as stream:
            async with create_task_group() as tg:
                tg.start_soon(close_later)
                with pytest.raises(ClosedResourceError):
                    await stream.receive()

    async def test_close_wakes_sender(self, server_addr: tuple[str, int]) -> None:
        async def close_later() -> None:
            await wait_all_tasks_blocked()
            await stream.aclose()

        async with await connect_tcp(*server_addr) as stream:
            raw = stream.extra(SocketAttribute.raw_socket)
            async with create_task_group() as tg:
                tg.start_soon(close_later)
                with pytest.raises(ClosedResourceError):
                    while True:
                        await stream.send(b"\0" * 1048576)

        assert raw.fileno() == -1

    async def test_aclose_in_cancelled_scope(
        self, server_addr: tuple[str, int]
    ) -> None:
        stream = await connect_tcp(*server_addr)
        raw = stream.extra(SocketAttribute.raw_socket)
        with CancelScope() as scope:
            scope.cancel()
            await stream.aclose()

        # The socket is closed, and then the cancellation is delivered
        assert scope.cancelled_caught
        assert raw.fileno() == -1

    async def test_cancelled_send_sends_nothing(
        self, server_sock: socket.socket, server_addr: tuple[str, int]
    ) -> None:
        """A send() cancelled while the kernel buffers are full must not hand
        its data over later."""
        async with await connect_tcp(*server_addr) as stream:
            peer, _ = server_sock.accept()
            with peer:
                # A duplicate descriptor shares the socket's send buffer
                raw = stream.extra(SocketAttribute.raw_socket)
                with socket.fromfd(raw.fileno(), raw.family, raw.type) as dup:
                    fill(dup)

                with move_on_after(0.1) as scope:
                    await stream.send(b"M" * 64)

                assert scope.cancelled_caught

                async def drain() -> bytes:
                    received = bytearray()
                    peer.setblocking(False)
                    while not received.endswith(b"END"):
                        try:
                            received += peer.recv(65536)
                        except BlockingIOError:
                            await wait_readable(peer)

                    return bytes(received)

                async with create_task_group() as tg:
                    tg.start_soon(stream.send, b"END")
                    data = await drain()

                assert b"M" not in data

    async def test_receive_timeout(self, server_addr: tuple[str, int]) -> None:
        async with await connect_tcp(*server_addr) as stream:
            with move_on_after(0.05) as scope:
                await stream.receive()

            assert scope.cancelled_caught

    async def test_connection_refused(self, unused_port: int, loopback: Any) -> None:
        with pytest.raises(OSError, match="All connection attempts failed") as exc:
            await connect_tcp(loopback[0], unused_port)

        assert isinstance(exc.value.__cause__, ConnectionRefusedError)

    async def test_refused_error_has_no_reference_cycles(
        self, unused_port: int, loopback: Any
    ) -> None:
        cause = None
        try:
            await connect_tcp(loopback[0], unused_port)
        except OSError as exc:
            cause = exc.__cause__

        assert isinstance(cause, OSError)
        # Nothing but this frame (invisible to gc on 3.11+) may hold it
        this_frame = sys._getframe()
        assert [ref for ref in gc.get_referrers(cause) if ref is not this_frame] == []

    async def test_all_attempts_failed_groups_errors(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        ports = []
        for family, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
            if family == socket.AF_INET6 and not has_ipv6:
                continue

            with socket.socket(family) as sock:
                sock.bind((host, 0))
                ports.append((family, host, sock.getsockname()[1]))

        if len(ports) < 2:
            pytest.skip("needs both address families")

        # Pretend the name resolves to both loopbacks, each on a dead port
        fake_resolver(
            monkeypatch,
            [
                (fam, socket.SOCK_STREAM, 6, "", (host, port))
                for fam, host, port in ports
            ],
        )
        with pytest.raises(OSError, match="All connection attempts failed") as exc:
            await connect_tcp("dual.test", 1)

        group = exc.value.__cause__
        assert isinstance(group, ExceptionGroup)
        assert len(group.exceptions) == 2
        assert all(isinstance(e, ConnectionRefusedError) for e in group.exceptions)

    @needs_ipv6
    async def test_happy_eyeballs_prefers_ipv6(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A dual-stack listener: whichever family the client picks, it connects
        with socket.create_server(
            ("::", 0), family=socket.AF_INET6, dualstack_ipv6=True
        ) as server:
            port = server.getsockname()[1]

            fake_resolver(
                monkeypatch,
                [
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                ],
            )
            async with await connect_tcp("both.test", port) as stream:
                assert stream.extra(SocketAttribute.family) == socket.AF_INET6

    @needs_ipv6
    async def test_happy_eyeballs_falls_back(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        with socket.create_server(("127.0.0.1", 0)) as server:
            port = server.getsockname()[1]

            fake_resolver(
                monkeypatch,
                [
                    (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
                    (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
                ],
            )
            async with await connect_tcp("both.test", port) as stream:
                assert stream.extra(SocketAttribute.family) == socket.AF_INET

    async def test_local_address(
        self, server_addr: tuple[str, int], loopback: Any
    ) -> None:
        with socket.socket(loopback[1]) as probe:
            probe.bind((loopback[0], 0))
            port = probe.getsockname()[1]

        async with await connect_tcp(
            *server_addr, local_host=loopback[0], local_port=port
        ) as stream:
            assert stream.extra(SocketAttribute.local_port) == port

    async def test_resolver_error_has_no_context(self) -> None:
        with pytest.raises(socket.gaierror) as exc_info:
            await connect_tcp("name.invalid", 80)

        assert exc_info.value.__context__ is None


class TestTCPListener:
    async def test_accept_and_attributes(self, loopback: Any) -> None:
        host, family = loopback
        async with await create_tcp_listener(local_host=host) as multi:
            assert len(multi.listeners) == 1
            listener = multi.listeners[0]
            assert isinstance(listener, SocketListener)
            raw = listener.extra(SocketAttribute.raw_socket)
            assert listener.extra(SocketAttribute.family) == family
            assert (
                listener.extra(SocketAttribute.local_address) == (raw.getsockname()[:2])
            )
            assert raw.getsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR)
            with pytest.raises(TypedAttributeLookupError):
                listener.extra(SocketAttribute.remote_address)

            with socket.socket(family) as client:
                client.connect(raw.getsockname())
                async with await listener.accept() as stream:
                    assert stream.extra(SocketAttribute.raw_socket).gettimeout() == 0
                    client.sendall(b"ping")
                    assert await stream.receive() == b"ping"
                    await stream.send(b"pong")
                    assert client.recv(10) == b"pong"

    async def test_serve_and_connect(self) -> None:
        async def handler(stream: SocketStream) -> None:
            async with stream:
                await stream.send((await stream.receive()).upper())

        async with await create_tcp_listener(local_host="127.0.0.1") as multi:
            port = multi.extra(SocketAttribute.local_port)
            async with create_task_group() as tg:
                tg.start_soon(multi.serve, handler)
                for word in (b"one", b"two"):
                    async with await connect_tcp("127.0.0.1", port) as stream:
                        await stream.send(word)
                        assert await stream.receive() == word.upper()

                tg.cancel_scope.cancel()

    async def test_accept_after_close(self) -> None:
        multi = await create_tcp_listener(local_host="127.0.0.1")
        listener = multi.listeners[0]
        await multi.aclose()
        assert isinstance(listener, SocketListener)
        with pytest.raises(ClosedResourceError):
            await listener.accept()

    async def test_close_during_accept(self) -> None:
        multi = await create_tcp_listener(local_host="127.0.0.1")
        listener = multi.listeners[0]
        assert isinstance(listener, SocketListener)

        async def accept() -> None:
            with pytest.raises(ClosedResourceError):
                await listener.accept()

        async with create_task_group() as tg:
            tg.start_soon(accept)
            await wait_all_tasks_blocked()
            await multi.aclose()

        assert listener.extra(SocketAttribute.raw_socket).fileno() == -1

    @pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="no SO_REUSEPORT")
    async def test_reuse_port(self) -> None:
        async with await create_tcp_listener(
            local_host="127.0.0.1", reuse_port=True
        ) as first:
            port = first.extra(SocketAttribute.local_port)
            async with await create_tcp_listener(
                local_host="127.0.0.1", local_port=port, reuse_port=True
            ) as second:
                assert second.extra(SocketAttribute.local_port) == port

    async def test_all_interfaces_share_one_port(self) -> None:
        async with await create_tcp_listener() as multi:
            ports = {
                listener.extra(SocketAttribute.local_port)
                for listener in multi.listeners
            }
            assert len(ports) == 1
            expected = 1 if socket.has_dualstack_ipv6() else len(multi.listeners)
            assert len(multi.listeners) == expected

    @needs_ipv6
    async def test_no_dualstack_means_one_listener_per_family(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(socket, "has_dualstack_ipv6", lambda: False)
        async with await create_tcp_listener() as multi:
            families = {
                listener.extra(SocketAttribute.family) for listener in multi.listeners
            }
            assert families == {socket.AF_INET, socket.AF_INET6}
            ports = {
                listener.extra(SocketAttribute.local_port)
                for listener in multi.listeners
            }
            assert len(ports) == 1


@needs_unix
class TestUNIXSockets:
    async def test_stream_roundtrip(self, short_tmp: Path) -> None:
        path = short_tmp / "sock"
        async with await create_unix_listener(path) as listener:
            assert listener.extra(SocketAttribute.family) == socket.AF_UNIX
            assert listener.extra(SocketAttribute.local_address) == str(path)
            with pytest.raises(TypedAttributeLookupError):
                listener.extra(SocketAttribute.local_port)

            async with await connect_unix(path) as client:
                async with await listener.accept() as server:
                    assert client.extra(SocketAttribute.remote_address) == str(path)
                    await client.send(b"hi")
                    assert await server.receive() == b"hi"
                    await server.send_eof()
                    with pytest.raises(EndOfStream):
                        await client.receive()

    async def test_connect_missing(self, short_tmp: Path) -> None:
        with pytest.raises(FileNotFoundError):
            await connect_unix(short_tmp / "missing")

    async def test_bind_twice_and_bytes_path(self, short_tmp: Path) -> None:
        path = os.fsencode(short_tmp / "sock")
        for _ in range(2):
            async with await create_unix_listener(path, mode=0o600):
                assert os.stat(path).st_mode & 0o777 == 0o600

    @pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
    async def test_abstract_namespace(self, short_tmp: Path) -> None:
        name = f"\0anyio-test-{os.getpid()}-{id(short_tmp)}"
        async with await create_unix_listener(name) as listener:
            async with await connect_unix(name) as client:
                async with await listener.accept() as server:
                    await client.send(b"abstract")
                    assert await server.receive() == b"abstract"

    @pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")
    async def test_seqpacket_keeps_boundaries(self, short_tmp: Path) -> None:
        path = short_tmp / "seq"
        async with (
            await create_unix_listener(path, kind=socket.SOCK_SEQPACKET) as listener,
            await connect_unix(path, kind=socket.SOCK_SEQPACKET) as client,
            await listener.accept() as server,
        ):
            await client.send(b"po")
            await client.send(b"tato")
            assert await server.receive() == b"po"
            assert await server.receive() == b"tato"

    async def test_pass_file_descriptors(self, short_tmp: Path) -> None:
        path = short_tmp / "sock"
        file1 = short_tmp / "one"
        file1.write_text("Hello, ")
        file2 = short_tmp / "two"
        file2.write_text("World!")
        async with await create_unix_listener(path) as listener:
            async with await connect_unix(path) as client:
                async with await listener.accept() as server:
                    with file1.open() as f1, file2.open() as f2:
                        await client.send_fds(b"files", [f1, f2.fileno()])

                    message, fds = await server.receive_fds(10, 2)
                    assert message == b"files"
                    text = ""
                    for fd in fds:
                        with os.fdopen(fd) as file:
                            text += file.read()

                    assert text == "Hello, World!"

    async def test_fd_argument_errors(self, short_tmp: Path) -> None:
        path = short_tmp / "sock"
        async with await create_unix_listener(path):
            async with await connect_unix(path) as client:
                with pytest.raises(ValueError, match="message must not be empty"):
                    await client.send_fds(b"", [0])

                with pytest.raises(ValueError, match="fds must not be empty"):
                    await client.send_fds(b"x", [])

                with pytest.raises(ValueError, match="msglen must be a non-negative"):
                    await client.receive_fds(-1, 1)

                with pytest.raises(ValueError, match="maxfds must be a positive"):
                    await client.receive_fds(1, 0)

    async def test_datagram_sockets(self, short_tmp: Path) -> None:
        path_a = short_tmp / "a"
        path_b = short_tmp / "b"
        async with (
            await create_unix_datagram_socket(local_path=path_a) as a,
            await create_connected_unix_datagram_socket(path_a, local_path=path_b) as b,
        ):
            assert a.extra(SocketAttribute.local_address) == str(path_a)
            assert b.extra(SocketAttribute.remote_address) == str(path_a)
            await b.send(b"ping")
            assert await a.receive() == (b"ping", str(path_b))
            await a.sendto(b"pong", str(path_b))
            assert await b.receive() == b"pong"

    async def test_datagram_close_during_receive(self) -> None:
        async def close_later() -> None:
            await wait_all_tasks_blocked()
            await sock.aclose()

        async with await create_unix_datagram_socket() as sock:
            async with create_task_group() as tg:
                tg.start_soon(close_later)
                with pytest.raises(ClosedResourceError):
                    await sock.receive()


class TestUDP:
    async def test_send_receive(self, loopback: Any) -> None:
        host, family = loopback
        async with await create_udp_socket(family=family, local_host=host) as udp:
            raw = udp.extra(SocketAttribute.raw_socket)
            assert raw.gettimeout() == 0
            address = udp.extra(SocketAttribute.local_address)
            assert address == raw.getsockname()[:2]
            with pytest.raises(TypedAttributeLookupError):
                udp.extra(SocketAttribute.remote_port)

            await udp.sendto(b"loop", *address)
            assert await udp.receive() == (b"loop", address)

    async def test_connected(self, loopback: Any) -> None:
        host, family = loopback
        async with await create_udp_socket(family=family, local_host=host) as server:
            server_host, server_port = server.extra(SocketAttribute.local_address)
            async with await create_connected_udp_socket(
                server_host, server_port, local_host=host
            ) as client:
                assert client.extra(SocketAttribute.remote_port) == server_port
                await client.send(b"request")
                data, client_address = await server.receive()
                assert data == b"request"
                assert client_address == client.extra(SocketAttribute.local_address)
                await server.sendto(b"reply", *client_address)
                assert await client.receive() == b"reply"

    async def test_iterate(self) -> None:
        async def echo() -> None:
            async for packet, address in server:
                await server.send((packet[::-1], address))

        async with (
            await create_udp_socket(local_host="127.0.0.1") as server,
            await create_udp_socket(local_host="127.0.0.1") as client,
        ):
            address = server.extra(SocketAttribute.local_address)
            async with create_task_group() as tg:
                tg.start_soon(echo)
                for word in (b"abc", b"12345"):
                    await client.sendto(word, *address)
                    assert await client.receive() == (word[::-1], address)

                tg.cancel_scope.cancel()

    async def test_explicit_port_without_host(self, loopback: Any) -> None:
        host, family = loopback
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.bind((host, 0))
            port = probe.getsockname()[1]

        async with await create_udp_socket(family=family, local_port=port) as udp:
            assert udp.extra(SocketAttribute.local_port) == port

    async def test_family_or_host_required(self) -> None:
        with pytest.raises(ValueError, match='Either "family" or "local_host"'):
            await create_udp_socket()

    async def test_close_during_receive_and_after(self) -> None:
        async def close_later() -> None:
            await wait_all_tasks_blocked()
            await udp.aclose()

        udp = await create_udp_socket(local_host="127.0.0.1")
        address = udp.extra(SocketAttribute.local_address)
        async with create_task_group() as tg:
            tg.start_soon(close_later)
            with pytest.raises(ClosedResourceError):
                await udp.receive()

        with pytest.raises(ClosedResourceError):
            await udp.sendto(b"x", *address)

    async def test_concurrent_receive_is_busy(self) -> None:
        async with await create_udp_socket(local_host="127.0.0.1") as udp:
            async with create_task_group() as tg:
                tg.start_soon(udp.receive)
                await wait_all_tasks_blocked()
                with pytest.raises(BusyResourceError, match="already reading from"):
                    await udp.receive()

                tg.cancel_scope.cancel()


class TestResolver:
    @pytest.mark.parametrize(
        "kind, proto", [(socket.SOCK_STREAM, 6), (socket.SOCK_DGRAM, 17)]
    )
    async def test_getaddrinfo_ipv6_literal(self, kind: int, proto: int) -> None:
        assert await getaddrinfo("::1", 0, type=kind) == [
            (socket.AF_INET6, kind, proto, "", ("::1", 0))
        ]

    async def test_getaddrinfo_returns_enums(self) -> None:
        results = await getaddrinfo("127.0.0.1", "80", type=socket.SOCK_STREAM)
        assert results == [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80))
        ]
        assert isinstance(results[0][0], socket.AddressFamily)

    async def test_getaddrinfo_skips_unusable_ipv6(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # What a Python built without IPv6 reports for an IPv6 result
        fake_resolver(
            monkeypatch, [(socket.AF_INET6, socket.SOCK_STREAM, 6, "", (1, b""))]
        )
        assert await getaddrinfo("::1", 0) == []

    async def test_getnameinfo(self) -> None:
        expected = socket.getnameinfo(("127.0.0.1", 6666), 0)
        assert await getnameinfo(("127.0.0.1", 6666)) == expected


class TestWaiting:
    @pytest.mark.parametrize("as_fd", [False, True], ids=["socket", "fd"])
    async def test_wait_readable_writable(self, as_fd: bool) -> None:
        a, b = socket.socketpair()
        with a, b:
            target: Any = a.fileno() if as_fd else a
            with fail_after(3):
                await wait_writable(target)
                b.send(b"x")
                await wait_readable(target)

            assert a.recv(1) == b"x"

    async def test_double_wait_is_busy(self) -> None:
        a, b = socket.socketpair()
        with a, b:
            async with create_task_group() as tg:
                tg.start_soon(wait_readable, a)
                await wait_all_tasks_blocked()
                with pytest.raises(BusyResourceError, match="already reading from"):
                    await wait_readable(a)

                tg.cancel_scope.cancel()

    async def test_notify_closing_wakes_waiters(self) -> None:
        a, b = socket.socketpair()
        with a, b:
            fill(a)

            async def expect_closed(wait: Any) -> None:
                with pytest.raises(ClosedResourceError):
                    await wait(a)

            async with create_task_group() as tg:
                tg.start_soon(expect_closed, wait_readable)
                tg.start_soon(expect_closed, wait_writable)
                await wait_all_tasks_blocked()
                notify_closing(a)
                a.close()

    async def test_deprecated_spellings_warn(self) -> None:
        a, b = socket.socketpair()
        with a, b:
            with pytest.warns(DeprecationWarning, match="use `wait_readable`"):
                with move_on_after(0.01):
                    await wait_socket_readable(a)

            with pytest.warns(DeprecationWarning, match="use `wait_writable`"):
                await wait_socket_writable(a)


class TestConnectables:
    async def test_tcp_connectable(self, server_addr: tuple[str, int]) -> None:
        connectable = TCPConnectable(*server_addr)
        assert connectable == TCPConnectable(*server_addr)
        async with await connectable.connect() as stream:
            assert stream.extra(SocketAttribute.remote_address) == server_addr

    async def test_tcp_connectable_failure(
        self, unused_port: int, loopback: Any
    ) -> None:
        with pytest.raises(ConnectionFailed, match="error connecting to") as exc:
            await TCPConnectable(loopback[0], unused_port).connect()

        assert isinstance(exc.value.__cause__, OSError)

    def test_tcp_port_range(self) -> None:
        for port in (0, 65536):
            with pytest.raises(ValueError, match="TCP port number out of range"):
                TCPConnectable("localhost", port)

    @needs_unix
    async def test_unix_connectable(self, short_tmp: Path) -> None:
        path = short_tmp / "sock"
        async with await create_unix_listener(path):
            async with await UNIXConnectable(path).connect() as stream:
                assert stream.extra(SocketAttribute.family) == socket.AF_UNIX

        with pytest.raises(ConnectionFailed):
            await UNIXConnectable(short_tmp / "missing").connect()

    def test_as_connectable(self) -> None:
        tcp = TCPConnectable("localhost", 1234)
        assert as_connectable(tcp) is tcp
        assert as_connectable(("example.org", 80)) == TCPConnectable("example.org", 80)
        assert as_connectable("/run/x.sock") == UNIXConnectable("/run/x.sock")
        assert as_connectable(b"/run/x.sock") == UNIXConnectable(b"/run/x.sock")
        with pytest.raises(TypeError, match="cannot convert 1234 to a connectable"):
            as_connectable(1234)  # type: ignore[arg-type]

    def test_as_connectable_tls(self) -> None:
        wrapped = as_connectable(("localhost", 443), tls=True)
        assert isinstance(wrapped, TLSConnectable)
        assert wrapped.hostname == "localhost"
        unix = as_connectable(
            "/x.sock",
            tls=True,
            tls_hostname="example.com",
            tls_standard_compatible=False,
        )
        assert isinstance(unix, TLSConnectable)
        assert unix.hostname == "example.com"
        assert unix.standard_compatible is False


class TestFromSocket:
    async def test_stream(self, server_sock: socket.socket, loopback: Any) -> None:
        raw = socket.socket(loopback[1])
        raw.connect(server_sock.getsockname())
        async with await SocketStream.from_socket(raw) as stream:
            assert stream.extra(SocketAttribute.family) == loopback[1]

    async def test_fd(self, server_sock: socket.socket, loopback: Any) -> None:
        raw = socket.socket(loopback[1])
        raw.connect(server_sock.getsockname())
        async with await SocketStream.from_socket(raw.detach()) as stream:
            assert (
                stream.extra(SocketAttribute.remote_address)
                == (server_sock.getsockname()[:2])
            )

    async def test_errors(self, tmp_path: Path) -> None:
        with pytest.raises(TypeError, match="expected an int or socket, got str"):
            await SocketStream.from_socket("foo")  # type: ignore[arg-type]

        with (tmp_path / "file").open("wb") as file:
            with pytest.raises(ValueError, match="does not refer to a socket"):
                await SocketStream.from_socket(file.fileno())

        with socket.socket() as unconnected:
            with pytest.raises(ValueError, match="the socket must be connected"):
                await SocketStream.from_socket(unconnected)

            with pytest.raises(ValueError, match="the socket must be bound"):
                await SocketListener.from_socket(unconnected)

        a, b = socket.socketpair(type=socket.SOCK_DGRAM)
        with a, b:
            with pytest.raises(
                ValueError, match="socket type mismatch: expected SOCK_STREAM"
            ):
                await SocketStream.from_socket(a)


@needs_unix
class TestDatagramBackpressure:
    """Datagram sends wait for the kernel to take the datagram (UNIX datagram
    sockets push back where loopback UDP never does)."""

    async def test_send_waits_and_cancel_sends_nothing(self, short_tmp: Path) -> None:
        peer = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        peer.bind(str(short_tmp / "peer"))
        peer.setblocking(False)
        with peer:
            async with await create_connected_unix_datagram_socket(
                short_tmp / "peer"
            ) as sender:
                raw = sender.extra(SocketAttribute.raw_socket)
                raw.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1024)
                with socket.fromfd(raw.fileno(), raw.family, raw.type) as dup:
                    dup.setblocking(False)
                    with pytest.raises(BlockingIOError):
                        while True:
                            dup.send(b"\0" * 64)

                with move_on_after(0.05) as scope:
                    await sender.send(b"cancelled")

                assert scope.cancelled_caught

                async def drain() -> list[bytes]:
                    received: list[bytes] = []
                    while not received or received[-1] != b"last":
                        try:
                            received.append(peer.recv(65536))
                        except BlockingIOError:
                            await wait_readable(peer)

                    return received

                async with create_task_group() as tg:
                    tg.start_soon(sender.send, b"last")
                    received = await drain()

                assert b"cancelled" not in received
                assert received[-1] == b"last"
