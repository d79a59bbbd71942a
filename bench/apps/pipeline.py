"""The pipeline scenario, shaped like an MCP or ASGI server, in one process.

    python -m bench.apps.pipeline --backend asyncio|uvloop|trio --requests N

A reader task feeds request messages into a memory stream (buffer 100); the
server loop receives them and spawns one handler task per request in a task
group; each handler takes a ``CapacityLimiter(10)``, runs under
``fail_after`` with two checkpoints standing in for its I/O, and sends its
response into a second memory stream that a writer task drains. Latency is
from the reader's send to the writer's receive. Prints one JSON line like the
client scenario (CPU seconds of this process from the kernel).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bench.apps._proc import cpu_seconds
from bench.apps.loadgen import percentile


async def serve(requests: int, deadline: float) -> tuple[int, int, list[float]]:
    import anyio
    from anyio.lowlevel import checkpoint

    incoming_send, incoming_receive = anyio.create_memory_object_stream[dict[str, Any]](
        100
    )
    outgoing_send, outgoing_receive = anyio.create_memory_object_stream[dict[str, Any]](
        100
    )
    limiter = anyio.CapacityLimiter(10)
    latencies: list[float] = []
    errors = 0
    clock = time.perf_counter

    async def reader() -> None:
        async with incoming_send:
            for i in range(requests):
                if time.monotonic() >= deadline:
                    break
                await incoming_send.send({"id": i, "method": "ping", "t": clock()})

    async def handle(message: dict[str, Any], send: Any) -> None:
        nonlocal errors
        async with send:
            try:
                async with limiter:
                    with anyio.fail_after(5):
                        await checkpoint()
                        result = {"id": message["id"], "result": message["method"]}
                        await checkpoint()
            except TimeoutError:
                errors += 1
                return
            await send.send({"response": result, "t": message["t"]})

    async def server_loop() -> None:
        async with outgoing_send, anyio.create_task_group() as tg:
            async with incoming_receive:
                async for message in incoming_receive:
                    tg.start_soon(handle, message, outgoing_send.clone())

    async def writer() -> None:
        async with outgoing_receive:
            async for response in outgoing_receive:
                latencies.append(clock() - response["t"])

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        tg.start_soon(server_loop)
        tg.start_soon(reader)
    return len(latencies), errors, latencies


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    await serve(max(100, args.requests // 10), time.monotonic() + args.duration)
    cpu0 = cpu_seconds()
    t0 = time.perf_counter()
    done, errors, latencies = await serve(
        args.requests, time.monotonic() + args.duration
    )
    elapsed = time.perf_counter() - t0
    return {
        "requests": done,
        "errors": errors,
        "elapsed": elapsed,
        "cpu": cpu_seconds() - cpu0,
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--backend", choices=("asyncio", "uvloop", "trio"), required=True)
    p.add_argument("--requests", type=int, default=20_000)
    p.add_argument("--duration", type=float, default=10.0)
    args = p.parse_args()
    import anyio

    if args.backend == "trio":
        result = anyio.run(measure, args, backend="trio")
    else:
        options = {"use_uvloop": True} if args.backend == "uvloop" else {}
        result = anyio.run(measure, args, backend="asyncio", backend_options=options)
    result["anyio"] = anyio.__file__
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
