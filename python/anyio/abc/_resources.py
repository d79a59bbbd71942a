"""The base class of everything that must be closed asynchronously."""

from __future__ import annotations

import sys
from abc import ABCMeta, abstractmethod
from types import TracebackType

if sys.version_info >= (3, 11):
    from typing import Self
else:
    from typing_extensions import Self


class AsyncResource(metaclass=ABCMeta):
    """An object that holds something which has to be released with
    :meth:`aclose`; ``async with`` closes it on the way out."""

    # Lets subclasses that define __slots__ stay free of a per-instance dict.
    __slots__ = ()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc_val: BaseException | None,
        exc_tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    @abstractmethod
    async def aclose(self) -> None:
        """Close the resource."""
