"""Async counterparts of the :mod:`itertools` building blocks.

Every function accepts plain iterables as well as async iterables, and returns
an async iterator. Callables passed in (predicates, key and accumulation
functions) are coroutine functions.

Each step of each iterator is a checkpoint, including the step that ends the
iteration, so a consumer can always be cancelled and never starves other tasks.
Items are pulled from a source only after that checkpoint, which means a
cancelled step never consumes an item it then drops.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import (
    AsyncGenerator,
    AsyncIterable,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
)
from typing import Any, Generic, TypeVar, cast, overload

from ._sync import Lock
from .lowlevel import checkpoint

T = TypeVar("T")
R = TypeVar("R")

# As upstream, ``chain`` (an instance, not a function) is not in ``__all__``.
__all__ = (
    "Chain",
    "accumulate",
    "batched",
    "combinations",
    "combinations_with_replacement",
    "compress",
    "count",
    "cycle",
    "dropwhile",
    "filterfalse",
    "groupby",
    "islice",
    "pairwise",
    "permutations",
    "product",
    "repeat",
    "starmap",
    "takewhile",
    "tee",
    "zip_longest",
)


class _Done:
    """Returned by :meth:`_Source.pull` once the source is exhausted."""

    __slots__ = ()


_DONE: Any = _Done()


class _Source(Generic[T]):
    """One input, sync or async, read an item at a time behind a checkpoint."""

    __slots__ = ("_sync", "_async")

    def __init__(self, iterable: Iterable[T] | AsyncIterable[T]) -> None:
        self._sync: Iterator[T] | None = None
        self._async: AsyncIterator[T] | None = None
        if isinstance(iterable, AsyncIterable):
            self._async = aiter(iterable)
        else:
            self._sync = iter(iterable)

    async def pull(self) -> T:
        """The next item, or ``_DONE``. Always a checkpoint (before reading)."""
        await checkpoint()
        if self._sync is not None:
            return next(self._sync, _DONE)

        assert self._async is not None
        try:
            return await anext(self._async)
        except StopAsyncIteration:
            return cast(T, _DONE)


async def _collect(iterable: Iterable[T] | AsyncIterable[T]) -> tuple[T, ...]:
    """All items of an input as a tuple (for the combinatoric functions).

    Ends with a checkpoint of its own: together with the one before each result
    (or at the end), the first step of a combinatoric iterator then lets every
    other ready task run even on Trio, which may run a batch of ready tasks in
    either order.
    """
    if isinstance(iterable, AsyncIterable):
        items = tuple([item async for item in iterable])
    else:
        items = tuple(iterable)

    await checkpoint()
    return items


async def _operator_add(first: Any, second: Any) -> Any:
    return first + second


async def accumulate(
    iterable: Iterable[T] | AsyncIterable[T],
    function: Callable[[T, T], Awaitable[T]] = _operator_add,
    *,
    initial: T | None = None,
) -> AsyncGenerator[T, None]:
    """Running totals (or running results of ``function``) over ``iterable``.

    With ``initial``, that value comes first and seeds the accumulation.
    """
    source = _Source(iterable)
    total: T
    if initial is None:
        total = await source.pull()
        if total is _DONE:
            return
    else:
        await checkpoint()
        total = initial

    yield total
    while (item := await source.pull()) is not _DONE:
        total = await function(total, item)
        yield total


async def batched(
    iterable: Iterable[T] | AsyncIterable[T], n: int, *, strict: bool = False
) -> AsyncGenerator[tuple[T, ...], None]:
    """Tuples of ``n`` consecutive items; the last one may be shorter.

    :raises ValueError: if ``n`` is below one, or (with ``strict``) if the last
        batch is incomplete
    """
    if n < 1:
        raise ValueError("n must be at least one")

    source = _Source(iterable)
    while True:
        batch: list[T] = []
        while len(batch) < n:
            item = await source.pull()
            if item is _DONE:
                break

            batch.append(item)

        if not batch:
            return

        if strict and len(batch) < n:
            raise ValueError("batched(): incomplete batch")

        yield tuple(batch)
        if len(batch) < n:
            return


class Chain:
    """The type of :data:`chain`: call it, or use :meth:`from_iterable`."""

    async def __call__(
        self, *iterables: Iterable[T] | AsyncIterable[T]
    ) -> AsyncGenerator[T, None]:
        """Items of each of ``iterables`` in turn."""
        for iterable in iterables:
            source = _Source(iterable)
            while (item := await source.pull()) is not _DONE:
                yield item

        if not iterables:
            await checkpoint()

    async def from_iterable(
        self,
        iterables: Iterable[Iterable[T] | AsyncIterable[T]]
        | AsyncIterable[Iterable[T] | AsyncIterable[T]],
    ) -> AsyncGenerator[T, None]:
        """Items of each iterable produced by ``iterables`` in turn."""
        outer = _Source(iterables)
        while (iterable := await outer.pull()) is not _DONE:
            source = _Source(iterable)
            while (item := await source.pull()) is not _DONE:
                yield item


#: Items of several iterables in turn; ``chain.from_iterable()`` takes them lazily.
chain = Chain()


async def combinations(
    iterable: Iterable[T] | AsyncIterable[T], r: int
) -> AsyncGenerator[tuple[T, ...], None]:
    """``r``-length tuples of items in input order, without repeated elements."""
    itertools.combinations((), r)  # validates r before anything is consumed
    pool = await _collect(iterable)
    for combination in itertools.combinations(pool, r):
        await checkpoint()
        yield combination

    await checkpoint()


async def combinations_with_replacement(
    iterable: Iterable[T] | AsyncIterable[T], r: int
) -> AsyncGenerator[tuple[T, ...], None]:
    """``r``-length tuples of items in input order, elements may repeat."""
    itertools.combinations_with_replacement((), r)
    pool = await _collect(iterable)
    for combination in itertools.combinations_with_replacement(pool, r):
        await checkpoint()
        yield combination

    await checkpoint()


async def compress(
    data: Iterable[T] | AsyncIterable[T],
    selectors: Iterable[object] | AsyncIterable[object],
) -> AsyncGenerator[T, None]:
    """Items of ``data`` whose matching selector is true; stops at the shorter."""
    data_source = _Source(data)
    selector_source = _Source(selectors)
    while (item := await data_source.pull()) is not _DONE:
        selector = await selector_source.pull()
        if selector is _DONE:
            return

        if selector:
            yield item


async def count(start: int = 0, step: int = 1) -> AsyncGenerator[int, None]:
    """``start``, ``start + step``, ``start + 2 * step``, ... without end."""
    value = start
    while True:
        await checkpoint()
        yield value
        value += step


async def cycle(iterable: Iterable[T] | AsyncIterable[T]) -> AsyncGenerator[T, None]:
    """The items of ``iterable``, then the same items again, forever.

    The first pass keeps a copy of every item; later passes replay it.
    """
    source = _Source(iterable)
    saved: list[T] = []
    while (item := await source.pull()) is not _DONE:
        saved.append(item)
        yield item

    if not saved:
        return

    while True:
        for item in saved:
            await checkpoint()
            yield item


async def dropwhile(
    predicate: Callable[[T], Awaitable[object]],
    iterable: Iterable[T] | AsyncIterable[T],
) -> AsyncGenerator[T, None]:
    """Skip items while ``predicate`` is true, then yield every remaining item."""
    source = _Source(iterable)
    while (item := await source.pull()) is not _DONE:
        if not await predicate(item):
            yield item
            break
    else:
        return

    while (item := await source.pull()) is not _DONE:
        yield item


async def filterfalse(
    predicate: Callable[[T], Awaitable[object]] | None,
    iterable: Iterable[T] | AsyncIterable[T],
) -> AsyncGenerator[T, None]:
    """Items for which ``predicate`` is false (items that are false if it is None)."""
    source = _Source(iterable)
    while (item := await source.pull()) is not _DONE:
        verdict = item if predicate is None else await predicate(item)
        if not verdict:
            yield item


@overload
def groupby(
    iterable: Iterable[T] | AsyncIterable[T],
) -> AsyncGenerator[tuple[T, list[T]], None]: ...
@overload
def groupby(
    iterable: Iterable[T] | AsyncIterable[T], key: Callable[[T], Awaitable[R]]
) -> AsyncGenerator[tuple[R, list[T]], None]: ...
async def groupby(
    iterable: Iterable[T] | AsyncIterable[T],
    key: Callable[[T], Awaitable[object]] | None = None,
) -> AsyncGenerator[tuple[object, list[T]], None]:
    """``(key, items)`` for each run of consecutive items with equal keys.

    Unlike :func:`itertools.groupby`, each group is a complete list.
    """
    source = _Source(iterable)
    item = await source.pull()
    if item is _DONE:
        return

    current_key = item if key is None else await key(item)
    group = [item]
    while (item := await source.pull()) is not _DONE:
        item_key = item if key is None else await key(item)
        if item_key == current_key:
            group.append(item)
        else:
            yield current_key, group
            current_key = item_key
            group = [item]

    yield current_key, group


@overload
def islice(
    iterable: Iterable[T] | AsyncIterable[T], stop: int | None, /
) -> AsyncGenerator[T, None]: ...


@overload
def islice(
    iterable: Iterable[T] | AsyncIterable[T],
    start: int | None,
    stop: int | None,
    step: int | None = ...,
    /,
) -> AsyncGenerator[T, None]: ...


async def islice(
    iterable: Iterable[T] | AsyncIterable[T], *args: int | None
) -> AsyncGenerator[T, None]:
    """Selected items, as ``iterable[start:stop:step]`` would select from a list.

    Takes ``(stop)`` or ``(start, stop[, step])`` like :func:`itertools.islice`.
    The first ``start`` items are consumed even when nothing is selected, and
    nothing past the last selected item is consumed.
    """
    # Validates the argument count and the indices with the standard messages.
    itertools.islice((), *args)
    bounds = slice(*args)
    start = 0 if bounds.start is None else operator.index(bounds.start)
    stop = None if bounds.stop is None else operator.index(bounds.stop)
    step = 1 if bounds.step is None else operator.index(bounds.step)

    source = _Source(iterable)
    position = 0  # index of the next item the source would give
    while position < start:
        if await source.pull() is _DONE:
            return

        position += 1

    if stop is not None and start >= stop:
        await checkpoint()
        return

    wanted = start
    while stop is None or wanted < stop:
        while position < wanted:
            if await source.pull() is _DONE:
                return

            position += 1

        item = await source.pull()
        if item is _DONE:
            return

        position += 1
        yield item
        wanted += step


async def pairwise(
    iterable: Iterable[T] | AsyncIterable[T],
) -> AsyncGenerator[tuple[T, T], None]:
    """Overlapping pairs of consecutive items: ``(a, b), (b, c), ...``."""
    source = _Source(iterable)
    previous = await source.pull()
    if previous is _DONE:
        return

    while (item := await source.pull()) is not _DONE:
        yield previous, item
        previous = item


async def permutations(
    iterable: Iterable[T] | AsyncIterable[T], r: int | None = None
) -> AsyncGenerator[tuple[T, ...], None]:
    """``r``-length orderings of distinct elements (all of them if ``r`` is None)."""
    itertools.permutations((), r)
    pool = await _collect(iterable)
    for permutation in itertools.permutations(pool, r):
        await checkpoint()
        yield permutation

    await checkpoint()


async def product(
    *iterables: Iterable[T] | AsyncIterable[T], repeat: int = 1
) -> AsyncGenerator[tuple[T, ...], None]:
    """The Cartesian product of the inputs (each repeated ``repeat`` times)."""
    itertools.product(repeat=repeat)
    if repeat == 0:
        # The only result is the empty tuple; the inputs are left untouched.
        await checkpoint()
        yield ()
        await checkpoint()
        return

    pools = [await _collect(iterable) for iterable in iterables]
    for combination in itertools.product(*pools, repeat=repeat):
        await checkpoint()
        yield combination

    await checkpoint()


async def repeat(element: T, times: int | None = None) -> AsyncGenerator[T, None]:
    """``element`` over and over, ``times`` times or without end."""
    if times is None:
        while True:
            await checkpoint()
            yield element

    for _ in range(operator.index(times)):
        await checkpoint()
        yield element

    await checkpoint()


async def starmap(
    function: Callable[..., Awaitable[R]],
    iterable: Iterable[Iterable[object] | AsyncIterable[object]]
    | AsyncIterable[Iterable[object] | AsyncIterable[object]],
) -> AsyncGenerator[R, None]:
    """``await function(*args)`` for each ``args`` (which may be async iterables)."""
    source = _Source(iterable)
    while (args := await source.pull()) is not _DONE:
        if isinstance(args, AsyncIterable):
            arguments = [argument async for argument in args]
        else:
            arguments = list(args)

        yield await function(*arguments)


async def takewhile(
    predicate: Callable[[T], Awaitable[object]],
    iterable: Iterable[T] | AsyncIterable[T],
) -> AsyncGenerator[T, None]:
    """Items while ``predicate`` holds; the first failing item is consumed."""
    source = _Source(iterable)
    while (item := await source.pull()) is not _DONE:
        if not await predicate(item):
            return

        yield item


class _TeeLink:
    """One buffered item; ``next`` is filled in when the following item arrives."""

    __slots__ = ("value", "next")

    def __init__(self, value: Any) -> None:
        self.value = value
        self.next: _TeeLink | None = None


class _TeeShared:
    """What the iterators of one :func:`tee` call share: the input and a lock."""

    __slots__ = ("source", "exhausted", "lock")

    def __init__(self, iterable: Iterable[Any] | AsyncIterable[Any]) -> None:
        self.source = _Source(iterable)
        self.exhausted = False
        self.lock: Lock | None = None


class _TeeAsyncIterator(AsyncIterator[T]):
    """One of the independent iterators returned by :func:`tee`.

    The items form a singly linked list that every iterator walks at its own
    pace; links nobody can reach any more are freed by the garbage collector.
    """

    __slots__ = ("_shared", "_link")

    def __init__(self, shared: _TeeShared, link: _TeeLink) -> None:
        self._shared = shared
        self._link = link

    def __aiter__(self) -> _TeeAsyncIterator[T]:
        return self

    def __copy__(self) -> _TeeAsyncIterator[T]:
        return _TeeAsyncIterator(self._shared, self._link)

    async def __anext__(self) -> T:
        link = self._link
        following = link.next
        if following is None:
            following = await self._fetch(link)
            if following is None:
                raise StopAsyncIteration
        else:
            await checkpoint()

        self._link = following
        return cast(T, following.value)

    async def _fetch(self, link: _TeeLink) -> _TeeLink | None:
        shared = self._shared
        if shared.lock is None:
            shared.lock = Lock()

        # Only one iterator reads the input at a time; the others then find
        # the item it appended.
        async with shared.lock:
            if link.next is None and not shared.exhausted:
                item = await shared.source.pull()
                if item is _DONE:
                    shared.exhausted = True
                else:
                    link.next = _TeeLink(item)

        return link.next


def tee(
    iterable: Iterable[T] | AsyncIterable[T], n: int = 2
) -> tuple[AsyncIterator[T], ...]:
    """``n`` independent async iterators over the items of one input.

    Items are buffered until every iterator has read them. Passing an iterator
    returned by this function makes copies that start at its current position.

    :raises ValueError: if ``n`` is negative
    """
    itertools.tee((), n)  # validates n the standard way
    if isinstance(iterable, _TeeAsyncIterator):
        return tuple(iterable.__copy__() for _ in range(n))

    shared = _TeeShared(iterable)
    head = _TeeLink(None)
    return tuple(_TeeAsyncIterator(shared, head) for _ in range(n))


async def zip_longest(
    *iterables: Iterable[object] | AsyncIterable[object], fillvalue: object = None
) -> AsyncGenerator[tuple[object, ...], None]:
    """Tuples of one item from each input, padding finished inputs with ``fillvalue``
    until the longest input ends."""
    sources: list[_Source[object] | None] = [
        _Source(iterable) for iterable in iterables
    ]
    remaining = len(sources)
    if not remaining:
        await checkpoint()
        return

    while True:
        row: list[object] = []
        for index, source in enumerate(sources):
            if source is None:
                row.append(fillvalue)
                continue

            item = await source.pull()
            if item is _DONE:
                sources[index] = None
                remaining -= 1
                row.append(fillvalue)
            else:
                row.append(item)

        if not remaining:
            return

        yield tuple(row)
