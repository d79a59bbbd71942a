"""Asynchronous file objects and an async mirror of :class:`pathlib.Path`.

Every call that may touch the disk runs in a worker thread through
:func:`anyio.to_thread.run_sync`; pure path arithmetic stays synchronous.
"""

from __future__ import annotations

import os
import pathlib
import sys
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from functools import partial
from os import PathLike
from typing import (
    IO,
    TYPE_CHECKING,
    Any,
    AnyStr,
    Generic,
    TypeVar,
    overload,
)

from . import to_thread
from ._cancel import CancelScope
from .abc import AsyncResource

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self

if TYPE_CHECKING:
    from _typeshed import (
        OpenBinaryMode,
        OpenTextMode,
        ReadableBuffer,
        WriteableBuffer,
    )

    from ._sync import CapacityLimiter

T = TypeVar("T")

__all__ = ["AsyncFile", "Path", "open_file", "wrap_file"]


class AsyncFile(AsyncResource, Generic[AnyStr]):
    """Wraps a synchronous file object so that its blocking methods are awaitable.

    Each blocking method runs in a worker thread; attributes the wrapper does not
    define (``name``, ``mode``, ``closed``, ...) are read from the wrapped object.
    Iterating with ``async for`` yields the file's lines.

    :param fp: the synchronous file object to wrap
    :param limiter: capacity limiter for the worker threads (default: the
        default thread limiter)
    """

    def __init__(
        self, fp: IO[AnyStr], *, limiter: CapacityLimiter | None = None
    ) -> None:
        self._fp: Any = fp
        self._limiter = limiter

    def __getattr__(self, name: str) -> object:
        if name == "_fp":  # not set yet (copy, unpickling): avoid recursing
            raise AttributeError(name)

        return getattr(self._fp, name)

    @property
    def wrapped(self) -> IO[AnyStr]:
        """The synchronous file object this wrapper delegates to."""
        return self._fp  # type: ignore[no-any-return]

    @property
    def limiter(self) -> CapacityLimiter | None:
        """The capacity limiter used for worker threads, if one was given."""
        return self._limiter

    async def _run(self, func: Callable[..., T], *args: object) -> T:
        return await to_thread.run_sync(func, *args, limiter=self._limiter)

    async def __aiter__(self) -> AsyncIterator[AnyStr]:
        while True:
            line = await self.readline()
            if not line:
                return

            yield line

    async def aclose(self) -> None:
        # Closing must happen even in a cancelled scope, or the descriptor leaks.
        with CancelScope(shield=True):
            await self._run(self._fp.close)

    async def read(self, size: int = -1) -> AnyStr:
        return await self._run(self._fp.read, size)

    async def read1(self: AsyncFile[bytes], size: int = -1) -> bytes:
        return await self._run(self._fp.read1, size)

    async def readline(self) -> AnyStr:
        return await self._run(self._fp.readline)

    async def readlines(self) -> list[AnyStr]:
        return await self._run(self._fp.readlines)

    async def readinto(self: AsyncFile[bytes], b: WriteableBuffer) -> int:
        return await self._run(self._fp.readinto, b)

    async def readinto1(self: AsyncFile[bytes], b: WriteableBuffer) -> int:
        return await self._run(self._fp.readinto1, b)

    @overload
    async def write(self: AsyncFile[bytes], b: ReadableBuffer) -> int: ...

    @overload
    async def write(self: AsyncFile[str], b: str) -> int: ...

    async def write(self, b: ReadableBuffer | str) -> int:
        return await self._run(self._fp.write, b)

    @overload
    async def writelines(
        self: AsyncFile[bytes], lines: Iterable[ReadableBuffer]
    ) -> None: ...

    @overload
    async def writelines(self: AsyncFile[str], lines: Iterable[str]) -> None: ...

    async def writelines(self, lines: Iterable[ReadableBuffer] | Iterable[str]) -> None:
        return await self._run(self._fp.writelines, lines)

    async def truncate(self, size: int | None = None) -> int:
        return await self._run(self._fp.truncate, size)

    async def seek(self, offset: int, whence: int | None = os.SEEK_SET) -> int:
        return await self._run(self._fp.seek, offset, whence)

    async def tell(self) -> int:
        return await self._run(self._fp.tell)

    async def flush(self) -> None:
        return await self._run(self._fp.flush)


@overload
async def open_file(
    file: str | PathLike[str] | int,
    mode: OpenBinaryMode,
    buffering: int = ...,
    encoding: str | None = ...,
    errors: str | None = ...,
    newline: str | None = ...,
    closefd: bool = ...,
    opener: Callable[[str, int], int] | None = ...,
    *,
    limiter: CapacityLimiter | None = ...,
) -> AsyncFile[bytes]: ...


@overload
async def open_file(
    file: str | PathLike[str] | int,
    mode: OpenTextMode = ...,
    buffering: int = ...,
    encoding: str | None = ...,
    errors: str | None = ...,
    newline: str | None = ...,
    closefd: bool = ...,
    opener: Callable[[str, int], int] | None = ...,
    *,
    limiter: CapacityLimiter | None = ...,
) -> AsyncFile[str]: ...


async def open_file(
    file: str | PathLike[str] | int,
    mode: str = "r",
    buffering: int = -1,
    encoding: str | None = None,
    errors: str | None = None,
    newline: str | None = None,
    closefd: bool = True,
    opener: Callable[[str, int], int] | None = None,
    *,
    limiter: CapacityLimiter | None = None,
) -> AsyncFile[Any]:
    """Open a file in a worker thread and wrap it as an :class:`AsyncFile`.

    The positional parameters are those of the built-in :func:`open`.

    :param limiter: capacity limiter for this file's worker threads
    """
    fp = await to_thread.run_sync(
        partial(
            open, file, mode, buffering, encoding, errors, newline, closefd, opener
        ),
        limiter=limiter,
    )
    return AsyncFile(fp, limiter=limiter)


def wrap_file(
    file: IO[AnyStr], *, limiter: CapacityLimiter | None = None
) -> AsyncFile[AnyStr]:
    """Wrap an already open synchronous file object as an :class:`AsyncFile`.

    :param file: the file object
    :param limiter: capacity limiter for this file's worker threads
    """
    return AsyncFile(file, limiter=limiter)


class _PathIterator(AsyncIterator["Path"]):
    """Pulls paths from a blocking iterator one at a time in a worker thread."""

    __slots__ = ("_iterator", "_wrap", "_limiter")

    def __init__(
        self,
        iterator: Iterator[pathlib.Path],
        wrap: Callable[[pathlib.Path], Path],
        limiter: CapacityLimiter | None,
    ) -> None:
        self._iterator = iterator
        self._wrap = wrap
        self._limiter = limiter

    async def __anext__(self) -> Path:
        item = await to_thread.run_sync(
            next, self._iterator, None, limiter=self._limiter
        )
        if item is None:
            raise StopAsyncIteration

        return self._wrap(item)


def _unwrap(value: Any) -> Any:
    """Turn our Path into pathlib's, so pathlib never calls our async methods."""
    return value._path if isinstance(value, Path) else value


class Path:
    """An asynchronous counterpart of :class:`pathlib.Path`.

    Methods that do disk I/O are coroutine methods run in worker threads; those
    that list paths (:meth:`iterdir`, :meth:`glob`, ...) are async iterators; and
    whatever :mod:`pathlib` would return as a path comes back as this class,
    carrying the same ``limiter``.

    :param args: path segments, as for :class:`pathlib.Path`
    :param limiter: capacity limiter used for this path's worker threads
    """

    __slots__ = ("_path", "_limiter", "__weakref__")

    def __init__(
        self, *args: str | PathLike[str], limiter: CapacityLimiter | None = None
    ) -> None:
        self._path = pathlib.Path(*args)
        self._limiter = limiter

    def _wrap(self, path: str | PathLike[str]) -> Self:
        return type(self)(path, limiter=self._limiter)

    async def _run(self, func: Callable[..., T], *args: object, **kwargs: object) -> T:
        if kwargs:
            return await to_thread.run_sync(
                partial(func, *args, **kwargs), limiter=self._limiter
            )

        return await to_thread.run_sync(func, *args, limiter=self._limiter)

    # -- dunder protocol ---------------------------------------------------

    def __fspath__(self) -> str:
        return self._path.__fspath__()

    def __str__(self) -> str:
        return self._path.__str__()

    if sys.version_info >= (3, 15):

        def __vfspath__(self) -> str:
            return self._path.__vfspath__()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.as_posix()!r})"

    def __bytes__(self) -> bytes:
        return self._path.__bytes__()

    def __hash__(self) -> int:
        return self._path.__hash__()

    def __eq__(self, other: object) -> bool:
        return self._path.__eq__(_unwrap(other))

    def __lt__(self, other: pathlib.PurePath | Path) -> bool:
        return self._path.__lt__(_unwrap(other))

    def __le__(self, other: pathlib.PurePath | Path) -> bool:
        return self._path.__le__(_unwrap(other))

    def __gt__(self, other: pathlib.PurePath | Path) -> bool:
        return self._path.__gt__(_unwrap(other))

    def __ge__(self, other: pathlib.PurePath | Path) -> bool:
        return self._path.__ge__(_unwrap(other))

    def __truediv__(self, other: str | PathLike[str]) -> Self:
        return self._wrap(self._path / other)

    def __rtruediv__(self, other: str | PathLike[str]) -> Self:
        return type(self)(other, self._path, limiter=self._limiter)

    # -- pure properties ---------------------------------------------------

    @property
    def limiter(self) -> CapacityLimiter | None:
        """The capacity limiter for this path's worker threads, if one was given."""
        return self._limiter

    @property
    def parts(self) -> tuple[str, ...]:
        return self._path.parts

    @property
    def drive(self) -> str:
        return self._path.drive

    @property
    def root(self) -> str:
        return self._path.root

    @property
    def anchor(self) -> str:
        return self._path.anchor

    @property
    def parents(self) -> Sequence[Self]:
        return tuple(self._wrap(parent) for parent in self._path.parents)

    @property
    def parent(self) -> Self:
        return self._wrap(self._path.parent)

    @property
    def name(self) -> str:
        return self._path.name

    @property
    def suffix(self) -> str:
        return self._path.suffix

    @property
    def suffixes(self) -> list[str]:
        return self._path.suffixes

    @property
    def stem(self) -> str:
        return self._path.stem

    if sys.version_info >= (3, 13):

        @property
        def parser(self) -> Any:
            return self._path.parser

    if sys.version_info >= (3, 14):

        @property
        def info(self) -> Any:
            return self._path.info

    # -- pure methods ------------------------------------------------------

    def as_posix(self) -> str:
        return self._path.as_posix()

    def as_uri(self) -> str:
        return self._path.as_uri()

    def is_absolute(self) -> bool:
        return self._path.is_absolute()

    if sys.version_info < (3, 15):

        def is_reserved(self) -> bool:
            return self._path.is_reserved()

    def joinpath(self, *args: str | PathLike[str]) -> Self:
        return self._wrap(self._path.joinpath(*args))

    def with_segments(self, *pathsegments: str | PathLike[str]) -> Self:
        return type(self)(*pathsegments, limiter=self._limiter)

    def with_name(self, name: str) -> Self:
        return self._wrap(self._path.with_name(name))

    def with_stem(self, stem: str) -> Self:
        # pathlib only started rejecting this in 3.12; reject it everywhere.
        if not stem and self.suffix:
            raise ValueError(f"{self!r} has a non-empty suffix")

        return self._wrap(self._path.with_stem(stem))

    def with_suffix(self, suffix: str) -> Self:
        return self._wrap(self._path.with_suffix(suffix))

    if sys.version_info >= (3, 12):

        def is_relative_to(
            self, other: str | PathLike[str], /, *_deprecated: str | PathLike[str]
        ) -> bool:
            return self._path.is_relative_to(_unwrap(other), *_deprecated)

        def relative_to(
            self,
            other: str | PathLike[str],
            /,
            *_deprecated: str | PathLike[str],
            walk_up: bool = False,
        ) -> Self:
            return self._wrap(
                self._path.relative_to(_unwrap(other), *_deprecated, walk_up=walk_up)
            )

        def match(
            self, path_pattern: str, *, case_sensitive: bool | None = None
        ) -> bool:
            return self._path.match(path_pattern, case_sensitive=case_sensitive)

    else:

        def is_relative_to(self, other: str | PathLike[str]) -> bool:
            return self._path.is_relative_to(_unwrap(other))

        def relative_to(self, *other: str | PathLike[str]) -> Self:
            return self._wrap(self._path.relative_to(*map(_unwrap, other)))

        def match(self, path_pattern: str) -> bool:
            return self._path.match(path_pattern)

    if sys.version_info >= (3, 13):

        def full_match(
            self, path_pattern: str, *, case_sensitive: bool | None = None
        ) -> bool:
            return self._path.full_match(path_pattern, case_sensitive=case_sensitive)

        @classmethod
        def from_uri(cls, uri: str, *, limiter: CapacityLimiter | None = None) -> Self:
            return cls(pathlib.Path.from_uri(uri), limiter=limiter)

    # -- constructors that ask the OS --------------------------------------

    @classmethod
    async def cwd(cls, *, limiter: CapacityLimiter | None = None) -> Self:
        path = await to_thread.run_sync(pathlib.Path.cwd, limiter=limiter)
        return cls(path, limiter=limiter)

    @classmethod
    async def home(cls, *, limiter: CapacityLimiter | None = None) -> Self:
        path = await to_thread.run_sync(pathlib.Path.home, limiter=limiter)
        return cls(path, limiter=limiter)

    # -- queries -----------------------------------------------------------

    async def absolute(self) -> Self:
        path = self._path
        if path.is_absolute():
            return self

        return self._wrap(await self._run(path.absolute))

    async def expanduser(self) -> Self:
        return self._wrap(await self._run(self._path.expanduser))

    async def resolve(self, strict: bool = False) -> Self:
        return self._wrap(await self._run(self._path.resolve, strict))

    async def readlink(self) -> Self:
        return self._wrap(await self._run(os.readlink, self._path))

    async def stat(self, *, follow_symlinks: bool = True) -> os.stat_result:
        return await self._run(os.stat, self._path, follow_symlinks=follow_symlinks)

    async def lstat(self) -> os.stat_result:
        return await self._run(os.lstat, self._path)

    async def samefile(self, other_path: str | PathLike[str]) -> bool:
        return await self._run(self._path.samefile, _unwrap(other_path))

    if sys.version_info >= (3, 12):

        async def exists(self, *, follow_symlinks: bool = True) -> bool:
            return await self._run(self._path.exists, follow_symlinks=follow_symlinks)

    else:

        async def exists(self) -> bool:
            return await self._run(self._path.exists)

    if sys.version_info >= (3, 13):

        async def is_dir(self, *, follow_symlinks: bool = True) -> bool:
            return await self._run(self._path.is_dir, follow_symlinks=follow_symlinks)

        async def is_file(self, *, follow_symlinks: bool = True) -> bool:
            return await self._run(self._path.is_file, follow_symlinks=follow_symlinks)

        async def owner(self, *, follow_symlinks: bool = True) -> str:
            return await self._run(self._path.owner, follow_symlinks=follow_symlinks)

        async def group(self, *, follow_symlinks: bool = True) -> str:
            return await self._run(self._path.group, follow_symlinks=follow_symlinks)

    else:

        async def is_dir(self) -> bool:
            return await self._run(self._path.is_dir)

        async def is_file(self) -> bool:
            return await self._run(self._path.is_file)

        async def owner(self) -> str:
            return await self._run(self._path.owner)

        async def group(self) -> str:
            return await self._run(self._path.group)

    if sys.version_info >= (3, 12):

        async def is_junction(self) -> bool:
            return await self._run(self._path.is_junction)

    async def is_block_device(self) -> bool:
        return await self._run(self._path.is_block_device)

    async def is_char_device(self) -> bool:
        return await self._run(self._path.is_char_device)

    async def is_fifo(self) -> bool:
        return await self._run(self._path.is_fifo)

    async def is_mount(self) -> bool:
        return await self._run(self._path.is_mount)

    async def is_socket(self) -> bool:
        return await self._run(self._path.is_socket)

    async def is_symlink(self) -> bool:
        return await self._run(self._path.is_symlink)

    # -- directory listing -------------------------------------------------

    async def iterdir(self) -> AsyncIterator[Self]:
        # Newer Pythons list the directory when iterdir() is called, not lazily.
        listing = await self._run(self._path.iterdir)
        entries = _PathIterator(listing, self._wrap, self._limiter)
        async for entry in entries:
            yield entry  # type: ignore[misc]

    if sys.version_info >= (3, 13):

        def glob(
            self,
            pattern: str,
            *,
            case_sensitive: bool | None = None,
            recurse_symlinks: bool = False,
        ) -> AsyncIterator[Self]:
            found = self._path.glob(
                pattern,
                case_sensitive=case_sensitive,
                recurse_symlinks=recurse_symlinks,
            )
            return _PathIterator(found, self._wrap, self._limiter)  # type: ignore[return-value]

        def rglob(
            self,
            pattern: str,
            *,
            case_sensitive: bool | None = None,
            recurse_symlinks: bool = False,
        ) -> AsyncIterator[Self]:
            found = self._path.rglob(
                pattern,
                case_sensitive=case_sensitive,
                recurse_symlinks=recurse_symlinks,
            )
            return _PathIterator(found, self._wrap, self._limiter)  # type: ignore[return-value]

    elif sys.version_info >= (3, 12):

        def glob(
            self, pattern: str, *, case_sensitive: bool | None = None
        ) -> AsyncIterator[Self]:
            found = self._path.glob(pattern, case_sensitive=case_sensitive)
            return _PathIterator(found, self._wrap, self._limiter)  # type: ignore[return-value]

        def rglob(
            self, pattern: str, *, case_sensitive: bool | None = None
        ) -> AsyncIterator[Self]:
            found = self._path.rglob(pattern, case_sensitive=case_sensitive)
            return _PathIterator(found, self._wrap, self._limiter)  # type: ignore[return-value]

    else:

        def glob(self, pattern: str) -> AsyncIterator[Self]:
            found = self._path.glob(pattern)
            return _PathIterator(found, self._wrap, self._limiter)  # type: ignore[return-value]

        def rglob(self, pattern: str) -> AsyncIterator[Self]:
            found = self._path.rglob(pattern)
            return _PathIterator(found, self._wrap, self._limiter)  # type: ignore[return-value]

    if sys.version_info >= (3, 12):

        async def walk(
            self,
            top_down: bool = True,
            on_error: Callable[[OSError], object] | None = None,
            follow_symlinks: bool = False,
        ) -> AsyncIterator[tuple[Self, list[str], list[str]]]:
            walker = self._path.walk(top_down, on_error, follow_symlinks)
            while True:
                step = await self._run(next, walker, None)
                if step is None:
                    return

                root, dirs, files = step
                # The lists are pathlib's own, so pruning ``dirs`` still works.
                yield self._wrap(root), dirs, files

    # -- mutations ---------------------------------------------------------

    async def chmod(self, mode: int, *, follow_symlinks: bool = True) -> None:
        return await self._run(
            os.chmod, self._path, mode, follow_symlinks=follow_symlinks
        )

    async def lchmod(self, mode: int) -> None:
        return await self._run(self._path.lchmod, mode)

    async def mkdir(
        self, mode: int = 0o777, parents: bool = False, exist_ok: bool = False
    ) -> None:
        return await self._run(self._path.mkdir, mode, parents, exist_ok)

    async def rmdir(self) -> None:
        return await self._run(self._path.rmdir)

    async def touch(self, mode: int = 0o666, exist_ok: bool = True) -> None:
        return await self._run(self._path.touch, mode, exist_ok)

    async def unlink(self, missing_ok: bool = False) -> None:
        return await self._run(self._path.unlink, missing_ok)

    async def rename(self, target: str | pathlib.PurePath | Path) -> Self:
        return self._wrap(await self._run(self._path.rename, _unwrap(target)))

    async def replace(self, target: str | pathlib.PurePath | Path) -> Self:
        return self._wrap(await self._run(self._path.replace, _unwrap(target)))

    async def symlink_to(
        self,
        target: str | bytes | PathLike[str] | PathLike[bytes],
        target_is_directory: bool = False,
    ) -> None:
        return await self._run(
            self._path.symlink_to, _unwrap(target), target_is_directory
        )

    async def hardlink_to(
        self, target: str | bytes | PathLike[str] | PathLike[bytes]
    ) -> None:
        return await self._run(self._path.hardlink_to, _unwrap(target))

    if sys.version_info >= (3, 14):

        async def copy(self, target: str | PathLike[str], **kwargs: Any) -> Self:
            return self._wrap(
                await self._run(self._path.copy, _unwrap(target), **kwargs)
            )

        async def copy_into(
            self, target_dir: str | PathLike[str], **kwargs: Any
        ) -> Self:
            return self._wrap(
                await self._run(self._path.copy_into, _unwrap(target_dir), **kwargs)
            )

        async def move(self, target: str | PathLike[str]) -> Self:
            return self._wrap(await self._run(self._path.move, _unwrap(target)))

        async def move_into(self, target_dir: str | PathLike[str]) -> Self:
            return self._wrap(
                await self._run(self._path.move_into, _unwrap(target_dir))
            )

    # -- contents ----------------------------------------------------------

    @overload
    async def open(
        self,
        mode: OpenBinaryMode,
        buffering: int = ...,
        encoding: str | None = ...,
        errors: str | None = ...,
        newline: str | None = ...,
    ) -> AsyncFile[bytes]: ...

    @overload
    async def open(
        self,
        mode: OpenTextMode = ...,
        buffering: int = ...,
        encoding: str | None = ...,
        errors: str | None = ...,
        newline: str | None = ...,
    ) -> AsyncFile[str]: ...

    async def open(
        self,
        mode: str = "r",
        buffering: int = -1,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> AsyncFile[Any]:
        fp = await self._run(
            self._path.open, mode, buffering, encoding, errors, newline
        )
        return AsyncFile(fp, limiter=self._limiter)

    async def read_bytes(self) -> bytes:
        return await self._run(self._path.read_bytes)

    if sys.version_info >= (3, 13):

        async def read_text(
            self,
            encoding: str | None = None,
            errors: str | None = None,
            newline: str | None = None,
        ) -> str:
            return await self._run(self._path.read_text, encoding, errors, newline)

    else:

        async def read_text(
            self, encoding: str | None = None, errors: str | None = None
        ) -> str:
            return await self._run(self._path.read_text, encoding, errors)

    async def write_bytes(self, data: ReadableBuffer) -> int:
        return await self._run(self._path.write_bytes, data)

    async def write_text(
        self,
        data: str,
        encoding: str | None = None,
        errors: str | None = None,
        newline: str | None = None,
    ) -> int:
        return await self._run(self._path.write_text, data, encoding, errors, newline)
