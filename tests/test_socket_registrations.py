"""Socket wrappers keep their asyncio reader/writer registration between waits
(see anyio._fdwait.Watch): readiness must never be lost, closing must release
the registration, and cancellation must keep its guarantees, on every backend."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from functools import partial

import pytest

from anyio import (
    ClosedResourceError,
    connect_tcp,
    create_connected_udp_socket,
    create_task_group,
    create_tcp_listener,
    create_udp_socket,
    fail_after,
    move_on_after,
    run,
    sleep,
    to_thread,
    wait_all_tasks_blocked,
    wait_readable,
)
from anyio._fdwait import _current_watch
from anyio.abc import SocketAttribute, SocketStream, UNIXSocketStream

pytestmark = pytest.mark.anyio


@pytest.fixture
def server_sock() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock
    sock.close()


async def _connected(server_sock: socket.socket) -> tuple[SocketStream, socket.socket]:
    stream = await connect_tcp(*server_sock.getsockname())
    peer, _ = server_sock.accept()
    return stream, peer


async def _idle() -> None:
    """Let the event loop go round several times with nobody reading."""
    for _ in range(5):
        await sleep(0)

    await sleep(0.02)


async def _send_later(peer: socket.socket, data: bytes) -> None:
    await wait_all_tasks_blocked()
    peer.sendall(data)


async def test_data_arriving_with_no_waiter_is_kept(server_sock: socket.socket) -> None:
    stream, peer = await _connected(server_sock)
    with fail_after(5), peer:
        async with stream:
            for round_ in range(3):
                # A receive that has to wait leaves the registration behind ...
                async with create_task_group() as tg:
                    tg.start_soon(_send_later, peer, b"first%d" % round_)
                    assert await stream.receive() == b"first%d" % round_

                # ... then data comes while nobody waits for it
                peer.sendall(b"second%d" % round_)
                await _idle()
                assert await stream.receive() == b"second%d" % round_


async def test_cancelled_receive_loses_nothing(server_sock: socket.socket) -> None:
    stream, peer = await _connected(server_sock)
    with fail_after(5), peer:
        async with stream:
            for _ in range(3):
                with move_on_after(0.01) as scope:
                    await stream.receive()

                assert scope.cancelled_caught
                peer.sendall(b"after cancel")
                await _idle()
                assert await stream.receive() == b"after cancel"


async def test_close_after_wait_releases_the_descriptor(
    server_sock: socket.socket, anyio_backend_name: str
) -> None:
    stream, peer = await _connected(server_sock)
    with fail_after(5), peer:
        raw = stream.extra(SocketAttribute.raw_socket)
        fd = raw.fileno()
        async with create_task_group() as tg:
            tg.start_soon(_send_later, peer, b"x")
            assert await stream.receive() == b"x"

        if anyio_backend_name == "asyncio":
            # the registration outlives the wait ...
            loop = asyncio.get_running_loop()
            assert _current_watch(loop, fd, True) is not None

        await stream.aclose()
        assert raw.fileno() == -1
        if anyio_backend_name == "asyncio":
            # ... and leaves with the descriptor
            assert _current_watch(loop, fd, True) is None

        # The freed descriptor number is usually handed out again at once: a
        # fresh socket on it must be watched for its own readiness.
        first, second = socket.socketpair()
        with first, second:
            async with await UNIXSocketStream.from_socket(first.dup()) as reused:
                async with create_task_group() as tg:
                    tg.start_soon(_send_later, second, b"fresh")
                    assert await reused.receive() == b"fresh"

            second.sendall(b"raw")
            await wait_readable(first)
            assert first.recv(10) == b"raw"


async def test_close_wakes_receiver_after_earlier_waits(
    server_sock: socket.socket,
) -> None:
    stream, peer = await _connected(server_sock)
    with fail_after(5), peer:
        async with create_task_group() as tg:
            tg.start_soon(_send_later, peer, b"x")
            assert await stream.receive() == b"x"

        async def close_soon() -> None:
            await wait_all_tasks_blocked()
            await stream.aclose()

        async with create_task_group() as tg:
            tg.start_soon(close_soon)
            with pytest.raises(ClosedResourceError):
                await stream.receive()


async def test_send_waits_repeatedly_and_delivers_in_order(
    server_sock: socket.socket,
) -> None:
    """Each send() below outgrows the kernel buffers, so it parks on the
    writer registration several times while the peer drains."""
    payloads = [bytes([65 + index]) * 3_000_000 for index in range(3)]
    stream, peer = await _connected(server_sock)
    peer.setblocking(False)
    received = bytearray()

    async def drain() -> None:
        while len(received) < sum(map(len, payloads)):
            try:
                received.extend(peer.recv(65536))
            except BlockingIOError:
                await wait_readable(peer)

    with fail_after(20), peer:
        async with stream:
            async with create_task_group() as tg:
                tg.start_soon(drain)
                for payload in payloads:
                    await stream.send(payload)

    assert bytes(received) == b"".join(payloads)


async def _drain_until_end(peer: socket.socket, received: bytearray) -> None:
    while not received.endswith(b"END"):
        try:
            received.extend(peer.recv(65536))
        except BlockingIOError:
            await wait_readable(peer)


async def test_cancelled_send_then_send(server_sock: socket.socket) -> None:
    """A send cancelled while parked on the writer registration has sent
    nothing; the next send() goes through whole."""
    stream, peer = await _connected(server_sock)
    peer.setblocking(False)
    raw = stream.extra(SocketAttribute.raw_socket)
    with fail_after(10), peer:
        async with stream:
            for _ in range(2):
                with socket.fromfd(raw.fileno(), raw.family, raw.type) as dup:
                    dup.setblocking(False)
                    try:
                        while True:
                            dup.send(b"f" * 65536)
                    except BlockingIOError:
                        pass

                with move_on_after(0.05) as scope:
                    await stream.send(b"M" * 100)

                assert scope.cancelled_caught

                received = bytearray()
                async with create_task_group() as tg:
                    tg.start_soon(_drain_until_end, peer, received)
                    await stream.send(b"END")

                assert b"M" not in received
                assert received.strip(b"f") == b"END"


async def test_plain_wait_after_stream_receive(server_sock: socket.socket) -> None:
    """wait_readable() on the descriptor of a stream that waited before (and
    so may still be registered) works, and the stream keeps working after."""
    stream, peer = await _connected(server_sock)
    with fail_after(5), peer:
        async with stream:
            async with create_task_group() as tg:
                tg.start_soon(_send_later, peer, b"one")
                assert await stream.receive() == b"one"

            raw = stream.extra(SocketAttribute.raw_socket)
            async with create_task_group() as tg:
                tg.start_soon(_send_later, peer, b"two")
                await wait_readable(raw)

            assert await stream.receive() == b"two"
            async with create_task_group() as tg:
                tg.start_soon(_send_later, peer, b"three")
                assert await stream.receive() == b"three"


async def test_echo_round_trips() -> None:
    async def echo(client: SocketStream) -> None:
        async with client:
            async for chunk in client:
                await client.send(chunk)

    with fail_after(20):
        async with await create_tcp_listener(local_host="127.0.0.1") as listener:
            port = listener.extra(SocketAttribute.local_port)
            async with create_task_group() as tg:
                tg.start_soon(listener.serve, echo)
                async with await connect_tcp("127.0.0.1", port) as stream:
                    for size in (1, 64, 1000, 70_000, 5) * 40:
                        payload = bytes(range(256)) * (size // 256) + b"z" * (
                            size % 256
                        )
                        await stream.send(payload)
                        got = bytearray()
                        while len(got) < size:
                            got += await stream.receive()

                        assert got == payload

                tg.cancel_scope.cancel()


async def test_listener_keeps_connections_arriving_while_idle() -> None:
    with fail_after(5):
        async with await create_tcp_listener(local_host="127.0.0.1") as multi:
            [listener] = multi.listeners
            port = listener.extra(SocketAttribute.local_port)
            for _ in range(3):
                async with create_task_group() as tg:

                    async def connect_later() -> None:
                        await wait_all_tasks_blocked()
                        await (await connect_tcp("127.0.0.1", port)).aclose()

                    tg.start_soon(connect_later)
                    await (await listener.accept()).aclose()

                # a connection that nobody is accepting at the moment
                client = await connect_tcp("127.0.0.1", port)
                await _idle()
                accepted = await listener.accept()
                await accepted.aclose()
                await client.aclose()


async def test_udp_datagram_arriving_while_idle() -> None:
    with fail_after(5):
        async with await create_udp_socket(
            family=socket.AF_INET, local_host="127.0.0.1"
        ) as udp:
            port = udp.extra(SocketAttribute.local_port)
            async with await create_connected_udp_socket(
                "127.0.0.1", port, local_host="127.0.0.1"
            ) as sender:
                for index in range(3):
                    async with create_task_group() as tg:

                        async def send_later(data: bytes) -> None:
                            await wait_all_tasks_blocked()
                            await sender.send(data)

                        tg.start_soon(send_later, b"waited%d" % index)
                        data, _ = await udp.receive()
                        assert data == b"waited%d" % index

                    await sender.send(b"idle%d" % index)
                    await _idle()
                    data, _ = await udp.receive()
                    assert data == b"idle%d" % index


async def test_two_event_loops_wait_on_one_descriptor(
    anyio_backend: tuple[str, dict[str, object]],
) -> None:
    """Registrations are per loop: a wait in a second event loop (in another
    thread) neither disturbs nor is disturbed by one in this loop."""
    backend, options = anyio_backend
    first, second = socket.socketpair()

    async def wait_elsewhere() -> None:
        with fail_after(5):
            await wait_readable(first)

    with first, second:
        async with create_task_group() as tg:
            tg.start_soon(
                partial(
                    to_thread.run_sync,
                    partial(
                        run, wait_elsewhere, backend=backend, backend_options=options
                    ),
                )
            )
            await sleep(0.05)  # let the other loop register first

            async def send_later() -> None:
                await sleep(0.05)
                second.send(b"x")

            tg.start_soon(send_later)
            with fail_after(5):
                await wait_readable(first)
