"""anyio.functools: cache, lru_cache and reduce."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator

import pytest

import anyio
from anyio import CancelScope, Event, create_task_group, get_cancelled_exc_class
from anyio.functools import (
    AsyncCacheInfo,
    AsyncLRUCacheWrapper,
    cache,
    lru_cache,
    reduce,
)
from anyio.lowlevel import checkpoint

pytestmark = pytest.mark.anyio


def test_public_names() -> None:
    import anyio.functools as module

    assert sorted(module.__all__) == [
        "AsyncCacheInfo",
        "AsyncCacheParameters",
        "AsyncLRUCacheWrapper",
        "cache",
        "lru_cache",
        "reduce",
    ]


def test_plain_functions_use_the_stdlib_cache() -> None:
    def square(x: int) -> int:
        return x * x

    for cached in (cache(square), lru_cache(square), lru_cache(maxsize=4)(square)):
        assert isinstance(cached, functools._lru_cache_wrapper)
        assert cached(3) == cached(3) == 9
        assert cached.cache_info().hits == 1

    assert cache(square).cache_info().maxsize is None


def test_decorator_forms_and_metadata() -> None:
    async def fetch(key: str) -> str:
        """Fetch something."""
        return key

    bare = lru_cache(fetch)
    configured = lru_cache(maxsize=3, typed=True, always_checkpoint=True, ttl=9)(fetch)
    for wrapper in (bare, configured, cache(fetch)):
        assert isinstance(wrapper, AsyncLRUCacheWrapper)
        assert wrapper.__wrapped__ is fetch
        assert wrapper.__name__ == "fetch"
        assert wrapper.__doc__ == "Fetch something."

    assert bare.cache_parameters() == {
        "maxsize": 128,
        "typed": False,
        "always_checkpoint": False,
        "ttl": None,
    }
    assert configured.cache_parameters() == {
        "maxsize": 3,
        "typed": True,
        "always_checkpoint": True,
        "ttl": 9,
    }
    assert cache(fetch).cache_parameters()["maxsize"] is None


def test_non_callable_is_rejected() -> None:
    with pytest.raises(TypeError, match="the first argument must be callable"):
        lru_cache(5)  # type: ignore[call-overload]


async def test_hits_misses_and_clear() -> None:
    calls: list[int] = []

    @lru_cache
    async def double(x: int) -> int:
        calls.append(x)
        await checkpoint()
        return x * 2

    assert [await double(n) for n in (1, 2, 1, 1, 2)] == [2, 4, 2, 2, 4]
    assert calls == [1, 2]
    assert double.cache_info() == AsyncCacheInfo(3, 2, 128, 2, None)
    double.cache_clear()
    assert double.cache_info() == AsyncCacheInfo(0, 0, 128, 0, None)
    await double(1)
    assert calls == [1, 2, 1]


async def test_keys_distinguish_positional_and_keyword_arguments() -> None:
    @lru_cache
    async def collect(*args: object, **kwargs: object) -> tuple[object, ...]:
        return (args, tuple(sorted(kwargs.items())))

    await collect(1, "a", 2)
    await collect(1, a=2)
    await collect(1, a=2)
    assert collect.cache_info().misses == 2
    assert collect.cache_info().hits == 1


async def test_typed_keys() -> None:
    @lru_cache(typed=True)
    async def typed(x: object) -> str:
        return type(x).__name__

    @lru_cache(typed=False)
    async def untyped(x: object) -> str:
        return type(x).__name__

    assert [await typed(v) for v in (1, 1.0, 1)] == ["int", "float", "int"]
    assert typed.cache_info().currsize == 2
    assert [await untyped(v) for v in (1, 1.0)] == ["int", "int"]
    assert untyped.cache_info().currsize == 1


async def test_unhashable_argument() -> None:
    @lru_cache
    async def func(x: object) -> object:
        return x

    with pytest.raises(TypeError, match="unhashable"):
        await func([1])


@pytest.mark.parametrize("maxsize", [0, -5])
async def test_caching_disabled(maxsize: int) -> None:
    calls = 0

    @lru_cache(maxsize=maxsize)
    async def func() -> int:
        nonlocal calls
        calls += 1
        return calls

    assert [await func() for _ in range(3)] == [1, 2, 3]
    assert func.cache_info() == AsyncCacheInfo(0, 3, 0, 0, None)


async def test_least_recently_used_entry_is_evicted() -> None:
    @lru_cache(maxsize=2)
    async def ident(x: int) -> int:
        return x

    await ident(1)
    await ident(2)
    await ident(1)  # 2 is now the least recently used
    await ident(3)  # evicts 2
    await ident(1)
    assert ident.cache_info().hits == 2
    await ident(2)
    assert ident.cache_info().misses == 4
    assert ident.cache_info().currsize == 2


async def test_failures_are_not_cached() -> None:
    attempts = 0

    @lru_cache
    async def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise RuntimeError("first try fails")
        return "ok"

    with pytest.raises(RuntimeError):
        await flaky()

    assert await flaky() == "ok"
    assert await flaky() == "ok"
    assert attempts == 2


async def test_concurrent_callers_share_one_call() -> None:
    release = Event()
    calls = 0

    @lru_cache
    async def slow(x: int) -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return x

    results: list[int] = []

    async def call() -> None:
        results.append(await slow(7))

    async with create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(call)

        await anyio.wait_all_tasks_blocked()
        release.set()

    assert results == [7] * 5
    assert calls == 1
    assert slow.cache_info()[:2] == (4, 1)


async def test_different_keys_do_not_block_each_other() -> None:
    gate = Event()

    @lru_cache
    async def func(opener: bool) -> None:
        if opener:
            gate.set()
        else:
            await gate.wait()

    with anyio.fail_after(5):
        async with create_task_group() as tg:
            tg.start_soon(func, False)
            tg.start_soon(func, True)


async def test_hits_checkpoint_only_when_asked() -> None:
    @lru_cache
    async def quiet() -> int:
        return 1

    @lru_cache(always_checkpoint=True)
    async def loud() -> int:
        return 1

    await quiet()
    await loud()
    with CancelScope() as scope:
        scope.cancel()
        assert await quiet() == 1
        with pytest.raises(get_cancelled_exc_class()):
            await loud()


async def test_ttl_expiry() -> None:
    calls = 0

    @lru_cache(ttl=1)
    async def stamp() -> int:
        nonlocal calls
        calls += 1
        return calls

    assert await stamp() == 1
    assert await stamp() == 1
    await anyio.sleep(1.05)
    assert await stamp() == 2
    assert stamp.cache_info() == AsyncCacheInfo(1, 2, 128, 1, 1)


async def test_methods() -> None:
    class Counter:
        def __init__(self, step: int) -> None:
            self.step = step

        @lru_cache
        async def advance(self, value: int) -> int:
            return value + self.step

        @staticmethod
        @lru_cache
        async def static(value: int) -> int:
            return -value

        @classmethod
        @lru_cache
        async def named(cls, value: int) -> str:
            return f"{cls.__name__}{value}"

    one, two = Counter(1), Counter(2)
    assert await one.advance(10) == 11
    assert await two.advance(10) == 12
    assert await one.advance(10) == 11
    assert await Counter.advance(two, 10) == 12
    # The cache lives on the function and is shared by all instances.
    assert one.advance.cache_info() == AsyncCacheInfo(2, 2, 128, 2, None)
    assert one.advance.__name__ == "advance"
    assert await Counter.static(3) == await Counter.static(3) == -3
    assert Counter.static.cache_info().hits == 1
    assert await Counter.named(1) == await Counter.named(1) == "Counter1"
    assert Counter.named.cache_info().hits == 1
    one.advance.cache_clear()
    assert two.advance.cache_info().currsize == 0


class TestReduce:
    @staticmethod
    async def add(x: int, y: int) -> int:
        await checkpoint()
        return x + y

    async def test_sync_and_async_iterables(self) -> None:
        async def numbers() -> AsyncIterator[int]:
            for n in (1, 2, 3, 4):
                yield n

        assert await reduce(self.add, [1, 2, 3, 4]) == 10
        assert await reduce(self.add, range(5), 100) == 110
        assert await reduce(self.add, numbers()) == 10
        assert await reduce(self.add, numbers(), -10) == 0

    async def test_order_of_arguments(self) -> None:
        async def concat(acc: str, item: int) -> str:
            return f"({acc}{item})"

        assert await reduce(concat, [1, 2, 3], "") == "(((1)2)3)"

    async def test_single_item_and_initial_only(self) -> None:
        assert await reduce(self.add, [5]) == 5
        assert await reduce(self.add, [], 7) == 7

    async def test_empty_without_initial(self) -> None:
        async def nothing() -> AsyncIterator[int]:
            return
            yield

        for empty in ([], iter(()), nothing()):
            with pytest.raises(TypeError, match=r"reduce\(\) of empty sequence"):
                await reduce(self.add, empty)

    async def test_not_iterable(self) -> None:
        with pytest.raises(TypeError, match="must be an iterable or async iterable"):
            await reduce(self.add, 5)  # type: ignore[call-overload]

    async def test_is_a_checkpoint_without_calls(self) -> None:
        with CancelScope() as scope:
            scope.cancel()
            await reduce(self.add, [1])

        assert scope.cancelled_caught
