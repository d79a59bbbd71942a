"""The httpx client scenario: the measured process is the client.

    python -m bench.apps.client --port P --loop asyncio|uvloop \
        --mode sequential|concurrent --requests N --duration S

One ``httpx.AsyncClient`` makes GETs against a local server (the runner's
``echo`` server, which does not use anyio): one after another, or from 50
tasks at once sharing the client's connection pool (50 connections). After a
warm-up it measures until ``--requests`` responses or ``--duration`` seconds,
and prints one JSON line with the count, errors, elapsed time, latency
percentiles and this process's CPU seconds (from the kernel) over the
measured part.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from bench.apps._proc import cpu_seconds
from bench.apps.loadgen import percentile

CONCURRENCY = 50


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    import httpx

    import anyio

    url = f"http://127.0.0.1:{args.port}/"
    notes = []
    stream = await anyio.connect_tcp("127.0.0.1", args.port)
    await stream.aclose()
    if not hasattr(anyio.streams, "tls"):
        # httpcore reads anyio.streams.tls.TLSAttribute after a bare
        # `import anyio`. Upstream has loaded that module once a socket has
        # connected; without it every request fails. Load it and say so, to
        # measure the rest.
        import anyio.streams.tls

        notes.append(
            "anyio.streams.tls not loaded after connect_tcp: the bench imported it"
        )
    limits = httpx.Limits(
        max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY
    )
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(limits=limits) as client:

        async def worker(count: int, deadline: float, record: bool) -> None:
            nonlocal errors
            for _ in range(count):
                if time.monotonic() >= deadline:
                    return
                t0 = time.perf_counter()
                try:
                    response = await client.get(url)
                except httpx.HTTPError:
                    errors += 1
                    continue
                if record:
                    latencies.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    errors += 1

        async def phase(total: int, seconds: float, record: bool) -> None:
            deadline = time.monotonic() + seconds
            if args.mode == "sequential":
                await worker(total, deadline, record)
                return
            per_task = max(1, total // CONCURRENCY)
            async with anyio.create_task_group() as tg:
                for _ in range(CONCURRENCY):
                    tg.start_soon(worker, per_task, deadline, record)

        await phase(max(CONCURRENCY, args.requests // 10), args.duration / 5, False)
        errors = 0
        cpu0 = cpu_seconds()
        t0 = time.perf_counter()
        await phase(args.requests, args.duration, True)
        elapsed = time.perf_counter() - t0
        cpu = cpu_seconds() - cpu0
    return {
        "requests": len(latencies),
        "errors": errors,
        "elapsed": elapsed,
        "cpu": cpu,
        "p50_ms": percentile(latencies, 0.50) * 1e3,
        "p99_ms": percentile(latencies, 0.99) * 1e3,
        "notes": notes,
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    p.add_argument("--mode", choices=("sequential", "concurrent"), required=True)
    p.add_argument("--requests", type=int, default=2_000)
    p.add_argument("--duration", type=float, default=5.0)
    args = p.parse_args()
    import anyio

    notes: list[str] = []
    options = {"use_uvloop": True} if args.loop == "uvloop" else {}
    result = anyio.run(measure, args, backend="asyncio", backend_options=options)
    result["anyio"] = anyio.__file__
    result["notes"] = notes + result.pop("notes", [])
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
