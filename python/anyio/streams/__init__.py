"""Stream implementations: memory, buffered, text, stapled, file and TLS.

Each submodule is imported the first time it is reached as an attribute
(``anyio.streams.tls.TLSStream`` after a bare ``import anyio``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from . import buffered as buffered
    from . import file as file
    from . import memory as memory
    from . import stapled as stapled
    from . import text as text
    from . import tls as tls

_SUBMODULES = frozenset({"buffered", "file", "memory", "stapled", "text", "tls"})


# Hidden from type checkers, which see the imports above: a misspelt name
# stays an error for them.
if not TYPE_CHECKING:

    def __getattr__(name: str) -> object:
        from .._lazy import resolve

        return resolve(globals(), name, {}, _SUBMODULES, {})

    def __dir__() -> list[str]:
        return sorted(_SUBMODULES)


del TYPE_CHECKING
