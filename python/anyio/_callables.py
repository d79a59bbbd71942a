"""Naming callables the way task names and error messages show them."""

from __future__ import annotations

import functools
from typing import Any


def callable_name(func: Any) -> str:
    """``module.qualname`` of a function, looking through ``functools.partial``."""
    while isinstance(func, functools.partial):
        func = func.func

    qualname = getattr(func, "__qualname__", None)
    if qualname is None:
        return repr(func)

    module = getattr(func, "__module__", None)
    return f"{module}.{qualname}" if isinstance(module, str) else str(qualname)
