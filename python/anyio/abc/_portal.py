"""``anyio.abc.BlockingPortal``: a deprecated alias of
:class:`anyio.from_thread.BlockingPortal`, as in anyio 4.

anyio.abc's module ``__getattr__`` calls :func:`deprecated_alias` for names it
does not define, so the alias warns on access rather than at import.
"""

from __future__ import annotations

import warnings
from typing import Any

_ALIASES = {
    "BlockingPortal": ("anyio.from_thread", "BlockingPortal"),
    # Synchronization primitives and CancelScope were reachable here in anyio 3.
    "CancelScope": ("anyio", "CancelScope"),
    "CapacityLimiter": ("anyio", "CapacityLimiter"),
    "Condition": ("anyio", "Condition"),
    "Event": ("anyio", "Event"),
    "Lock": ("anyio", "Lock"),
    "Semaphore": ("anyio", "Semaphore"),
}


def deprecated_alias(name: str) -> Any:
    """Return the object behind a deprecated alias, with a DeprecationWarning.

    :raises AttributeError: if `name` is not such an alias
    """
    try:
        module_name, attr = _ALIASES[name]
    except KeyError:
        raise AttributeError(f"module 'anyio.abc' has no attribute {name!r}") from None

    warnings.warn(
        f"The anyio.abc.{name} alias is deprecated, use {module_name}.{attr} instead.",
        DeprecationWarning,
        stacklevel=3,
    )
    import importlib

    return getattr(importlib.import_module(module_name), attr)


__all__ = ["deprecated_alias"]
