"""FileReadStream, FileWriteStream and FileStreamAttribute."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from anyio import (
    CancelScope,
    ClosedResourceError,
    EndOfStream,
    TypedAttributeLookupError,
    get_cancelled_exc_class,
)
from anyio.streams.file import FileReadStream, FileStreamAttribute, FileWriteStream

pytestmark = pytest.mark.anyio


@pytest.fixture
def data_file(tmp_path: Path) -> Path:
    path = tmp_path / "data.bin"
    path.write_bytes(b"0123456789")
    return path


class TestFileReadStream:
    @pytest.mark.parametrize("as_str", [False, True], ids=["path", "str"])
    async def test_from_path(self, data_file: Path, as_str: bool) -> None:
        path = str(data_file) if as_str else data_file
        async with await FileReadStream.from_path(path) as stream:
            assert await stream.receive(4) == b"0123"
            assert await stream.receive() == b"456789"
            with pytest.raises(EndOfStream):
                await stream.receive()

    async def test_iteration(self, data_file: Path) -> None:
        async with await FileReadStream.from_path(data_file) as stream:
            chunks = [chunk async for chunk in stream]

        assert b"".join(chunks) == b"0123456789"

    async def test_wrap_open_file(self, data_file: Path) -> None:
        with data_file.open("rb") as file:
            async with FileReadStream(file) as stream:
                assert await stream.receive(3) == b"012"

            assert file.closed

    async def test_missing_file(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError):
            await FileReadStream.from_path(tmp_path / "nope")

    @pytest.mark.parametrize("max_bytes", [0, -1])
    async def test_invalid_max_bytes(self, data_file: Path, max_bytes: int) -> None:
        async with await FileReadStream.from_path(data_file) as stream:
            with pytest.raises(ValueError, match="max_bytes must be a positive"):
                await stream.receive(max_bytes)

    async def test_seek_tell(self, data_file: Path) -> None:
        async with await FileReadStream.from_path(data_file) as stream:
            assert await stream.seek(7) == 7
            assert await stream.tell() == 7
            assert await stream.receive() == b"789"
            assert await stream.seek(-4, io.SEEK_END) == 6
            assert await stream.receive(1) == b"6"
            assert await stream.seek(1, io.SEEK_CUR) == 8

    async def test_receive_after_close(self, data_file: Path) -> None:
        stream = await FileReadStream.from_path(data_file)
        await stream.aclose()
        with pytest.raises(ClosedResourceError):
            await stream.receive()

    async def test_close_when_cancelled(self, data_file: Path) -> None:
        stream = await FileReadStream.from_path(data_file)
        file = stream.extra(FileStreamAttribute.file)
        with CancelScope() as scope:
            scope.cancel()
            with pytest.raises(get_cancelled_exc_class()):
                await stream.aclose()

        assert file.closed

    async def test_attributes(self, data_file: Path) -> None:
        async with await FileReadStream.from_path(data_file) as stream:
            file = stream.extra(FileStreamAttribute.file)
            assert stream.extra(FileStreamAttribute.path) == data_file
            assert stream.extra(FileStreamAttribute.fileno) == file.fileno()

    async def test_attributes_of_memory_file(self) -> None:
        buffer = io.BytesIO(b"abc")
        stream = FileReadStream(buffer)
        assert stream.extra(FileStreamAttribute.file) is buffer
        # No name and no descriptor: those attributes are absent.
        with pytest.raises(TypedAttributeLookupError):
            stream.extra(FileStreamAttribute.path)
        with pytest.raises(TypedAttributeLookupError):
            stream.extra(FileStreamAttribute.fileno)

        assert await stream.receive() == b"abc"


class TestFileWriteStream:
    async def test_write(self, tmp_path: Path) -> None:
        path = tmp_path / "out.bin"
        async with await FileWriteStream.from_path(path) as stream:
            await stream.send(b"abc")
            await stream.send(b"def")

        assert path.read_bytes() == b"abcdef"

    async def test_replace_and_append(self, tmp_path: Path) -> None:
        path = tmp_path / "out.bin"
        path.write_bytes(b"old")
        async with await FileWriteStream.from_path(str(path)) as stream:
            await stream.send(b"new")

        assert path.read_bytes() == b"new"
        async with await FileWriteStream.from_path(path, append=True) as stream:
            await stream.send(b"+more")

        assert path.read_bytes() == b"new+more"

    async def test_send_after_close(self, tmp_path: Path) -> None:
        stream = await FileWriteStream.from_path(tmp_path / "out.bin")
        await stream.aclose()
        with pytest.raises(ClosedResourceError):
            await stream.send(b"late")

    async def test_send_to_read_only_file(self, data_file: Path) -> None:
        with data_file.open("rb") as file:
            with pytest.raises(ClosedResourceError):
                await FileWriteStream(file).send(b"x")

    async def test_close_when_cancelled(self, tmp_path: Path) -> None:
        stream = await FileWriteStream.from_path(tmp_path / "out.bin")
        file = stream.extra(FileStreamAttribute.file)
        with CancelScope() as scope:
            with pytest.raises(get_cancelled_exc_class()):
                async with stream:
                    scope.cancel()

        assert file.closed

    async def test_attributes(self, tmp_path: Path) -> None:
        path = tmp_path / "out.bin"
        async with await FileWriteStream.from_path(path) as stream:
            assert stream.extra(FileStreamAttribute.path) == path
            fileno = stream.extra(FileStreamAttribute.fileno)
            assert stream.extra(FileStreamAttribute.file).fileno() == fileno
