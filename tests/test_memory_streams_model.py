"""Memory object streams against a plain Python model.

Hypothesis generates programs of stream operations: tasks that send or receive
(and park), the non-blocking calls, clones, closes and cancellations. Each
program runs on every backend; after every step (once all tasks have settled)
the outcome of every operation and the stream's statistics must match what the
model predicts, and at the end every item that a sender was told was delivered
has been received exactly once, and no other item was.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests._backends import backend_params

import anyio
from anyio import (
    CancelScope,
    WouldBlock,
    create_memory_object_stream,
    create_task_group,
    wait_all_tasks_blocked,
)
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

PARKED = "parked"


@dataclass
class Model:
    max_size: float
    buffer: deque[int] = field(default_factory=deque)
    send_closed: list[bool] = field(default_factory=lambda: [False])
    recv_closed: list[bool] = field(default_factory=lambda: [False])
    waiting_send: list[tuple[int, int, int]] = field(
        default_factory=list
    )  # tid, clone, item
    waiting_recv: list[tuple[int, int]] = field(default_factory=list)  # tid, clone
    outcomes: dict[int, Any] = field(default_factory=dict)

    @property
    def open_send(self) -> int:
        return self.send_closed.count(False)

    @property
    def open_recv(self) -> int:
        return self.recv_closed.count(False)

    def send(self, tid: int | None, clone: int, item: int) -> Any:
        if self.send_closed[clone]:
            return ("err", "ClosedResourceError")
        if not self.open_recv:
            return ("err", "BrokenResourceError")
        if self.waiting_recv:
            rtid, _ = self.waiting_recv.pop(0)
            self.outcomes[rtid] = ("ok", item)
            return ("ok", None)
        if len(self.buffer) < self.max_size:
            self.buffer.append(item)
            return ("ok", None)
        if tid is None:
            return ("err", "WouldBlock")
        self.waiting_send.append((tid, clone, item))
        return PARKED

    def receive(self, tid: int | None, clone: int) -> Any:
        if self.recv_closed[clone]:
            return ("err", "ClosedResourceError")
        if self.buffer:
            item = self.buffer.popleft()
            if self.waiting_send:
                stid, _, sitem = self.waiting_send.pop(0)
                self.buffer.append(sitem)
                self.outcomes[stid] = ("ok", None)
            return ("ok", item)
        if self.waiting_send:
            stid, _, sitem = self.waiting_send.pop(0)
            self.outcomes[stid] = ("ok", None)
            return ("ok", sitem)
        if not self.open_send:
            return ("err", "EndOfStream")
        if tid is None:
            return ("err", "WouldBlock")
        self.waiting_recv.append((tid, clone))
        return PARKED

    def close_send(self, clone: int) -> None:
        if self.send_closed[clone]:
            return
        self.send_closed[clone] = True
        for entry in [w for w in self.waiting_send if w[1] == clone]:
            self.waiting_send.remove(entry)
            self.outcomes[entry[0]] = ("err", "ClosedResourceError")
        if not self.open_send:
            for rtid, _ in self.waiting_recv:
                self.outcomes[rtid] = ("err", "EndOfStream")
            self.waiting_recv.clear()

    def close_recv(self, clone: int) -> None:
        if self.recv_closed[clone]:
            return
        self.recv_closed[clone] = True
        for entry in [w for w in self.waiting_recv if w[1] == clone]:
            self.waiting_recv.remove(entry)
            self.outcomes[entry[0]] = ("err", "ClosedResourceError")
        if not self.open_recv:
            for stid, _, _ in self.waiting_send:
                self.outcomes[stid] = ("err", "BrokenResourceError")
            self.waiting_send.clear()

    def cancel(self, tid: int) -> None:
        for entry in self.waiting_send:
            if entry[0] == tid:
                self.waiting_send.remove(entry)
                self.outcomes[tid] = ("cancelled",)
                return
        for rentry in self.waiting_recv:
            if rentry[0] == tid:
                self.waiting_recv.remove(rentry)
                self.outcomes[tid] = ("cancelled",)
                return

    def statistics(self) -> tuple[Any, ...]:
        return (
            len(self.buffer),
            self.max_size,
            self.open_send,
            self.open_recv,
            len(self.waiting_send),
            len(self.waiting_recv),
        )


# Parking operations are listed several times so that queues of waiting tasks
# form often; the others still appear in most programs.
OPERATION_NAMES = [
    *["spawn_send"] * 4,
    *["spawn_receive"] * 4,
    *["send_nowait"] * 2,
    *["receive_nowait"] * 2,
    "clone_send",
    "clone_receive",
    "close_send",
    "close_receive",
    *["cancel"] * 2,
    # a send_nowait whose receiver gets cancelled before it runs (too late:
    # the receiver already has the item and keeps it)
    "send_nowait_then_cancel",
    # a receive_nowait whose sender gets cancelled before it runs (too late:
    # the item was delivered, so the send reports success)
    "receive_nowait_then_cancel",
]
operations = st.tuples(st.sampled_from(OPERATION_NAMES), st.integers(0, 30))


async def run_program(max_size: float, program: list[tuple[str, int]]) -> None:
    model = Model(max_size)
    send, receive = create_memory_object_stream[int](max_size)
    senders: list[MemoryObjectSendStream[int]] = [send]
    receivers: list[MemoryObjectReceiveStream[int]] = [receive]
    scopes: dict[int, CancelScope] = {}
    outcomes: dict[int, Any] = {}
    delivered: list[int] = []  # items a send reported as delivered
    received: list[int] = []
    send_items: dict[int, int] = {}
    next_item = 0

    def record(tid: int, result: Any) -> None:
        outcomes[tid] = result
        if tid in send_items and result == ("ok", None):
            delivered.append(send_items[tid])
        elif tid not in send_items and result[0] == "ok":
            received.append(result[1])

    async def run_task(tid: int, op: Any, *, task_status: Any) -> None:
        with CancelScope() as scope:
            scopes[tid] = scope
            task_status.started()
            try:
                result: Any = ("ok", await op())
            except Exception as exc:
                result = ("err", type(exc).__name__)
            record(tid, result)

        if scope.cancelled_caught:
            outcomes[tid] = ("cancelled",)

    def nowait(func: Any, *args: Any) -> Any:
        try:
            return ("ok", func(*args))
        except Exception as exc:
            return ("err", type(exc).__name__)

    def first_waiting(queue: list[Any]) -> int | None:
        return queue[0][0] if queue else None

    async with create_task_group() as tg:
        for tid, (name, arg) in enumerate(program):
            if name == "spawn_send":
                clone = arg % len(senders)
                item, next_item = next_item, next_item + 1
                send_items[tid] = item
                expected = model.send(tid, clone, item)
                await tg.start(
                    run_task, tid, lambda s=senders[clone], i=item: s.send(i)
                )
                if expected != PARKED:
                    model.outcomes[tid] = expected
            elif name == "spawn_receive":
                clone = arg % len(receivers)
                expected = model.receive(tid, clone)
                await tg.start(run_task, tid, receivers[clone].receive)
                if expected != PARKED:
                    model.outcomes[tid] = expected
            elif name in ("send_nowait", "send_nowait_then_cancel"):
                clone = arg % len(senders)
                item, next_item = next_item, next_item + 1
                victim = first_waiting(model.waiting_recv)
                expected = model.send(None, clone, item)
                actual = nowait(senders[clone].send_nowait, item)
                assert actual == expected, (name, actual, expected)
                if actual == ("ok", None):
                    delivered.append(item)
                if name == "send_nowait_then_cancel" and victim is not None:
                    model.cancel(victim)  # a no-op unless it is still waiting
                    scopes[victim].cancel()
            elif name in ("receive_nowait", "receive_nowait_then_cancel"):
                clone = arg % len(receivers)
                victim = first_waiting(model.waiting_send)
                expected = model.receive(None, clone)
                actual = nowait(receivers[clone].receive_nowait)
                assert actual == expected, (name, actual, expected)
                if actual[0] == "ok":
                    received.append(actual[1])
                if name == "receive_nowait_then_cancel" and victim is not None:
                    model.cancel(victim)  # a no-op unless it is still waiting
                    scopes[victim].cancel()
            elif name == "clone_send":
                clone = arg % len(senders)
                result = nowait(senders[clone].clone)
                if model.send_closed[clone]:
                    assert result == ("err", "ClosedResourceError")
                else:
                    senders.append(result[1])
                    model.send_closed.append(False)
            elif name == "clone_receive":
                clone = arg % len(receivers)
                result = nowait(receivers[clone].clone)
                if model.recv_closed[clone]:
                    assert result == ("err", "ClosedResourceError")
                else:
                    receivers.append(result[1])
                    model.recv_closed.append(False)
            elif name == "close_send":
                clone = arg % len(senders)
                model.close_send(clone)
                senders[clone].close()
            elif name == "close_receive":
                clone = arg % len(receivers)
                model.close_recv(clone)
                receivers[clone].close()
            elif name == "cancel":
                if arg in scopes:
                    model.cancel(arg)
                    scopes[arg].cancel()

            await wait_all_tasks_blocked()
            assert outcomes == model.outcomes, (name, outcomes, model.outcomes)
            assert tuple(send.statistics()) == model.statistics()

        # Wind down: everything still parked is cancelled.
        for tid in list(scopes):
            model.cancel(tid)
            scopes[tid].cancel()

    assert outcomes == model.outcomes
    # What is left in the buffer is exactly what the model holds, in order.
    open_receivers = [r for r in receivers if not r._closed]
    if open_receivers:
        leftover = []
        while True:
            try:
                leftover.append(open_receivers[0].receive_nowait())
            except (WouldBlock, anyio.EndOfStream):
                break
        assert leftover == list(model.buffer)
        received.extend(leftover)
    else:
        assert send.statistics().current_buffer_used == len(model.buffer)
        received.extend(model.buffer)

    # Exactly once: every item reported delivered was received (or is still
    # buffered), and nothing else was.
    assert sorted(received) == sorted(delivered)
    for send_handle in senders:
        send_handle.close()
    for receive_handle in receivers:
        receive_handle.close()


@pytest.mark.parametrize("backend", backend_params())
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    max_size=st.sampled_from([0, 0, 1, 2, 5]),
    program=st.lists(operations, min_size=1, max_size=40),
)
def test_against_model(
    backend: tuple[str, dict[str, Any]], max_size: int, program: list[tuple[str, int]]
) -> None:
    anyio.run(
        run_program, max_size, program, backend=backend[0], backend_options=backend[1]
    )
