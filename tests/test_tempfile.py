"""Async temporary files and directories."""

from __future__ import annotations

import os
import pathlib
import tempfile
from typing import Any
from unittest import mock

import pytest

import anyio
from anyio import (
    AsyncFile,
    CancelScope,
    NamedTemporaryFile,
    SpooledTemporaryFile,
    TemporaryDirectory,
    TemporaryFile,
    from_thread,
    get_cancelled_exc_class,
)

pytestmark = pytest.mark.anyio


async def test_temporary_file_round_trip() -> None:
    async with TemporaryFile[str](mode="w+", encoding="utf-8") as fp:
        assert isinstance(fp, AsyncFile)
        await fp.write("första rad\n")
        await fp.seek(0)
        assert await fp.read() == "första rad\n"

    assert fp.closed


async def test_temporary_file_passes_arguments(tmp_path: pathlib.Path) -> None:
    async with TemporaryFile[bytes](dir=str(tmp_path), buffering=0) as fp:
        assert fp.mode == "rb+"
        await fp.write(b"x")
        # The file is anonymous: nothing shows up in its directory.
        assert list(tmp_path.iterdir()) == []


async def test_named_temporary_file_lifecycle(tmp_path: pathlib.Path) -> None:
    async with NamedTemporaryFile[bytes](
        dir=str(tmp_path), prefix="pre-", suffix=".dat"
    ) as fp:
        name = pathlib.Path(str(fp.name))
        assert name.parent == tmp_path
        assert name.name.startswith("pre-") and name.name.endswith(".dat")
        await fp.write(b"content")
        await fp.flush()
        assert name.read_bytes() == b"content"

    assert not name.exists()
    with pytest.raises(ValueError):
        await fp.write(b"too late")


async def test_named_temporary_file_kept_without_delete(tmp_path: pathlib.Path) -> None:
    async with NamedTemporaryFile[str](mode="w", dir=str(tmp_path), delete=False) as fp:
        await fp.write("kept")

    kept = pathlib.Path(str(fp.name))
    assert kept.read_text() == "kept"


async def test_temporary_directory(tmp_path: pathlib.Path) -> None:
    async with TemporaryDirectory(dir=str(tmp_path), prefix="d-") as name:
        assert isinstance(name, str)
        directory = pathlib.Path(name)
        assert directory.is_dir() and directory.name.startswith("d-")
        (directory / "nested").mkdir()
        (directory / "nested" / "file").write_text("x")

    assert not directory.exists()


async def test_temporary_directory_bytes(tmp_path: pathlib.Path) -> None:
    async with TemporaryDirectory(dir=os.fsencode(tmp_path)) as name:
        assert isinstance(name, bytes)
        assert os.path.isdir(name)

    assert not os.path.exists(name)


async def test_temporary_directory_delete_false(tmp_path: pathlib.Path) -> None:
    manager = TemporaryDirectory(dir=str(tmp_path), delete=False)
    async with manager as name:
        pass

    assert os.path.isdir(name)
    del manager
    import gc

    gc.collect()
    assert os.path.isdir(name)


async def test_temporary_directory_removed_when_exit_is_cancelled() -> None:
    with CancelScope() as scope:
        async with TemporaryDirectory() as name:
            scope.cancel()
            await anyio.sleep(1)

    assert scope.cancelled_caught
    assert not os.path.exists(name)


async def test_cleanup_in_cancelled_task_removes_then_raises() -> None:
    manager = TemporaryDirectory()
    async with manager as name:
        with CancelScope() as scope:
            scope.cancel()
            with pytest.raises(get_cancelled_exc_class()):
                await manager.cleanup()

        assert not os.path.exists(name)

    await manager.cleanup()  # a second cleanup is harmless


async def test_cleanup_before_enter_does_nothing() -> None:
    await TemporaryDirectory().cleanup()


async def test_mkstemp_and_mkdtemp(tmp_path: pathlib.Path) -> None:
    fd, path = await anyio.mkstemp(suffix=".s", prefix="p", dir=str(tmp_path))
    try:
        assert isinstance(path, str) and path.endswith(".s")
        os.write(fd, b"abc")
    finally:
        os.close(fd)

    assert pathlib.Path(path).read_bytes() == b"abc"
    fd, bpath = await anyio.mkstemp(prefix=b"b", dir=os.fsencode(tmp_path), text=True)
    os.close(fd)
    assert isinstance(bpath, bytes)
    directory = await anyio.mkdtemp(dir=str(tmp_path))
    assert os.path.isdir(directory)
    bdirectory = await anyio.mkdtemp(suffix=b"x", dir=os.fsencode(tmp_path))
    assert isinstance(bdirectory, bytes) and os.path.isdir(bdirectory)
    with pytest.raises(TypeError):
        await anyio.mkstemp(suffix="a", prefix=b"b")  # type: ignore[call-overload]


async def test_gettempdir() -> None:
    assert await anyio.gettempdir() == tempfile.gettempdir()
    assert await anyio.gettempdirb() == tempfile.gettempdirb()


class TestSpooled:
    async def test_stays_in_memory_until_past_max_size(self) -> None:
        async with SpooledTemporaryFile[bytes](max_size=8) as fp:
            assert await fp.write(b"12345678") == 8
            assert not fp._rolled
            await fp.seek(0)
            await fp.write(b"x")  # position 1: still small enough
            assert not fp._rolled
            await fp.seek(0, os.SEEK_END)
            await fp.write(b"9")
            assert fp._rolled
            await fp.seek(0)
            assert await fp.read() == b"x23456789"

    async def test_zero_max_size_never_rolls_over(self) -> None:
        async with SpooledTemporaryFile[bytes]() as fp:
            await fp.write(b"z" * 100_000)
            await fp.writelines([b"a", b"b"])
            assert not fp._rolled

    async def test_writelines_can_roll_over(self) -> None:
        async with SpooledTemporaryFile[bytes](max_size=4) as fp:
            await fp.writelines([b"ab", b"cd"])
            assert not fp._rolled
            await fp.writelines([b"e"])
            assert fp._rolled

    async def test_explicit_rollover_keeps_content_and_position(self) -> None:
        async with SpooledTemporaryFile[bytes](max_size=100) as fp:
            await fp.write(b"hello world")
            await fp.seek(6)
            await fp.rollover()
            await fp.rollover()  # idempotent
            assert fp._rolled
            assert await fp.tell() == 6
            assert await fp.read() == b"world"
            assert isinstance(fp.fileno(), int)

    async def test_text_mode(self) -> None:
        async with SpooledTemporaryFile[str](
            max_size=5, mode="w+", encoding="utf-8"
        ) as fp:
            await fp.write("åå")  # four bytes encoded
            assert not fp._rolled
            await fp.write("å")
            assert fp._rolled
            await fp.seek(0)
            assert await fp.read() == "ååå"

    async def test_text_mode_newline_survives_rollover(self) -> None:
        async with SpooledTemporaryFile[str](mode="w+", newline="") as fp:
            await fp.write("a\r\nb\n")
            await fp.rollover()
            await fp.seek(0)
            assert await fp.readlines() == ["a\r\n", "b\n"]

    async def test_in_memory_reads(self) -> None:
        async with SpooledTemporaryFile[bytes](max_size=100) as fp:
            await fp.write(b"line1\nline2\n")
            await fp.seek(0)
            assert await fp.readline() == b"line1\n"
            buffer = bytearray(3)
            assert await fp.readinto(buffer) == 3
            assert await fp.readinto1(buffer) == 3
            assert buffer == b"e2\n"
            await fp.seek(0)
            assert [line async for line in fp] == [b"line1\n", b"line2\n"]
            await fp.seek(0)
            assert await fp.read1(2) == b"li"
            assert await fp.truncate(4) == 4
            await fp.flush()
            await fp.seek(0)
            assert await fp.read() == b"line"

    async def test_in_memory_operations_are_checkpoints(self) -> None:
        async with SpooledTemporaryFile[bytes](max_size=100) as fp:
            with CancelScope() as scope:
                scope.cancel()
                await fp.write(b"lost")

            assert scope.cancelled_caught
            assert await fp.tell() == 0

    async def test_wrong_data_type(self) -> None:
        async with SpooledTemporaryFile[bytes]() as fp:
            with pytest.raises(TypeError):
                await fp.write("text")  # type: ignore[arg-type]

    async def test_closed_and_close_in_cancelled_scope(self) -> None:
        fp = SpooledTemporaryFile[bytes](max_size=10)
        assert not fp.closed
        with CancelScope() as scope:
            scope.cancel()
            await fp.aclose()

        assert fp.closed
        with pytest.raises(ValueError):
            await fp.read()

    async def test_rollover_in_cancelled_scope_does_not_start(self) -> None:
        async with SpooledTemporaryFile[bytes]() as fp:
            await fp.write(b"data")
            with CancelScope() as scope:
                scope.cancel()
                await fp.rollover()

            assert scope.cancelled_caught
            assert not fp._rolled

    async def test_rollover_completes_when_cancelled_midway(self) -> None:
        real_factory = tempfile.TemporaryFile

        def factory(**kwargs: Any) -> Any:
            # Runs in the worker thread, while rollover() is under way.
            from_thread.run_sync(scope.cancel)
            return real_factory(**kwargs)

        async with SpooledTemporaryFile[bytes]() as fp:
            await fp.write(b"precious")
            await fp.seek(3)
            with CancelScope() as scope:
                with mock.patch.object(tempfile, "TemporaryFile", factory):
                    await fp.rollover()

            assert fp._rolled
            assert await fp.tell() == 3
            assert await fp.read() == b"cious"


async def test_directory_creation_cancelled_midway_leaves_nothing() -> None:
    real_factory = tempfile.TemporaryDirectory
    created: list[str] = []

    def factory(**kwargs: Any) -> Any:
        directory = real_factory(**kwargs)
        created.append(directory.name)
        from_thread.run_sync(scope.cancel)
        return directory

    with CancelScope() as scope:
        with mock.patch.object(tempfile, "TemporaryDirectory", factory):
            async with TemporaryDirectory() as name:
                # Delivered here, and the directory is removed on the way out.
                await anyio.lowlevel.checkpoint()
                pytest.fail("the checkpoint must raise")

    assert name == created[0]

    assert scope.cancelled_caught
    assert len(created) == 1
    assert not os.path.exists(created[0])


@pytest.mark.parametrize(
    "manager", [TemporaryDirectory, TemporaryFile, NamedTemporaryFile]
)
async def test_entering_in_cancelled_scope_creates_nothing(manager: Any) -> None:
    with CancelScope() as scope:
        scope.cancel()
        async with manager():
            pytest.fail("the block must not run")

    assert scope.cancelled_caught
