"""Async-aware counterparts of parts of :mod:`functools`.

:func:`lru_cache` and :func:`cache` memoize coroutine functions (plain functions
are handed to the standard library); :func:`reduce` folds with an async function
over a sync or async iterable.
"""

from __future__ import annotations

import functools
import sys
from collections import OrderedDict
from collections.abc import (
    AsyncIterable,
    Awaitable,
    Callable,
    Coroutine,
    Hashable,
    Iterable,
)
from typing import (
    Any,
    Generic,
    NamedTuple,
    ParamSpec,
    TypedDict,
    TypeVar,
    cast,
    final,
    overload,
)

from ._sync import Lock
from ._time import current_time
from .lowlevel import checkpoint

T = TypeVar("T")
S = TypeVar("S")
P = ParamSpec("P")

__all__ = (
    "AsyncCacheInfo",
    "AsyncCacheParameters",
    "AsyncLRUCacheWrapper",
    "cache",
    "lru_cache",
    "reduce",
)


class AsyncCacheInfo(NamedTuple):
    """Statistics of an async LRU cache, as returned by ``cache_info()``."""

    hits: int
    misses: int
    maxsize: int | None
    currsize: int
    ttl: int | None


class AsyncCacheParameters(TypedDict):
    """The settings of an async LRU cache, as returned by ``cache_parameters()``."""

    maxsize: int | None
    typed: bool
    always_checkpoint: bool
    ttl: int | None


class _KwargsMark:
    """Separates positional from keyword arguments inside a cache key."""

    __slots__ = ()


_KWARGS_MARK = _KwargsMark()


def _make_key(args: tuple[Any, ...], kwargs: dict[str, Any], typed: bool) -> Hashable:
    key: tuple[Any, ...] = args
    if kwargs:
        key += (_KWARGS_MARK,)
        for item in kwargs.items():
            key += item

    if typed:
        key += tuple(type(arg) for arg in args)
        if kwargs:
            key += tuple(type(value) for value in kwargs.values())

    # Hashing here raises TypeError for unhashable arguments, as functools does.
    hash(key)
    return key


class _Entry:
    """A cached value and the moment it stops being valid (None: never)."""

    __slots__ = ("value", "expires")

    def __init__(self, value: Any, expires: float | None) -> None:
        self.value = value
        self.expires = expires


class _KeyLock:
    """A lock for one cache key plus the number of tasks interested in it."""

    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = Lock()
        self.users = 0


@final
class AsyncLRUCacheWrapper(Generic[P, T]):
    """A coroutine function with a least-recently-used result cache.

    Concurrent calls with the same arguments run the wrapped function once: the
    later callers wait for the first one and then read its result from the
    cache. Calls with different arguments do not wait for each other.
    """

    def __init__(
        self,
        func: Callable[P, Awaitable[T]],
        maxsize: int | None,
        typed: bool,
        always_checkpoint: bool,
        ttl: int | None,
    ) -> None:
        self.__wrapped__ = func
        self._maxsize = maxsize
        self._typed = typed
        self._always_checkpoint = always_checkpoint
        self._ttl = ttl
        self._hits = 0
        self._misses = 0
        self._cache: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._key_locks: dict[Hashable, _KeyLock] = {}
        functools.update_wrapper(self, func)  # type: ignore[arg-type]

    def cache_info(self) -> AsyncCacheInfo:
        return AsyncCacheInfo(
            self._hits, self._misses, self._maxsize, len(self._cache), self._ttl
        )

    def cache_parameters(self) -> AsyncCacheParameters:
        return {
            "maxsize": self._maxsize,
            "typed": self._typed,
            "always_checkpoint": self._always_checkpoint,
            "ttl": self._ttl,
        }

    def cache_clear(self) -> None:
        self._cache.clear()
        self._hits = self._misses = 0

    def _lookup(self, key: Hashable) -> _Entry | None:
        entry = self._cache.get(key)
        if entry is None:
            return None

        if entry.expires is not None and current_time() >= entry.expires:
            del self._cache[key]
            return None

        self._cache.move_to_end(key)
        self._hits += 1
        return entry

    def _store(self, key: Hashable, value: T) -> None:
        expires = None if self._ttl is None else current_time() + self._ttl
        self._cache[key] = _Entry(value, expires)
        if self._maxsize is not None and len(self._cache) > self._maxsize:
            self._cache.popitem(last=False)

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._maxsize == 0:
            self._misses += 1
            return await self.__wrapped__(*args, **kwargs)

        key = _make_key(args, kwargs, self._typed)
        entry = self._lookup(key)
        if entry is not None:
            if self._always_checkpoint:
                await checkpoint()

            return cast(T, entry.value)

        key_lock = self._key_locks.get(key)
        if key_lock is None:
            key_lock = self._key_locks[key] = _KeyLock()

        key_lock.users += 1
        try:
            async with key_lock.lock:
                # Another caller may have filled the entry while this one waited.
                entry = self._lookup(key)
                if entry is not None:
                    return cast(T, entry.value)

                self._misses += 1
                value = await self.__wrapped__(*args, **kwargs)
                self._store(key, value)
                return value
        finally:
            key_lock.users -= 1
            if not key_lock.users:
                del self._key_locks[key]

    def __get__(
        self, instance: object, owner: type | None = None
    ) -> _LRUMethodWrapper[T]:
        return _LRUMethodWrapper(self, instance)


@final
class _LRUMethodWrapper(Generic[T]):
    """An :class:`AsyncLRUCacheWrapper` seen through an instance (a bound method).

    The cache belongs to the function, so it is shared by all instances; the
    instance is part of each key.
    """

    def __init__(self, wrapper: AsyncLRUCacheWrapper[..., T], instance: object) -> None:
        self._wrapper = wrapper
        self._instance = instance
        for attr in (
            "__module__",
            "__name__",
            "__qualname__",
            "__doc__",
            "__wrapped__",
        ):
            try:
                setattr(self, attr, getattr(wrapper, attr))
            except AttributeError:
                pass

    def cache_info(self) -> AsyncCacheInfo:
        return self._wrapper.cache_info()

    def cache_parameters(self) -> AsyncCacheParameters:
        return self._wrapper.cache_parameters()

    def cache_clear(self) -> None:
        self._wrapper.cache_clear()

    async def __call__(self, *args: Any, **kwargs: Any) -> T:
        if self._instance is None:
            return await self._wrapper(*args, **kwargs)

        return await self._wrapper(self._instance, *args, **kwargs)


@final
class _LRUCacheWrapper:
    """What ``lru_cache(...)`` returns when called without a function: a decorator."""

    def __init__(
        self,
        maxsize: int | None,
        typed: bool,
        always_checkpoint: bool,
        ttl: int | None,
    ) -> None:
        self._maxsize = maxsize
        self._typed = typed
        self._always_checkpoint = always_checkpoint
        self._ttl = ttl

    @overload
    def __call__(  # type: ignore[overload-overlap]
        self, func: Callable[P, Coroutine[Any, Any, T]], /
    ) -> AsyncLRUCacheWrapper[P, T]: ...

    @overload
    def __call__(
        self, func: Callable[..., T], /
    ) -> functools._lru_cache_wrapper[T]: ...

    def __call__(
        self, f: Callable[P, Coroutine[Any, Any, T]] | Callable[..., T], /
    ) -> AsyncLRUCacheWrapper[P, T] | functools._lru_cache_wrapper[T]:
        return _decorate(  # type: ignore[no-any-return]
            f, self._maxsize, self._typed, self._always_checkpoint, self._ttl
        )


def _is_coroutine_function(func: object) -> bool:
    while isinstance(func, functools.partial):
        func = func.func

    if sys.version_info >= (3, 12):
        import inspect

        return inspect.iscoroutinefunction(func)

    import asyncio

    return asyncio.iscoroutinefunction(func)


def _decorate(
    func: Callable[..., Any],
    maxsize: int | None,
    typed: bool,
    always_checkpoint: bool,
    ttl: int | None,
) -> Any:
    if not callable(func):
        raise TypeError("the first argument must be callable")

    if not _is_coroutine_function(func):
        return functools.lru_cache(maxsize=maxsize, typed=typed)(func)

    return AsyncLRUCacheWrapper(func, maxsize, typed, always_checkpoint, ttl)


@overload
def cache(  # type: ignore[overload-overlap]
    func: Callable[P, Coroutine[Any, Any, T]], /
) -> AsyncLRUCacheWrapper[P, T]: ...


@overload
def cache(func: Callable[..., T], /) -> functools._lru_cache_wrapper[T]: ...


def cache(
    func: Callable[..., T] | Callable[P, Coroutine[Any, Any, T]], /
) -> AsyncLRUCacheWrapper[P, T] | functools._lru_cache_wrapper[T]:
    """Memoize a function without bounds (``lru_cache(maxsize=None)``).

    A coroutine function gets an :class:`AsyncLRUCacheWrapper`; anything else
    is passed to :func:`functools.cache`.
    """
    if _is_coroutine_function(func):
        return lru_cache(maxsize=None)(func)

    return functools.cache(cast("Callable[..., T]", func))


@overload
def lru_cache(
    *,
    maxsize: int | None = ...,
    typed: bool = ...,
    always_checkpoint: bool = ...,
    ttl: int | None = ...,
) -> _LRUCacheWrapper: ...


@overload
def lru_cache(  # type: ignore[overload-overlap]
    func: Callable[P, Coroutine[Any, Any, T]], /
) -> AsyncLRUCacheWrapper[P, T]: ...


@overload
def lru_cache(func: Callable[..., T], /) -> functools._lru_cache_wrapper[T]: ...


def lru_cache(
    func: Callable[..., Coroutine[Any, Any, T]] | Callable[..., T] | None = None,
    /,
    *,
    maxsize: int | None = 128,
    typed: bool = False,
    always_checkpoint: bool = False,
    ttl: int | None = None,
) -> AsyncLRUCacheWrapper[..., T] | functools._lru_cache_wrapper[T] | _LRUCacheWrapper:
    """A least-recently-used cache for coroutine functions.

    Usable bare (``@lru_cache``) or with arguments (``@lru_cache(maxsize=32)``).
    Plain functions are passed to :func:`functools.lru_cache` (which ignores
    ``always_checkpoint`` and ``ttl``).

    :param maxsize: most entries kept (``None``: unbounded; zero or less: no caching)
    :param typed: cache arguments of different types separately (``1`` vs ``1.0``)
    :param always_checkpoint: make cache hits a checkpoint too
    :param ttl: seconds an entry stays valid (``None``: until evicted)
    """
    if maxsize is not None and maxsize < 0:
        maxsize = 0

    if func is None:
        return _LRUCacheWrapper(maxsize, typed, always_checkpoint, ttl)

    return _decorate(func, maxsize, typed, always_checkpoint, ttl)  # type: ignore[no-any-return]


class _InitialMissingType:
    """Marks that :func:`reduce` was given no initial value."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<no initial value>"


initial_missing = _InitialMissingType()


@overload
async def reduce(
    function: Callable[[T, S], Awaitable[T]],
    iterable: Iterable[S] | AsyncIterable[S],
    /,
    initial: T,
) -> T: ...


@overload
async def reduce(
    function: Callable[[T, T], Awaitable[T]],
    iterable: Iterable[T] | AsyncIterable[T],
    /,
) -> T: ...


async def reduce(  # type: ignore[misc]
    function: Callable[[T, T], Awaitable[T]] | Callable[[T, S], Awaitable[T]],
    iterable: Iterable[T] | Iterable[S] | AsyncIterable[T] | AsyncIterable[S],
    /,
    initial: T | _InitialMissingType = initial_missing,
) -> T:
    """Fold ``iterable`` into one value with the coroutine function ``function``.

    Like :func:`functools.reduce`, but ``function`` is awaited and ``iterable``
    may also be an async iterable. The call is a checkpoint even when
    ``function`` never runs.

    :raises TypeError: if ``iterable`` is empty and no ``initial`` was given
    """
    fn = cast("Callable[[Any, Any], Awaitable[Any]]", function)
    called = False
    value: Any
    if isinstance(iterable, AsyncIterable):
        iterator = aiter(iterable)
        if initial is initial_missing:
            try:
                value = await anext(iterator)
            except StopAsyncIteration:
                raise TypeError(
                    "reduce() of empty sequence with no initial value"
                ) from None
        else:
            value = initial

        async for item in iterator:
            value = await fn(value, item)
            called = True
    elif isinstance(iterable, Iterable):
        sync_iterator = iter(iterable)
        if initial is initial_missing:
            try:
                value = next(sync_iterator)
            except StopIteration:
                raise TypeError(
                    "reduce() of empty sequence with no initial value"
                ) from None
        else:
            value = initial

        for item in sync_iterator:
            value = await fn(value, item)
            called = True
    else:
        raise TypeError("reduce() argument 2 must be an iterable or async iterable")

    if not called:
        await checkpoint()

    return cast(T, value)
