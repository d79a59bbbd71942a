"""Memory streams: who runs first after a hand-off, closed peers as checkpoints,
cancelled parked operations, and hand-offs attempted from other threads.

The rule (upstream anyio's): an operation is a checkpoint first, then happens;
the task that performs a hand-off continues first, and the task it wakes runs
at its next turn. Trio shuffles the order in which runnable tasks run, so only
what Trio guarantees is asserted there.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from tests._backends import ASYNCIO_IDS, TRIO, on_backends

import anyio
from anyio import (
    BrokenResourceError,
    CancelScope,
    EndOfStream,
    WouldBlock,
    create_memory_object_stream,
    create_task_group,
    get_cancelled_exc_class,
    wait_all_tasks_blocked,
)
from anyio.abc import TaskStatus

pytestmark = pytest.mark.anyio

asyncio_only = on_backends(*ASYNCIO_IDS)
trio_only = on_backends(TRIO)

#: More attempts than any checkpointing loop below needs by far; reaching it
#: means the operation never let the cancelling task run.
MAX_ATTEMPTS = 1000


def is_asyncio(backend: tuple[str, dict[str, Any]]) -> bool:
    return backend[0] == "asyncio"


async def cancel(scope: CancelScope) -> None:
    scope.cancel()


# --- a closed peer is still a checkpoint ------------------------------------


async def test_send_to_closed_receivers_is_a_checkpoint() -> None:
    # Starlette's BaseHTTPMiddleware keeps sending into a stream whose
    # receivers are gone until a cancel scope stops it.
    send, receive = create_memory_object_stream[int]()
    receive.close()
    attempts = 0
    with send, CancelScope() as scope:
        async with create_task_group() as tg:
            tg.start_soon(cancel, scope)
            while attempts < MAX_ATTEMPTS:
                attempts += 1
                try:
                    await send.send(1)
                except BrokenResourceError:
                    pass

    assert scope.cancelled_caught
    assert attempts < MAX_ATTEMPTS


async def test_receive_from_closed_senders_is_a_checkpoint() -> None:
    send, receive = create_memory_object_stream[int]()
    send.close()
    attempts = 0
    with receive, CancelScope() as scope:
        async with create_task_group() as tg:
            tg.start_soon(cancel, scope)
            while attempts < MAX_ATTEMPTS:
                attempts += 1
                try:
                    await receive.receive()
                except EndOfStream:
                    pass

    assert scope.cancelled_caught
    assert attempts < MAX_ATTEMPTS


async def test_iterating_an_ended_stream_is_a_checkpoint() -> None:
    send, receive = create_memory_object_stream[int]()
    send.close()
    attempts = 0
    with receive, CancelScope() as scope:
        async with create_task_group() as tg:
            tg.start_soon(cancel, scope)
            while attempts < MAX_ATTEMPTS:
                attempts += 1
                async for _ in receive:
                    pass

    assert scope.cancelled_caught
    assert attempts < MAX_ATTEMPTS


async def test_closed_peer_lets_other_tasks_run_first(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    log: list[str] = []

    async def other() -> None:
        log.append("other ran")

    send, receive = create_memory_object_stream[int]()
    receive.close()
    with send:
        async with create_task_group() as tg:
            tg.start_soon(other)
            with pytest.raises(BrokenResourceError):
                await send.send(1)
            log.append("broken")

    if is_asyncio(anyio_backend):
        assert log == ["other ran", "broken"]
    else:
        assert sorted(log) == ["broken", "other ran"]


async def test_closed_peer_in_cancelled_scope_raises_cancelled() -> None:
    send, receive = create_memory_object_stream[int]()
    send.close()
    receive.close()
    for operation in (lambda: send.send(1), receive.receive):
        with CancelScope() as scope:
            scope.cancel()
            await operation()

        assert scope.cancelled_caught


# --- the task that performs a hand-off continues first ------------------------


async def test_receive_from_parked_sender_returns_before_sender_resumes() -> None:
    # Starlette's TestClient (test_request_is_disconnected) relies on this.
    send, receive = create_memory_object_stream[int]()
    log: list[object] = []

    async def sender() -> None:
        await send.send(1)
        log.append("sender resumed")

    async with send, receive, create_task_group() as tg:
        tg.start_soon(sender)
        await wait_all_tasks_blocked()
        log.append(("received", await receive.receive()))

    assert log == [("received", 1), "sender resumed"]


async def test_receive_from_full_buffer_with_parked_sender() -> None:
    send, receive = create_memory_object_stream[int](1)
    send.send_nowait(0)
    log: list[object] = []

    async def sender() -> None:
        await send.send(1)
        log.append("sender resumed")

    async with send, receive:
        async with create_task_group() as tg:
            tg.start_soon(sender)
            await wait_all_tasks_blocked()
            log.append(("received", await receive.receive()))
            assert send.statistics().current_buffer_used == 1  # the sender's item

        assert log == [("received", 0), "sender resumed"]
        assert receive.receive_nowait() == 1


@pytest.mark.parametrize("buffer", [0, 5])
async def test_send_to_waiting_receiver_continues_before_receiver(
    anyio_backend: tuple[str, dict[str, Any]], buffer: int
) -> None:
    send, receive = create_memory_object_stream[int](buffer)
    log: list[object] = []

    async def receiver() -> None:
        log.append(("received", await receive.receive()))

    async def observer() -> None:
        # Runs at the send's checkpoint on asyncio: the item has not moved yet.
        log.append(("observer", send.statistics().tasks_waiting_receive))

    async with send, receive, create_task_group() as tg:
        tg.start_soon(receiver)
        await wait_all_tasks_blocked()
        tg.start_soon(observer)
        await send.send(1)
        log.append("send returned")

    if is_asyncio(anyio_backend):
        assert log == [("observer", 1), "send returned", ("received", 1)]
    else:
        # Trio runs the observer before or after the send; either way the
        # sender goes on before the receiver it woke.
        assert log.index("send returned") < log.index(("received", 1))
        if log[0] != "send returned":
            assert log[0] == ("observer", 1)


async def test_send_checkpoints_before_delivering(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    # A receiver that gives up during the send's checkpoint is not handed the
    # item: the send finds no receiver after its checkpoint and buffers it.
    send, receive = create_memory_object_stream[int](1)
    async with send, receive, create_task_group() as tg:
        receiver_scope = CancelScope()

        async def receiver() -> None:
            with receiver_scope:
                await receive.receive()

        async def give_up() -> None:
            receiver_scope.cancel()

        tg.start_soon(receiver)
        await wait_all_tasks_blocked()
        tg.start_soon(give_up)
        await send.send(1)
        if is_asyncio(anyio_backend):
            # give_up ran at the send's checkpoint, before the item moved
            assert send.statistics().current_buffer_used == 1

    assert receiver_scope.cancelled_caught == (
        send.statistics().current_buffer_used == 1
    )


# --- a cancelled parked sender offers its item until it resumes ----------------


async def sender_in_scope(
    send: Any, item: int, log: list[str], *, task_status: TaskStatus[CancelScope]
) -> None:
    with CancelScope() as scope:
        task_status.started(scope)
        try:
            await send.send(item)
        except get_cancelled_exc_class():
            log.append("send cancelled")
            raise

        log.append("send returned")
        try:
            await anyio.lowlevel.checkpoint()
        except get_cancelled_exc_class():
            log.append("next checkpoint cancelled")
            raise

    log.append(f"scope caught: {scope.cancelled_caught}")


async def test_cancelled_parked_sender_still_offers_its_item() -> None:
    send, receive = create_memory_object_stream[int]()
    log: list[str] = []
    async with send, receive, create_task_group() as tg:
        scope = await tg.start(sender_in_scope, send, 7, log)
        await wait_all_tasks_blocked()
        scope.cancel()
        assert send.statistics().tasks_waiting_send == 1
        assert receive.receive_nowait() == 7
        assert send.statistics().tasks_waiting_send == 0

    # The item was taken before the sender resumed: its send completed, and
    # the cancellation came at its next checkpoint.
    assert log == ["send returned", "next checkpoint cancelled", "scope caught: True"]


async def test_cancelled_parked_sender_withdraws_when_it_resumes() -> None:
    send, receive = create_memory_object_stream[int]()
    log: list[str] = []
    async with send, receive:
        async with create_task_group() as tg:
            scope = await tg.start(sender_in_scope, send, 7, log)
            await wait_all_tasks_blocked()
            scope.cancel()

        assert log == ["send cancelled", "scope caught: True"]
        assert send.statistics().tasks_waiting_send == 0
        with pytest.raises(WouldBlock):
            receive.receive_nowait()


async def test_cancelled_parked_sender_then_receive(
    anyio_backend: tuple[str, dict[str, Any]],
) -> None:
    # receive() is a checkpoint first, and the cancelled sender may run there
    # and withdraw: the item is then either received or withdrawn, never both
    # and never lost.
    send, receive = create_memory_object_stream[int]()
    log: list[str] = []
    got: list[int] = []

    async def cancel_when_settled(scope: CancelScope) -> None:
        await wait_all_tasks_blocked()
        scope.cancel()

    async with send, receive, create_task_group() as tg:
        scope = await tg.start(sender_in_scope, send, 7, log)
        await wait_all_tasks_blocked()
        scope.cancel()
        with CancelScope() as receive_scope:
            tg.start_soon(cancel_when_settled, receive_scope)
            got.append(await receive.receive())

    if is_asyncio(anyio_backend):
        # the sender's cancellation was queued first: it withdraws at the
        # receive's checkpoint
        assert got == []
    if got:
        assert got == [7]
        assert log[0] == "send returned"
    else:
        assert log[0] == "send cancelled"


async def test_cancelled_parked_receiver_is_passed_over() -> None:
    send, receive = create_memory_object_stream[int]()
    log: list[str] = []

    async def receiver(*, task_status: TaskStatus[CancelScope]) -> None:
        with CancelScope() as scope:
            task_status.started(scope)
            await receive.receive()
            log.append("received")  # pragma: no cover

        log.append("receiver cancelled")

    async with send, receive, create_task_group() as tg:
        scope = await tg.start(receiver)
        await wait_all_tasks_blocked()
        scope.cancel()
        assert send.statistics().tasks_waiting_receive == 1  # until it resumes
        with pytest.raises(WouldBlock):
            send.send_nowait(1)

    assert log == ["receiver cancelled"]
    assert send.statistics().tasks_waiting_receive == 0


@asyncio_only
async def test_natively_cancelled_parked_sender_still_offers_its_item() -> None:
    send, receive = create_memory_object_stream[int]()
    log: list[str] = []

    async def sender() -> None:
        await send.send(1)
        log.append("send returned")
        await asyncio.sleep(0)
        log.append("not reached")  # pragma: no cover

    with send, receive:
        task = asyncio.ensure_future(sender())
        await wait_all_tasks_blocked()
        task.cancel()
        assert receive.receive_nowait() == 1
        with pytest.raises(asyncio.CancelledError):
            await task

    assert log == ["send returned"]


# --- hand-offs from another thread (a misuse) ---------------------------------
# Upstream anyio lets asyncio's future be completed from a worker thread and
# does the same here; on Trio a task can only be woken from its run's thread,
# and upstream raises RuntimeError (but has changed the stream by then).


@trio_only
async def test_hand_off_to_trio_task_from_thread_raises_and_changes_nothing() -> None:
    send, receive = create_memory_object_stream[int]()
    received: list[int] = []

    async def receiver() -> None:
        received.append(await receive.receive())

    async def sender() -> None:
        await send.send(2)

    async with send, receive, create_task_group() as tg:
        tg.start_soon(receiver)
        await wait_all_tasks_blocked()
        before = send.statistics()
        for operation in (lambda: send.send_nowait(1), send.close):
            with pytest.raises(RuntimeError, match="must be called from async context"):
                await anyio.to_thread.run_sync(operation)

            assert send.statistics() == before
            assert not send._closed

        send.send_nowait(3)  # from the loop it still works
        await wait_all_tasks_blocked()
        assert received == [3]

        tg.start_soon(sender)
        await wait_all_tasks_blocked()
        before = send.statistics()
        for operation in (receive.receive_nowait, receive.close):
            with pytest.raises(RuntimeError, match="must be called from async context"):
                await anyio.to_thread.run_sync(operation)

            assert send.statistics() == before
            assert not receive._closed

        assert receive.receive_nowait() == 2


@trio_only
async def test_from_thread_without_waiters_works_on_trio() -> None:
    send, receive = create_memory_object_stream[int](1)
    with send, receive:
        await anyio.to_thread.run_sync(send.send_nowait, 1)
        assert await anyio.to_thread.run_sync(receive.receive_nowait) == 1
        await anyio.to_thread.run_sync(send.close)
        with pytest.raises(EndOfStream):
            receive.receive_nowait()
