"""Upstream's private module paths, kept for code that imports from them.

Real projects reach into ``anyio._core.*`` for a few names. Each submodule here
maps those names to this package's public objects on first access, so a name
whose feature is missing raises ImportError only where it is used and never
breaks ``import anyio``.
"""

from __future__ import annotations

import importlib
from typing import Any


def resolve_alias(module: str, aliases: dict[str, tuple[str, ...]], name: str) -> Any:
    """Look `name` up in the first public location from `aliases` that has it."""
    for location in aliases.get(name, ()):
        module_name, _, attr = location.rpartition(".")
        try:
            value = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError):
            continue

        return value

    raise AttributeError(f"module {module!r} has no attribute {name!r}")
