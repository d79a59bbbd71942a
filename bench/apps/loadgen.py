"""A small HTTP/1.1 load generator, used when wrk is not installed.

    python -m bench.apps.loadgen --port P --path /async --connections 50 \
        --requests 20000 --duration 5

Keep-alive connections, each sending one GET and reading the whole response
(content-length or chunked) before the next. Stops after ``--requests``
responses or ``--duration`` seconds, whichever comes first, and prints one
JSON line: completed requests, errors (non-2xx responses and broken
connections), elapsed seconds and latency percentiles in milliseconds. Raw
asyncio (uvloop when installed): it never imports anyio.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any


class Stats:
    def __init__(self, limit: int, deadline: float) -> None:
        self.limit = limit
        self.deadline = deadline
        self.started = 0
        self.done = 0
        self.errors = 0
        self.latencies: list[float] = []

    def take(self) -> bool:
        if self.started >= self.limit or time.monotonic() >= self.deadline:
            return False
        self.started += 1
        return True


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    return status


async def connection(host: str, port: int, path: str, stats: Stats) -> None:
    request = f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode()
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while stats.take():
            t0 = time.perf_counter()
            writer.write(request)
            try:
                status = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError):
                stats.errors += 1
                writer.close()
                reader, writer = await asyncio.open_connection(host, port)
                continue
            stats.latencies.append(time.perf_counter() - t0)
            stats.done += 1
            if not 200 <= status < 400:
                stats.errors += 1
    finally:
        writer.close()


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    stats = Stats(args.requests, time.monotonic() + args.duration)
    t0 = time.perf_counter()
    results = await asyncio.gather(
        *(
            connection(args.host, args.port, args.path, stats)
            for _ in range(args.connections)
        ),
        return_exceptions=True,
    )
    elapsed = time.perf_counter() - t0
    broken = sum(1 for r in results if isinstance(r, BaseException))
    return {
        "requests": stats.done,
        "errors": stats.errors + broken,
        "elapsed": elapsed,
        "p50_ms": percentile(stats.latencies, 0.50) * 1e3,
        "p99_ms": percentile(stats.latencies, 0.99) * 1e3,
    }


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--path", default="/")
    p.add_argument("--connections", type=int, default=50)
    p.add_argument("--requests", type=int, default=10_000)
    p.add_argument("--duration", type=float, default=5.0)
    args = p.parse_args()
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(run(args))), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
