"""What code can observe about odd uses of the primitives, as upstream has it:
weak references, copies and pickles, unusual cancel reasons and notify counts."""

from __future__ import annotations

import copy
import gc
import pickle
import weakref
from typing import Any

import pytest

import anyio
from anyio import (
    CancelScope,
    Condition,
    Event,
    Lock,
    ResourceGuard,
    get_cancelled_exc_class,
)

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "make", [CancelScope, Condition, ResourceGuard], ids=lambda m: m.__name__
)
def test_weakref(make: Any) -> None:
    obj = make()
    ref = weakref.ref(obj)
    assert ref() is obj
    del obj
    gc.collect()
    assert ref() is None


def test_weakref_to_a_cancel_scope_subclass() -> None:
    class MyScope(CancelScope):
        pass

    scope = MyScope()
    assert weakref.ref(scope)() is scope


@pytest.mark.parametrize(
    "clone", [copy.copy, copy.deepcopy, lambda o: pickle.loads(pickle.dumps(o))]
)
def test_copy_and_pickle_event_and_lock(clone: Any) -> None:
    done = Event()
    done.set()
    assert clone(done).is_set()
    assert not clone(Event()).is_set()
    lock = clone(Lock(fast_acquire=True))
    assert isinstance(lock, Lock)
    assert not lock.locked()
    assert lock._fast_acquire
    condition = clone(Condition())
    assert isinstance(condition, Condition)
    assert not condition.locked()


async def test_copied_primitives_work() -> None:
    event = copy.copy(Event())
    lock = pickle.loads(pickle.dumps(Lock()))
    async with lock:
        event.set()
    await event.wait()


async def test_cancel_reason_of_any_type() -> None:
    with CancelScope() as scope:
        scope.cancel(reason=123)  # type: ignore[arg-type]
        with pytest.raises(get_cancelled_exc_class()) as info:
            await anyio.sleep(1)
        assert "123" in str(info.value)
        raise info.value
    assert scope.cancelled_caught


async def test_notify_takes_an_index() -> None:
    condition = Condition()
    async with condition:
        with pytest.raises(
            TypeError, match="'float' object cannot be interpreted as an integer"
        ):
            condition.notify(1.5)  # type: ignore[arg-type]
        with pytest.raises(
            TypeError, match="'str' object cannot be interpreted as an integer"
        ):
            condition.notify("x")  # type: ignore[arg-type]
        condition.notify(True)
