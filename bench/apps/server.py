"""A uvicorn server (one worker, httptools) running a small FastAPI app.

    python -m bench.apps.server --app plain|middleware --loop asyncio|uvloop

It binds 127.0.0.1 on a free port itself, prints ``PORT <n>`` on stdout once
it listens, and serves until stdin closes (the runner holds it open) or a
SIGTERM arrives. Routes:

- ``/sync``: a plain ``def`` endpoint, which FastAPI runs in a worker thread
- ``/async``: an ``async def`` endpoint
- ``/stream``: a StreamingResponse of 100 chunks from an async generator

``--app middleware`` puts a Starlette BaseHTTPMiddleware in front of all of
them. ``--app echo`` is not FastAPI at all: a bare asyncio protocol answering
every request with a fixed body, the target of the httpx client scenario
(it does not import anyio, so both sides of that scenario meet the same
server).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import sys
import threading
from typing import Any

CHUNKS = 100
PAYLOAD = {"message": "hello", "items": [1, 2, 3]}


def make_app(middleware: bool) -> Any:
    from fastapi import FastAPI
    from fastapi.responses import StreamingResponse

    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/sync")
    def sync_endpoint() -> dict[str, Any]:
        return PAYLOAD

    @app.get("/async")
    async def async_endpoint() -> dict[str, Any]:
        return PAYLOAD

    @app.get("/stream")
    async def stream_endpoint() -> StreamingResponse:
        async def chunks() -> Any:
            for i in range(CHUNKS):
                yield b"chunk %03d\n" % i

        return StreamingResponse(chunks(), media_type="text/plain")

    if middleware:
        from starlette.middleware.base import BaseHTTPMiddleware

        async def add_header(request: Any, call_next: Any) -> Any:
            response = await call_next(request)
            response.headers["x-bench"] = "1"
            return response

        app.add_middleware(BaseHTTPMiddleware, dispatch=add_header)
    return app


class EchoProtocol(asyncio.Protocol):
    """HTTP/1.1 keep-alive, GET only: one fixed response per request head."""

    BODY = b'{"message":"hello"}'
    RESPONSE = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY)
    )

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        count = self.buffer.count(b"\r\n\r\n")
        if count:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(self.RESPONSE * count)


def bind() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.set_inheritable(True)
    return sock


def announce(sock: socket.socket) -> None:
    print(f"PORT {sock.getsockname()[1]}", flush=True)


def watch_stdin(stop: Any) -> None:
    """Stop when the runner closes our stdin (or dies)."""

    def wait() -> None:
        sys.stdin.read()
        stop()

    threading.Thread(target=wait, daemon=True).start()


def serve_echo(loop_name: str) -> None:
    if loop_name == "uvloop":
        import uvloop

        loop = uvloop.new_event_loop()
    else:
        loop = asyncio.new_event_loop()
    sock = bind()

    async def main() -> None:
        server = await loop.create_server(EchoProtocol, sock=sock)
        stopped = asyncio.Event()
        watch_stdin(lambda: loop.call_soon_threadsafe(stopped.set))
        announce(sock)
        await stopped.wait()
        server.close()

    loop.run_until_complete(main())
    loop.close()


def serve_uvicorn(app_name: str, loop_name: str) -> None:
    import uvicorn

    app = make_app(middleware=app_name == "middleware")
    config = uvicorn.Config(
        app,
        loop=loop_name,
        http="httptools",
        workers=1,
        lifespan="off",
        access_log=False,
        log_level="warning",
    )
    server = uvicorn.Server(config)
    sock = bind()

    def stop() -> None:
        server.should_exit = True

    watch_stdin(stop)
    announce(sock)
    server.run(sockets=[sock])


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--app", choices=("plain", "middleware", "echo"), required=True)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    args = parser.parse_args()
    os.environ.setdefault("PYTHONDONTWRITEBYTECODE", "1")
    if args.app == "echo":
        serve_echo(args.loop)
    else:
        serve_uvicorn(args.app, args.loop)
    return 0


if __name__ == "__main__":
    sys.exit(main())
