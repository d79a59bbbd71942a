"""A child's output pipes are let go of once read to their end.

A process whose pipes were read to the end and which is then dropped without
``aclose()`` must leave no open pipe behind (no ResourceWarning), also when a
grandchild held the pipes open after the child itself had exited.
"""

from __future__ import annotations

import gc
import sys
import warnings
from textwrap import dedent

import pytest

from anyio import ClosedResourceError, EndOfStream, fail_after, open_process
from anyio.abc import Process

pytestmark = pytest.mark.anyio

# The grandchild inherits the child's standard streams and waits until its
# stdin (our pipe) is closed, so it outlives the child that started it.
_GRANDCHILD_PARENT = dedent(
    """\
    import subprocess, sys
    subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read(); print('grandchild done')"]
    )
    """
)


def _resource_warnings_when_dropped(holder: list[Process]) -> list[str]:
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        holder.clear()  # the last reference to the process
        gc.collect()
    return [str(r.message) for r in records if issubclass(r.category, ResourceWarning)]


async def _read_all(process: Process) -> tuple[bytes, bytes]:
    assert process.stdout is not None
    assert process.stderr is not None
    out = b"".join([chunk async for chunk in process.stdout])
    err = b"".join([chunk async for chunk in process.stderr])
    return out, err


async def test_wait_returns_while_grandchild_holds_stdout() -> None:
    process = await open_process([sys.executable, "-c", _GRANDCHILD_PARENT])
    assert process.stdin is not None
    async with process.stdin:
        with fail_after(10):
            assert await process.wait() == 0

    with fail_after(10, shield=True):
        out, err = await _read_all(process)

    assert out == b"grandchild done\n"
    assert err == b""
    holder = [process]
    del process
    assert _resource_warnings_when_dropped(holder) == []


async def test_pipes_read_to_end_then_dropped_leave_nothing_open() -> None:
    process = await open_process([sys.executable, "-c", "print('hi')"])
    assert process.stdin is not None
    await process.stdin.aclose()
    with fail_after(10):
        assert await _read_all(process) == (b"hi\n", b"")
        assert await process.wait() == 0

    holder = [process]
    del process
    assert _resource_warnings_when_dropped(holder) == []


async def test_stream_after_end_keeps_raising_end_of_stream_until_closed() -> None:
    async with await open_process([sys.executable, "-c", "print('hi')"]) as process:
        assert process.stdout is not None
        with fail_after(10):
            assert await _read_all(process) == (b"hi\n", b"")
        for _ in range(2):
            with pytest.raises(EndOfStream):
                await process.stdout.receive()

        await process.stdout.aclose()
        with pytest.raises(ClosedResourceError):
            await process.stdout.receive()
