"""Mix-in classes that turn a generator-style method into ``with`` support.

A class implements ``__contextmanager__()`` (usually decorated with
:func:`contextlib.contextmanager`) or ``__asynccontextmanager__()`` (with
:func:`contextlib.asynccontextmanager`); the mix-in supplies ``__enter__`` /
``__exit__`` or ``__aenter__`` / ``__aexit__`` around it. Setup code that fails
before the ``yield`` then cleans up in the same function, which is hard to get
right with hand-written enter/exit pairs.
"""

from __future__ import annotations

import inspect
from contextlib import AbstractAsyncContextManager, AbstractContextManager
from types import TracebackType
from typing import Any, Protocol, TypeVar, final

_T_co = TypeVar("_T_co", covariant=True)
_ExitT_co = TypeVar("_ExitT_co", covariant=True, bound="bool | None")


class _SupportsCtxMgr(Protocol[_T_co, _ExitT_co]):
    def __contextmanager__(self) -> AbstractContextManager[_T_co, _ExitT_co]: ...


class _SupportsAsyncCtxMgr(Protocol[_T_co, _ExitT_co]):
    def __asynccontextmanager__(
        self,
    ) -> AbstractAsyncContextManager[_T_co, _ExitT_co]: ...


class ContextManagerMixin:
    """Gives a class ``__enter__``/``__exit__`` driven by ``__contextmanager__()``.

    An instance can be entered again after it has been exited, but not while it
    is entered.
    """

    # The context manager of the current ``with`` block, None when not entered.
    __cm: AbstractContextManager[object, bool | None] | None = None

    @final
    def __enter__(self: _SupportsCtxMgr[_T_co, bool | None]) -> _T_co:
        # The self-type lets type checkers infer the ``as`` target from
        # __contextmanager__(); at runtime self is always a ContextManagerMixin.
        assert isinstance(self, ContextManagerMixin)
        if self.__cm is not None:
            raise RuntimeError(
                f"this {type(self).__qualname__} has already been entered"
            )

        cm = self.__contextmanager__()
        if cm is self:
            method = type(self).__contextmanager__
            raise TypeError(
                f"{method.__qualname__}() returned self. Did you forget to add the "
                f"@contextmanager decorator and a 'yield' statement?"
            )

        if inspect.isgenerator(cm):
            cm.close()
            raise TypeError(
                "__contextmanager__() returned a generator object instead of a "
                "context manager. Did you forget to add the @contextmanager "
                "decorator?"
            )

        if not isinstance(cm, AbstractContextManager):
            raise TypeError(
                f"__contextmanager__() did not return a context manager object, "
                f"but {cm.__class__!r}"
            )

        value = cm.__enter__()
        self.__cm = cm
        return value  # type: ignore[no-any-return]

    @final
    def __exit__(
        self: _SupportsCtxMgr[object, _ExitT_co],
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> _ExitT_co:
        assert isinstance(self, ContextManagerMixin)
        cm = self.__cm
        if cm is None:
            raise RuntimeError(
                f"this {type(self).__qualname__} has not been entered yet"
            )

        self.__cm = None
        return cm.__exit__(exc_type, exc_val, exc_tb)  # type: ignore[return-value]

    def __contextmanager__(self) -> AbstractContextManager[object, bool | None]:
        """Return the context manager that implements this object's ``with``.

        Subclasses override this, typically as a generator decorated with
        :func:`contextlib.contextmanager` that yields the ``as`` value.
        """
        # Reached only when a subclass forgot to override it; __enter__ reports
        # that as a missing context manager.
        return None  # type: ignore[return-value]


class AsyncContextManagerMixin:
    """Gives a class ``__aenter__``/``__aexit__`` driven by
    ``__asynccontextmanager__()``.

    An instance can be entered again after it has been exited, but not while it
    is entered.
    """

    __cm: AbstractAsyncContextManager[object, bool | None] | None = None

    @final
    async def __aenter__(self: _SupportsAsyncCtxMgr[_T_co, bool | None]) -> _T_co:
        assert isinstance(self, AsyncContextManagerMixin)
        if self.__cm is not None:
            raise RuntimeError(
                f"this {type(self).__qualname__} has already been entered"
            )

        cm: Any = self.__asynccontextmanager__()
        if cm is self:
            method = type(self).__asynccontextmanager__
            raise TypeError(
                f"{method.__qualname__}() returned self. Did you forget to add the "
                f"@asynccontextmanager decorator and a 'yield' statement?"
            )

        if inspect.iscoroutine(cm):
            # Close it so that it does not also warn about never being awaited.
            cm.close()
            raise TypeError(
                "__asynccontextmanager__() returned a coroutine object instead of "
                "an async context manager. Did you forget to add the "
                "@asynccontextmanager decorator and a 'yield' statement?"
            )

        if inspect.isasyncgen(cm):
            raise TypeError(
                "__asynccontextmanager__() returned an async generator instead of "
                "an async context manager. Did you forget to add the "
                "@asynccontextmanager decorator?"
            )

        if not isinstance(cm, AbstractAsyncContextManager):
            raise TypeError(
                f"__asynccontextmanager__() did not return an async context "
                f"manager, but {cm.__class__!r}"
            )

        value = await cm.__aenter__()
        self.__cm = cm
        return value  # type: ignore[no-any-return]

    @final
    async def __aexit__(
        self: _SupportsAsyncCtxMgr[object, _ExitT_co],
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> _ExitT_co:
        assert isinstance(self, AsyncContextManagerMixin)
        cm = self.__cm
        if cm is None:
            raise RuntimeError(
                f"this {type(self).__qualname__} has not been entered yet"
            )

        self.__cm = None
        return await cm.__aexit__(exc_type, exc_val, exc_tb)  # type: ignore[return-value]

    def __asynccontextmanager__(
        self,
    ) -> AbstractAsyncContextManager[object, bool | None]:
        """Return the async context manager that implements ``async with``.

        Subclasses override this, typically as an async generator decorated with
        :func:`contextlib.asynccontextmanager` that yields the ``as`` value.
        """
        # Reached only when a subclass forgot to override it; __aenter__ reports
        # that as a missing async context manager.
        return None  # type: ignore[return-value]
