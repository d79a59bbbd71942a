"""TLS streams, listeners and connectables over loopback TCP."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import trustme

from anyio import (
    BrokenResourceError,
    EndOfStream,
    TCPConnectable,
    connect_tcp,
    create_task_group,
    create_tcp_listener,
    move_on_after,
    sleep,
    wait_all_tasks_blocked,
)
from anyio.abc import SocketAttribute
from anyio.streams.tls import TLSAttribute, TLSConnectable, TLSListener, TLSStream

pytestmark = pytest.mark.anyio


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def _strict(context: ssl.SSLContext) -> ssl.SSLContext:
    # Report a missing close_notify instead of hiding it
    if hasattr(ssl, "OP_IGNORE_UNEXPECTED_EOF"):
        context.options &= ~ssl.OP_IGNORE_UNEXPECTED_EOF

    return context


@pytest.fixture
def server_context(ca: trustme.CA) -> ssl.SSLContext:
    context = _strict(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
    ca.issue_cert("localhost").configure_cert(context)
    return context


@pytest.fixture
def client_context(ca: trustme.CA) -> ssl.SSLContext:
    context = _strict(ssl.create_default_context(ssl.Purpose.SERVER_AUTH))
    ca.configure_trust(context)
    return context


@pytest.fixture
def tls_server(
    server_context: ssl.SSLContext,
) -> Iterator[Callable[..., tuple[str, int]]]:
    """Start a blocking TLS server thread running ``behaviour(conn)`` on the
    first connection; returns its address."""
    threads: list[threading.Thread] = []
    sockets: list[socket.socket] = []

    def start(
        behaviour: Callable[[ssl.SSLSocket], None], *, ragged: bool = False
    ) -> tuple[str, int]:
        listener = server_context.wrap_socket(
            socket.socket(), server_side=True, suppress_ragged_eofs=ragged
        )
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        sockets.append(listener)

        def run() -> None:
            conn, _ = listener.accept()
            with conn:
                behaviour(conn)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        threads.append(thread)
        return listener.getsockname()  # type: ignore[no-any-return]

    yield start
    for thread in threads:
        thread.join(5)

    for sock in sockets:
        sock.close()


async def test_echo_and_attributes(
    tls_server: Callable[..., tuple[str, int]],
    client_context: ssl.SSLContext,
    server_context: ssl.SSLContext,
) -> None:
    server_context.set_alpn_protocols(["h2"])
    client_context.set_alpn_protocols(["h2"])

    def echo(conn: ssl.SSLSocket) -> None:
        conn.sendall(conn.recv(100)[::-1])
        conn.unwrap()

    address = tls_server(echo)
    async with await connect_tcp(
        *address, tls_hostname="localhost", ssl_context=client_context
    ) as stream:
        assert isinstance(stream, TLSStream)
        await stream.send(b"hello")
        assert await stream.receive() == b"olleh"

        raw = stream.transport_stream
        assert stream.extra(SocketAttribute.remote_address) == raw.extra(
            SocketAttribute.remote_address
        )
        assert stream.extra(TLSAttribute.alpn_protocol) == "h2"
        assert isinstance(stream.extra(TLSAttribute.channel_binding_tls_unique), bytes)
        assert isinstance(stream.extra(TLSAttribute.cipher), tuple)
        assert isinstance(stream.extra(TLSAttribute.peer_certificate), dict)
        assert isinstance(stream.extra(TLSAttribute.peer_certificate_binary), bytes)
        assert stream.extra(TLSAttribute.server_side) is False
        assert stream.extra(TLSAttribute.shared_ciphers) is None
        assert isinstance(stream.extra(TLSAttribute.ssl_object), ssl.SSLObject)
        assert stream.extra(TLSAttribute.standard_compatible) is True
        assert stream.extra(TLSAttribute.tls_version).startswith("TLSv")


async def test_untrusted_certificate() -> None:
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    trustme.CA().issue_cert("localhost").configure_cert(server_context)
    listener = socket.create_server(("127.0.0.1", 0))

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            try:
                server_context.wrap_socket(conn, server_side=True)
            except OSError:
                pass

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        # The default context trusts only the system's CAs
        with pytest.raises(ssl.SSLCertVerificationError):
            await connect_tcp(*listener.getsockname(), tls_hostname="localhost")
    finally:
        thread.join(5)
        listener.close()


async def test_unwrap(
    tls_server: Callable[..., tuple[str, int]], client_context: ssl.SSLContext
) -> None:
    def serve(conn: ssl.SSLSocket) -> None:
        conn.sendall(b"encrypted")
        plain = conn.unwrap()
        plain.sendall(b"plaintext")

    address = tls_server(serve)
    async with await connect_tcp(*address) as tcp:
        wrapper = await TLSStream.wrap(
            tcp, hostname="localhost", ssl_context=client_context
        )
        assert await wrapper.receive() == b"encrypted"
        transport, rest = await wrapper.unwrap()
        assert transport is tcp
        while not rest.endswith(b"plaintext"):
            rest += await transport.receive()

        assert rest == b"plaintext"


async def test_peer_close_notify_ends_stream(
    tls_server: Callable[..., tuple[str, int]], client_context: ssl.SSLContext
) -> None:
    def serve(conn: ssl.SSLSocket) -> None:
        conn.sendall(b"bye")
        conn.unwrap()

    address = tls_server(serve)
    async with await TLSStream.wrap(
        await connect_tcp(*address), hostname="localhost", ssl_context=client_context
    ) as wrapper:
        assert await wrapper.receive() == b"bye"
        with pytest.raises(EndOfStream):
            await wrapper.receive()


@pytest.mark.parametrize("standard_compatible", [True, False])
async def test_truncated_connection(
    tls_server: Callable[..., tuple[str, int]],
    client_context: ssl.SSLContext,
    standard_compatible: bool,
) -> None:
    """A peer that closes without close_notify breaks a standard compatible
    stream (possible truncation attack); otherwise it is just the end."""

    def serve(conn: ssl.SSLSocket) -> None:
        conn.sendall(b"hello")

    address = tls_server(serve, ragged=True)
    async with await connect_tcp(*address) as tcp:
        wrapper = await TLSStream.wrap(
            tcp,
            hostname="localhost",
            ssl_context=client_context,
            standard_compatible=standard_compatible,
        )
        assert await wrapper.receive() == b"hello"
        if standard_compatible:
            with pytest.raises(BrokenResourceError):
                await wrapper.receive()
        else:
            with pytest.raises(EndOfStream):
                await wrapper.receive()


@pytest.mark.parametrize("max_version", ["TLSv1_2", "TLSv1_3"])
async def test_send_eof_not_implemented(
    tls_server: Callable[..., tuple[str, int]],
    client_context: ssl.SSLContext,
    max_version: str,
) -> None:
    if max_version == "TLSv1_3" and not ssl.HAS_TLSv1_3:
        pytest.skip("no TLS 1.3")

    client_context.maximum_version = getattr(ssl.TLSVersion, max_version)

    def serve(conn: ssl.SSLSocket) -> None:
        conn.sendall(b"x")
        conn.unwrap()

    address = tls_server(serve)
    async with await TLSStream.wrap(
        await connect_tcp(*address), hostname="localhost", ssl_context=client_context
    ) as wrapper:
        assert await wrapper.receive() == b"x"
        expected = (
            r"requires at least TLSv1.3"
            if max_version == "TLSv1_2"
            else r"has not yet been implemented for TLS streams"
        )
        with pytest.raises(NotImplementedError, match=expected):
            await wrapper.send_eof()


async def test_listener_roundtrip_and_idna(
    ca: trustme.CA, client_context: ssl.SSLContext
) -> None:
    """A TLS listener serving our own client; the client's international host
    name is matched in its IDNA 2008 form ("fass.de" under IDNA 2003)."""
    server_context = _strict(ssl.create_default_context(ssl.Purpose.CLIENT_AUTH))
    ca.issue_cert("xn--fa-hia.de").configure_cert(server_context)

    async def handler(stream: TLSStream) -> None:
        async with stream:
            assert stream.extra(TLSAttribute.server_side) is True
            shared = stream.extra(TLSAttribute.shared_ciphers)
            assert isinstance(shared, list) and shared
            await stream.send((await stream.receive()).upper())

    tcp_listener = await create_tcp_listener(local_host="127.0.0.1")
    async with TLSListener(tcp_listener, server_context) as listener:
        assert listener.extra(TLSAttribute.standard_compatible) is True
        port = tcp_listener.extra(SocketAttribute.local_port)
        async with create_task_group() as tg:
            tg.start_soon(listener.serve, handler)
            async with await connect_tcp(
                "127.0.0.1", port, tls_hostname="faß.de", ssl_context=client_context
            ) as stream:
                await stream.send(b"secret")
                assert await stream.receive() == b"SECRET"

            tg.cancel_scope.cancel()


async def test_listener_handshake_failure(
    server_context: ssl.SSLContext, caplog: pytest.LogCaptureFixture
) -> None:
    failures: list[BaseException] = []

    class RecordingListener(TLSListener):
        @staticmethod
        async def handle_handshake_error(exc: BaseException, stream: Any) -> None:
            await TLSListener.handle_handshake_error(exc, stream)
            failures.append(exc)

    async def handler(stream: TLSStream) -> None:
        raise AssertionError("handler must not run")

    tcp_listener = await create_tcp_listener(local_host="127.0.0.1")
    listener = RecordingListener(tcp_listener, server_context)
    async with listener, create_task_group() as tg:
        tg.start_soon(listener.serve, handler)
        await wait_all_tasks_blocked()
        with socket.create_connection(
            tcp_listener.extra(SocketAttribute.local_address)
        ):
            pass  # connect and hang up without a handshake

        with move_on_after(5):
            while not failures:
                await sleep(0.01)

        tg.cancel_scope.cancel()

    assert len(failures) == 1
    assert isinstance(failures[0], BrokenResourceError)
    records = [r for r in caplog.records if r.name == "anyio.streams.tls"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert records[0].exc_info is not None and records[0].exc_info[1] is failures[0]


async def test_cancelled_send_breaks_stream(
    server_context: ssl.SSLContext, client_context: ssl.SSLContext
) -> None:
    """Once encrypted bytes may have been lost by a cancelled send, the stream
    refuses further use (the peer could not decrypt what follows)."""

    async def handler(stream: TLSStream) -> None:
        await stream.receive()  # then stop reading

    tcp_listener = await create_tcp_listener(local_host="127.0.0.1")
    port = tcp_listener.extra(SocketAttribute.local_port)
    async with TLSListener(tcp_listener, server_context) as listener:
        async with create_task_group() as tg:
            tg.start_soon(listener.serve, handler)
            stream = await connect_tcp(
                "127.0.0.1", port, tls_hostname="localhost", ssl_context=client_context
            )
            await stream.send(b"first")
            with move_on_after(0.2) as scope:
                while True:
                    await stream.send(b"\0" * 1048576)

            assert scope.cancelled_caught
            with pytest.raises(BrokenResourceError):
                await stream.send(b"more")

            with pytest.raises(BrokenResourceError):
                await stream.receive()

            await stream.aclose()  # no closing handshake on a broken stream
            tg.cancel_scope.cancel()


@pytest.mark.parametrize("max_bytes", [0, -1])
async def test_receive_bad_max_bytes(
    tls_server: Callable[..., tuple[str, int]],
    client_context: ssl.SSLContext,
    max_bytes: int,
) -> None:
    address = tls_server(lambda conn: conn.unwrap())
    async with await TLSStream.wrap(
        await connect_tcp(*address), hostname="localhost", ssl_context=client_context
    ) as wrapper:
        with pytest.raises(ValueError, match="max_bytes must be a positive integer"):
            await wrapper.receive(max_bytes)


async def test_tls_connectable(
    tls_server: Callable[..., tuple[str, int]], client_context: ssl.SSLContext
) -> None:
    def serve(conn: ssl.SSLSocket) -> None:
        conn.sendall(b"hello, " + conn.recv(100))
        conn.unwrap()

    address = tls_server(serve)
    connectable = TLSConnectable(
        TCPConnectable(*address), hostname="localhost", ssl_context=client_context
    )
    async with await connectable.connect() as stream:
        await stream.send(b"world")
        assert await stream.receive() == b"hello, world"


def test_connectable_default_context() -> None:
    connectable = TLSConnectable(TCPConnectable("localhost", 443))
    assert connectable.ssl_context.verify_mode == ssl.CERT_REQUIRED
    if hasattr(ssl, "OP_IGNORE_UNEXPECTED_EOF"):
        assert not connectable.ssl_context.options & ssl.OP_IGNORE_UNEXPECTED_EOF
