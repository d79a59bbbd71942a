"""Byte streams backed by files; the blocking file I/O runs in worker threads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from io import SEEK_SET, UnsupportedOperation
from os import PathLike
from pathlib import Path
from typing import IO, Any

from .. import to_thread
from .._exceptions import BrokenResourceError, ClosedResourceError, EndOfStream
from .._typedattr import TypedAttributeSet, typed_attribute
from ..abc import ByteReceiveStream, ByteSendStream
from ..lowlevel import checkpoint_if_cancelled


class FileStreamAttribute(TypedAttributeSet):
    """Typed attributes of file streams."""

    #: the file object
    file: IO[bytes] = typed_attribute()
    #: the path of the file (only if the file object has a path name)
    path: Path = typed_attribute()
    #: the file descriptor (only if the file object has one)
    fileno: int = typed_attribute()


class _BaseFileStream:
    def __init__(self, file: IO[bytes]):
        self._file = file

    async def aclose(self) -> None:
        # A cancelled close must still close the file: do it right here, in the
        # event loop thread, then let the cancellation propagate.
        try:
            await checkpoint_if_cancelled()
        except BaseException:
            self._file.close()
            raise

        await to_thread.run_sync(self._file.close)

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        attributes: dict[Any, Callable[[], Any]] = {
            FileStreamAttribute.file: lambda: self._file,
        }
        name = getattr(self._file, "name", None)
        if isinstance(name, str):
            path = Path(name)
            attributes[FileStreamAttribute.path] = lambda: path

        try:
            fileno = self._file.fileno()
        except (UnsupportedOperation, OSError, ValueError):
            pass
        else:
            attributes[FileStreamAttribute.fileno] = lambda: fileno

        return attributes


class FileReadStream(_BaseFileStream, ByteReceiveStream):
    """A byte stream that reads a file.

    Offers the attributes of :class:`FileStreamAttribute`.

    :param file: a file object opened for reading in binary mode
    """

    @classmethod
    async def from_path(cls, path: str | PathLike[str]) -> FileReadStream:
        """Open the file at `path` for reading and return a stream for it.

        :param path: the path of the file
        """
        file = await to_thread.run_sync(Path(path).open, "rb")
        return cls(file)

    async def receive(self, max_bytes: int = 65536) -> bytes:
        if max_bytes < 1:
            raise ValueError("max_bytes must be a positive integer")

        try:
            data = await to_thread.run_sync(self._file.read, max_bytes)
        except ValueError:
            # Reading a closed file raises ValueError.
            raise ClosedResourceError from None
        except OSError as exc:
            raise BrokenResourceError from exc

        if data:
            return data

        raise EndOfStream

    async def seek(self, position: int, whence: int = SEEK_SET) -> int:
        """Move the file position, as :meth:`io.IOBase.seek` does.

        :param position: the new position, relative to `whence`
        :param whence: what `position` is relative to (``SEEK_SET``, ``SEEK_CUR``
            or ``SEEK_END``)
        :return: the new absolute position
        """
        return await to_thread.run_sync(self._file.seek, position, whence)

    async def tell(self) -> int:
        """Return the current file position."""
        return await to_thread.run_sync(self._file.tell)


class FileWriteStream(_BaseFileStream, ByteSendStream):
    """A byte stream that writes to a file.

    Offers the attributes of :class:`FileStreamAttribute`.

    :param file: a file object opened for writing in binary mode
    """

    @classmethod
    async def from_path(
        cls, path: str | PathLike[str], append: bool = False
    ) -> FileWriteStream:
        """Open the file at `path` for writing and return a stream for it.

        :param path: the path of the file
        :param append: add to the end of the file instead of replacing its
            contents
        """
        mode = "ab" if append else "wb"
        file = await to_thread.run_sync(Path(path).open, mode)
        return cls(file)

    async def send(self, item: bytes) -> None:
        try:
            await to_thread.run_sync(self._file.write, item)
        except ValueError:
            # A closed file (or one not open for writing) raises ValueError.
            raise ClosedResourceError from None
        except OSError as exc:
            raise BrokenResourceError from exc


__all__ = (
    "FileReadStream",
    "FileStreamAttribute",
    "FileWriteStream",
)
