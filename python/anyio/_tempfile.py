"""Async wrappers around :mod:`tempfile`.

Creation and removal run in worker threads. Both are done inside shielded
scopes: a cancellation that lands while the worker thread is busy would
otherwise throw away a file or directory that already exists on disk.
"""

from __future__ import annotations

import io
import sys
import tempfile
from collections.abc import Callable, Iterable
from functools import partial
from types import TracebackType
from typing import TYPE_CHECKING, Any, AnyStr, Generic, TypeVar, cast, overload

from . import to_thread
from ._cancel import CancelScope
from ._fileio import AsyncFile
from .lowlevel import checkpoint, checkpoint_if_cancelled

if TYPE_CHECKING:
    from _typeshed import OpenBinaryMode, OpenTextMode, ReadableBuffer, WriteableBuffer

T = TypeVar("T")

__all__ = [
    "NamedTemporaryFile",
    "SpooledTemporaryFile",
    "TemporaryDirectory",
    "TemporaryFile",
    "gettempdir",
    "gettempdirb",
    "mkdtemp",
    "mkstemp",
]


async def _create(factory: Callable[[], T]) -> T:
    """Make something on disk in a worker thread.

    A cancellation already pending prevents the creation; one that arrives
    while the thread works is left for the next checkpoint (typically in the
    ``async with`` block, whose exit then removes what was made).
    """
    await checkpoint_if_cancelled()
    with CancelScope(shield=True):
        created = await to_thread.run_sync(factory)

    return created


class _TempFileContext(Generic[AnyStr]):
    """Opens ``_factory(**_params)`` in a worker thread on entry and closes the
    file on exit (shared by TemporaryFile and NamedTemporaryFile)."""

    _factory: Callable[..., Any]
    _params: dict[str, Any]
    _async_file: AsyncFile[AnyStr]

    async def __aenter__(self) -> AsyncFile[AnyStr]:
        fp: Any = await _create(partial(type(self)._factory, **self._params))
        self._async_file = AsyncFile(fp)
        return self._async_file

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._async_file.aclose()


class TemporaryFile(_TempFileContext[AnyStr]):
    """Async context manager for :func:`tempfile.TemporaryFile`.

    Entering it yields an :class:`AsyncFile`; leaving it closes (and so removes)
    the file. The parameters are those of :func:`tempfile.TemporaryFile`.
    """

    _factory = tempfile.TemporaryFile

    @overload
    def __init__(
        self: TemporaryFile[bytes],
        mode: OpenBinaryMode = ...,
        buffering: int = ...,
        encoding: str | None = ...,
        newline: str | None = ...,
        suffix: str | None = ...,
        prefix: str | None = ...,
        dir: str | None = ...,
        *,
        errors: str | None = ...,
    ) -> None: ...
    @overload
    def __init__(
        self: TemporaryFile[str],
        mode: OpenTextMode,
        buffering: int = ...,
        encoding: str | None = ...,
        newline: str | None = ...,
        suffix: str | None = ...,
        prefix: str | None = ...,
        dir: str | None = ...,
        *,
        errors: str | None = ...,
    ) -> None: ...
    def __init__(
        self,
        mode: OpenTextMode | OpenBinaryMode = "w+b",
        buffering: int = -1,
        encoding: str | None = None,
        newline: str | None = None,
        suffix: str | None = None,
        prefix: str | None = None,
        dir: str | None = None,
        *,
        errors: str | None = None,
    ) -> None:
        self._params: dict[str, Any] = {
            "mode": mode,
            "buffering": buffering,
            "encoding": encoding,
            "newline": newline,
            "suffix": suffix,
            "prefix": prefix,
            "dir": dir,
            "errors": errors,
        }


class NamedTemporaryFile(_TempFileContext[AnyStr]):
    """Async context manager for :func:`tempfile.NamedTemporaryFile`.

    Entering it yields an :class:`AsyncFile` whose ``name`` is the file's path.
    The parameters are those of :func:`tempfile.NamedTemporaryFile`;
    ``delete_on_close`` only has an effect on Python 3.12 and later.
    """

    _factory = tempfile.NamedTemporaryFile

    @overload
    def __init__(
        self: NamedTemporaryFile[bytes],
        mode: OpenBinaryMode = ...,
        buffering: int = ...,
        encoding: str | None = ...,
        newline: str | None = ...,
        suffix: str | None = ...,
        prefix: str | None = ...,
        dir: str | None = ...,
        delete: bool = ...,
        *,
        errors: str | None = ...,
        delete_on_close: bool = ...,
    ) -> None: ...
    @overload
    def __init__(
        self: NamedTemporaryFile[str],
        mode: OpenTextMode,
        buffering: int = ...,
        encoding: str | None = ...,
        newline: str | None = ...,
        suffix: str | None = ...,
        prefix: str | None = ...,
        dir: str | None = ...,
        delete: bool = ...,
        *,
        errors: str | None = ...,
        delete_on_close: bool = ...,
    ) -> None: ...
    def __init__(
        self,
        mode: OpenBinaryMode | OpenTextMode = "w+b",
        buffering: int = -1,
        encoding: str | None = None,
        newline: str | None = None,
        suffix: str | None = None,
        prefix: str | None = None,
        dir: str | None = None,
        delete: bool = True,
        *,
        errors: str | None = None,
        delete_on_close: bool = True,
    ) -> None:
        self._params: dict[str, Any] = {
            "mode": mode,
            "buffering": buffering,
            "encoding": encoding,
            "newline": newline,
            "suffix": suffix,
            "prefix": prefix,
            "dir": dir,
            "delete": delete,
            "errors": errors,
        }
        if sys.version_info >= (3, 12):
            self._params["delete_on_close"] = delete_on_close


class SpooledTemporaryFile(AsyncFile[AnyStr]):
    """A temporary file kept in memory until it grows past ``max_size``.

    While the data is in memory, operations complete without a worker thread
    (each is still a checkpoint). Once a write leaves the position beyond
    ``max_size`` bytes, or :meth:`rollover` is called, the data moves to a
    :func:`tempfile.TemporaryFile` and operations go through worker threads.
    A ``max_size`` of zero (the default) never rolls over by itself.
    """

    _rolled: bool = False

    @overload
    def __init__(
        self: SpooledTemporaryFile[bytes],
        max_size: int = ...,
        mode: OpenBinaryMode = ...,
        buffering: int = ...,
        encoding: str | None = ...,
        newline: str | None = ...,
        suffix: str | None = ...,
        prefix: str | None = ...,
        dir: str | None = ...,
        *,
        errors: str | None = ...,
    ) -> None: ...
    @overload
    def __init__(
        self: SpooledTemporaryFile[str],
        max_size: int = ...,
        mode: OpenTextMode = ...,
        buffering: int = ...,
        encoding: str | None = ...,
        newline: str | None = ...,
        suffix: str | None = ...,
        prefix: str | None = ...,
        dir: str | None = ...,
        *,
        errors: str | None = ...,
    ) -> None: ...
    def __init__(
        self,
        max_size: int = 0,
        mode: OpenBinaryMode | OpenTextMode = "w+b",
        buffering: int = -1,
        encoding: str | None = None,
        newline: str | None = None,
        suffix: str | None = None,
        prefix: str | None = None,
        dir: str | None = None,
        *,
        errors: str | None = None,
    ) -> None:
        self._max_size = max_size
        self._params: dict[str, Any] = {
            "mode": mode,
            "buffering": buffering,
            "encoding": encoding,
            "newline": newline,
            "suffix": suffix,
            "prefix": prefix,
            "dir": dir,
            "errors": errors,
        }
        self._text = "b" not in mode
        memory: Any
        if self._text:
            memory = io.TextIOWrapper(
                io.BytesIO(),
                encoding=encoding,
                errors=errors,
                newline=newline,
                write_through=True,
            )
        else:
            memory = io.BytesIO()

        super().__init__(memory)

    @property
    def closed(self) -> bool:
        return bool(self._fp.closed)

    async def rollover(self) -> None:
        """Move the contents to a file on disk, keeping the current position."""
        if self._rolled:
            return

        # A cancellation that is already pending stops it before it starts;
        # once started, it is shielded: stopping half-way would lose the data.
        await checkpoint_if_cancelled()
        with CancelScope(shield=True):
            disk_file = await to_thread.run_sync(
                partial(tempfile.TemporaryFile, **self._params)
            )
            memory = self._fp
            await to_thread.run_sync(self._copy_to_disk, memory, disk_file)
            memory.close()
            self._fp = disk_file
            self._rolled = True

    def _copy_to_disk(self, memory: Any, disk_file: Any) -> None:
        position = memory.tell()
        if self._text:
            # The bytes are already encoded and newline-translated; copy them raw.
            disk_file.buffer.write(memory.buffer.getvalue())
            disk_file.buffer.flush()
        else:
            disk_file.write(memory.getvalue())

        disk_file.seek(position)

    async def _check(self) -> None:
        if self._max_size and self._fp.tell() > self._max_size:
            await self.rollover()

    async def aclose(self) -> None:
        if not self._rolled:
            self._fp.close()
            return

        await super().aclose()

    async def read(self, size: int = -1) -> AnyStr:
        if not self._rolled:
            await checkpoint()
            return self._fp.read(size)  # type: ignore[no-any-return]

        return await super().read(size)  # type: ignore[return-value]

    async def read1(self: SpooledTemporaryFile[bytes], size: int = -1) -> bytes:
        if not self._rolled:
            await checkpoint()
            return self._fp.read1(size)  # type: ignore[no-any-return]

        return await super().read1(size)

    async def readline(self) -> AnyStr:
        if not self._rolled:
            await checkpoint()
            return self._fp.readline()  # type: ignore[no-any-return]

        return await super().readline()  # type: ignore[return-value]

    async def readlines(self) -> list[AnyStr]:
        if not self._rolled:
            await checkpoint()
            return self._fp.readlines()  # type: ignore[no-any-return]

        return await super().readlines()  # type: ignore[return-value]

    async def readinto(self: SpooledTemporaryFile[bytes], b: WriteableBuffer) -> int:
        if not self._rolled:
            await checkpoint()
            return self._fp.readinto(b)  # type: ignore[no-any-return]

        return await super().readinto(b)

    async def readinto1(self: SpooledTemporaryFile[bytes], b: WriteableBuffer) -> int:
        if not self._rolled:
            await checkpoint()
            return self._fp.readinto1(b)  # type: ignore[no-any-return]

        return await super().readinto1(b)

    @overload
    async def write(self: SpooledTemporaryFile[bytes], b: ReadableBuffer) -> int: ...

    @overload
    async def write(self: SpooledTemporaryFile[str], b: str) -> int: ...

    async def write(self, b: ReadableBuffer | str) -> int:
        if not self._rolled:
            await checkpoint()
            written: int = self._fp.write(b)
            await self._check()
            return written

        return await super().write(b)  # type: ignore[misc]

    @overload
    async def writelines(
        self: SpooledTemporaryFile[bytes], lines: Iterable[ReadableBuffer]
    ) -> None: ...

    @overload
    async def writelines(
        self: SpooledTemporaryFile[str], lines: Iterable[str]
    ) -> None: ...

    async def writelines(self, lines: Iterable[str] | Iterable[ReadableBuffer]) -> None:
        if not self._rolled:
            await checkpoint()
            self._fp.writelines(lines)
            await self._check()
            return

        await super().writelines(lines)  # type: ignore[misc]

    async def truncate(self, size: int | None = None) -> int:
        if not self._rolled:
            await checkpoint()
            return self._fp.truncate(size)  # type: ignore[no-any-return]

        return await super().truncate(size)

    async def seek(self, offset: int, whence: int | None = io.SEEK_SET) -> int:
        if not self._rolled:
            await checkpoint()
            return self._fp.seek(offset, whence)  # type: ignore[no-any-return]

        return await super().seek(offset, whence)

    async def tell(self) -> int:
        if not self._rolled:
            await checkpoint()
            return self._fp.tell()  # type: ignore[no-any-return]

        return await super().tell()

    async def flush(self) -> None:
        if not self._rolled:
            await checkpoint()
            self._fp.flush()
            return

        await super().flush()


class TemporaryDirectory(Generic[AnyStr]):
    """Async context manager for :class:`tempfile.TemporaryDirectory`.

    Entering it yields the directory's path (``bytes`` if the arguments were
    bytes); leaving it removes the directory unless ``delete`` is false.
    Removal also happens when the task is being cancelled.
    """

    def __init__(
        self,
        suffix: AnyStr | None = None,
        prefix: AnyStr | None = None,
        dir: AnyStr | None = None,
        *,
        ignore_cleanup_errors: bool = False,
        delete: bool = True,
    ) -> None:
        self._delete = delete
        self._params: dict[str, Any] = {
            "suffix": suffix,
            "prefix": prefix,
            "dir": dir,
            "ignore_cleanup_errors": ignore_cleanup_errors,
        }
        if sys.version_info >= (3, 12):
            self._params["delete"] = delete

        self._tempdir: tempfile.TemporaryDirectory[AnyStr] | None = None

    async def __aenter__(self) -> AnyStr:
        factory = cast(
            "Callable[[], tempfile.TemporaryDirectory[AnyStr]]",
            partial(tempfile.TemporaryDirectory, **self._params),
        )
        tempdir = await _create(factory)
        self._tempdir = tempdir
        if not self._delete and sys.version_info < (3, 12):
            # Before 3.12 the stdlib object removes the directory when garbage
            # collected, whatever ``delete`` says; drop that finalizer.
            finalizer = getattr(tempdir, "_finalizer", None)
            if finalizer is not None:
                finalizer.detach()

        return tempdir.name

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._delete and self._tempdir is not None:
            with CancelScope(shield=True):
                await to_thread.run_sync(self._tempdir.cleanup)

    async def cleanup(self) -> None:
        """Remove the directory now (even in a cancelled task, which then sees
        its cancellation raised afterwards)."""
        if self._tempdir is not None:
            with CancelScope(shield=True):
                await to_thread.run_sync(self._tempdir.cleanup)

        await checkpoint_if_cancelled()


@overload
async def mkstemp(
    suffix: str | None = None,
    prefix: str | None = None,
    dir: str | None = None,
    text: bool = False,
) -> tuple[int, str]: ...


@overload
async def mkstemp(
    suffix: bytes | None = None,
    prefix: bytes | None = None,
    dir: bytes | None = None,
    text: bool = False,
) -> tuple[int, bytes]: ...


async def mkstemp(
    suffix: AnyStr | None = None,
    prefix: AnyStr | None = None,
    dir: AnyStr | None = None,
    text: bool = False,
) -> tuple[int, str | bytes]:
    """Create a temporary file like :func:`tempfile.mkstemp`, in a worker thread.

    :return: an open OS-level file descriptor and the file's absolute path;
        the caller closes and removes it
    """
    return await to_thread.run_sync(tempfile.mkstemp, suffix, prefix, dir, text)


@overload
async def mkdtemp(
    suffix: str | None = None,
    prefix: str | None = None,
    dir: str | None = None,
) -> str: ...


@overload
async def mkdtemp(
    suffix: bytes | None = None,
    prefix: bytes | None = None,
    dir: bytes | None = None,
) -> bytes: ...


async def mkdtemp(
    suffix: AnyStr | None = None,
    prefix: AnyStr | None = None,
    dir: AnyStr | None = None,
) -> str | bytes:
    """Create a temporary directory like :func:`tempfile.mkdtemp`, in a worker
    thread; the caller removes it."""
    return await to_thread.run_sync(tempfile.mkdtemp, suffix, prefix, dir)


async def gettempdir() -> str:
    """The default directory for temporary files, as :func:`tempfile.gettempdir`."""
    return await to_thread.run_sync(tempfile.gettempdir)


async def gettempdirb() -> bytes:
    """The default directory for temporary files, as bytes."""
    return await to_thread.run_sync(tempfile.gettempdirb)
