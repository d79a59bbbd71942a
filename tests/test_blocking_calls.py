"""No blocking call from anyio code on the event loop thread.

Uses the ``blockbuster`` package (as upstream anyio's suite does), which makes
blocking calls (reads on blocking descriptors, os.stat, ...) raise when made
from code in the ``anyio`` package while an asyncio loop runs in that thread.
"""

from __future__ import annotations

import os
import socket
import ssl
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from anyio import (
    connect_tcp,
    connect_unix,
    create_connected_unix_datagram_socket,
    create_task_group,
    create_tcp_listener,
    create_unix_datagram_socket,
    create_unix_listener,
    open_process,
    run_process,
)
from anyio.abc import SocketAttribute, SocketStream
from anyio.streams.tls import TLSListener, TLSStream

blockbuster = pytest.importorskip("blockbuster")
trustme = pytest.importorskip("trustme")

pytestmark = [
    pytest.mark.anyio,
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX only"),
]


@pytest.fixture(autouse=True)
def watch_blocking_calls() -> Iterator[None]:
    # The pytest plugin and the test runner drive the event loop from Python
    # frames in the anyio package; what they call is the test's business.
    with blockbuster.blockbuster_ctx(
        "anyio", excluded_modules=["anyio.pytest_plugin", "anyio._testrunner"]
    ):
        yield


@pytest.fixture
def socket_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("blocking")


async def test_run_process() -> None:
    result = await run_process(
        [sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.read())"],
        input=b"echo",
    )
    assert result.stdout == b"echo"


async def test_process_pipes() -> None:
    command = [sys.executable, "-c", "print(input().upper())"]
    async with await open_process(command) as process:
        assert process.stdin is not None and process.stdout is not None
        await process.stdin.send(b"hello\n")
        await process.stdin.aclose()
        output = b"".join([chunk async for chunk in process.stdout])
        assert output.rstrip() == b"HELLO"

    assert process.returncode == 0


async def test_unix_listener_replaces_stale_file(socket_dir: Path) -> None:
    path = socket_dir / "sock"
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(path))
    stale.close()

    async with await create_unix_listener(path, mode=0o600) as listener:
        assert listener.extra(SocketAttribute.local_address) == str(path)
        async with await connect_unix(path) as client:
            async with await listener.accept() as server:
                await client.send(b"ping")
                assert await server.receive() == b"ping"


async def test_unix_datagram_sockets(socket_dir: Path) -> None:
    server_path = socket_dir / "server"
    async with await create_unix_datagram_socket(local_path=server_path) as server:
        async with await create_connected_unix_datagram_socket(
            server_path, local_path=socket_dir / "client"
        ) as client:
            await client.send(b"ping")
            data, sender = await server.receive()
            assert data == b"ping"
            assert sender == str(socket_dir / "client")


class _SubclassedContext(ssl.SSLContext):
    """Does file system work in wrap_bio(), as truststore's context does."""

    def wrap_bio(self, *args: Any, **kwargs: Any) -> ssl.SSLObject:
        os.stat(__file__)
        return super().wrap_bio(*args, **kwargs)


async def test_tls_with_subclassed_context() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(server_context)
    client_context = _SubclassedContext(ssl.PROTOCOL_TLS_CLIENT)
    ca.configure_trust(client_context)

    async def handle(stream: SocketStream | TLSStream) -> None:
        async with stream:
            await stream.send(b"hello")

    async with await create_tcp_listener(local_host="127.0.0.1") as listener:
        port = listener.extra(SocketAttribute.local_port)
        async with create_task_group() as tg:
            tg.start_soon(TLSListener(listener, server_context).serve, handle)
            async with await connect_tcp(
                "127.0.0.1", port, ssl_context=client_context, tls_hostname="localhost"
            ) as stream:
                assert await stream.receive() == b"hello"

            tg.cancel_scope.cancel()
