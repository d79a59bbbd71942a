"""A FastAPI app on uvicorn under load from another process.

Run with a Python that has fastapi and uvicorn (``--downstream`` runs it in the
FastAPI environments, with upstream anyio and with this package)::

    python conformance/served_app.py --loop uvloop --requests 3000

The server process serves a sync ``def`` endpoint (worker threads), an
``async def`` endpoint, two ``StreamingResponse`` endpoints (an async generator
and a sync iterator, which runs in worker threads) behind a
``BaseHTTPMiddleware``. This process loads it over keep-alive connections with
a small asyncio HTTP/1.1 client until a fixed number of requests got answers,
and checks: every answer 2xx with the expected body, no connection error, no
hang (all requests answered within --timeout), and a stable thread count: the
server's OS threads never exceed what it had before the load plus the default
thread limiter's 40, and no more distinct worker threads ran the sync code than
twice that limit (a worker pool that is torn down and started again shows up as
hundreds). Exits 1 on a failed check; ``--json`` writes the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import subprocess
import sys
import time
from typing import Any

PATHS = ("/sync", "/async", "/stream", "/stream-sync")
LIMITER_TOKENS = 40


def build_app() -> Any:
    import threading

    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse
    from starlette.middleware.base import BaseHTTPMiddleware

    import anyio

    workers: set[int] = set()
    app = FastAPI()

    class Tag(BaseHTTPMiddleware):
        async def dispatch(self, request: Any, call_next: Any) -> Any:
            response = await call_next(request)
            response.headers["x-tag"] = "1"
            return response

    app.add_middleware(Tag)

    @app.get("/sync")
    def sync_endpoint() -> dict[str, Any]:
        workers.add(threading.get_native_id())
        return {"ok": "sync"}

    @app.get("/async")
    async def async_endpoint() -> dict[str, Any]:
        await anyio.sleep(0)
        return {"ok": "async"}

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> Any:
            for index in range(4):
                await anyio.sleep(0)
                yield f"chunk{index};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/stream-sync")
    def stream_sync() -> StreamingResponse:
        def chunks() -> Any:
            for index in range(4):
                workers.add(threading.get_native_id())
                yield f"chunk{index};".encode()

        return StreamingResponse(chunks(), media_type="text/plain")

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return {
            "workers": len(workers),
            "os_threads": len(os.listdir("/proc/self/task")),
            "anyio": anyio.__file__,
        }

    return app


EXPECTED = {
    "/sync": b'{"ok":"sync"}',
    "/async": b'{"ok":"async"}',
    "/stream": b"chunk0;chunk1;chunk2;chunk3;",
    "/stream-sync": b"chunk0;chunk1;chunk2;chunk3;",
}


def serve(port: int, loop: str) -> None:
    import uvicorn

    uvicorn.run(
        build_app(), host="127.0.0.1", port=port, loop=loop, log_level="warning"
    )


# ------------------------------------------------------------------ client


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            body += (await reader.readexactly(size + 2))[:-2]
    else:
        body = await reader.readexactly(int(headers.get("content-length", "0")))
    keep = headers.get("connection", "").lower() != "close"
    return status, body, keep


async def _get(port: int, path: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
        status, body, _ = await _read_response(reader)
        if status != 200:
            raise RuntimeError(f"GET {path}: {status}")
        return body
    finally:
        writer.close()


async def load(port: int, total: int, connections: int) -> dict[str, Any]:
    counts: dict[str, Any] = {"requests": 0, "non_2xx": 0, "errors": 0, "bad_body": 0}
    statuses: dict[int, int] = {}
    samples: list[int] = []
    issued = 0
    problems: list[str] = []

    async def connection(index: int) -> None:
        nonlocal issued
        reader = writer = None
        try:
            while issued < total:
                issued += 1
                path = PATHS[issued % len(PATHS)]
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                assert reader is not None
                writer.write(f"GET {path} HTTP/1.1\r\nHost: t\r\n\r\n".encode())
                try:
                    status, body, keep = await _read_response(reader)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    counts["errors"] += 1
                    if len(problems) < 5:
                        problems.append(f"{path}: {exc!r}")
                    writer.close()
                    reader = writer = None
                    continue
                counts["requests"] += 1
                statuses[status] = statuses.get(status, 0) + 1
                if not 200 <= status < 300:
                    counts["non_2xx"] += 1
                    if len(problems) < 5:
                        problems.append(f"{path}: HTTP {status}: {body[:200]!r}")
                elif body != EXPECTED[path]:
                    counts["bad_body"] += 1
                    if len(problems) < 5:
                        problems.append(f"{path}: body {body[:200]!r}")
                if not keep:
                    writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()

    async def sampler() -> None:
        # The server's OS thread count while the load runs.
        while issued < total:
            stats = json.loads(await _get(port, "/stats"))
            samples.append(stats["os_threads"])
            await asyncio.sleep(0.1)

    started = time.monotonic()
    watch = asyncio.ensure_future(sampler())
    await asyncio.gather(*(connection(i) for i in range(connections)))
    await watch
    counts["seconds"] = round(time.monotonic() - started, 2)
    counts["samples"] = len(samples)
    counts["threads_peak_load"] = max(samples, default=0)
    return {**counts, "statuses": statuses, "problems": problems}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_listening(port: int, server: subprocess.Popen[bytes], limit: float) -> None:
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited with {server.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError("the server did not listen within the limit")


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=90.0)
    parser.add_argument("--json", help="write the figures here")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.loop)
        return 0

    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", str(port), "--loop", args.loop]
    )
    result: dict[str, Any] = {"loop": args.loop, "ok": False}
    try:
        _wait_listening(port, server, 30)
        before = json.loads(asyncio.run(_get(port, "/stats")))
        result["anyio"] = before["anyio"]
        result["threads_start"] = before["os_threads"]
        try:
            figures = asyncio.run(
                asyncio.wait_for(
                    load(port, args.requests, args.connections), args.timeout
                )
            )
        except asyncio.TimeoutError:
            result["problem"] = f"hang: not all requests answered in {args.timeout} s"
            return 1
        after = json.loads(asyncio.run(_get(port, "/stats")))
        result.update(figures)
        result["threads_end"] = after["os_threads"]
        result["worker_threads"] = after["workers"]
        result["rate"] = round(figures["requests"] / max(figures["seconds"], 1e-3))
        peak = max(after["os_threads"], figures["threads_peak_load"])
        result["threads_peak"] = peak
        problems = []
        if figures["requests"] != args.requests:
            problems.append(f"{figures['requests']} of {args.requests} answered")
        for key in ("non_2xx", "errors", "bad_body"):
            if figures[key]:
                problems.append(f"{figures[key]} {key}")
        if peak > before["os_threads"] + LIMITER_TOKENS:
            problems.append(
                f"OS threads grew from {before['os_threads']} to {peak}"
                f" (the limiter allows {LIMITER_TOKENS} workers)"
            )
        if after["workers"] > 2 * LIMITER_TOKENS:
            problems.append(f"{after['workers']} distinct worker threads ran sync code")
        if problems:
            result["problem"] = "; ".join(problems + figures["problems"][:3])
        else:
            result["ok"] = True
        return 0 if result["ok"] else 1
    except Exception as exc:  # any failure is the result
        result["problem"] = repr(exc)
        return 1
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        print(json.dumps(result), flush=True)
        if args.json:
            with open(args.json, "w", encoding="utf-8") as file:
                json.dump(result, file)


if __name__ == "__main__":
    sys.exit(main())
