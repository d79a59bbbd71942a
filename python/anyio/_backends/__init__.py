"""Upstream's private backend modules, kept for code that imports from them.

Published libraries and applications import ``anyio._backends._asyncio`` and
``anyio._backends._trio`` (to pre-import the backend, to reach its
``TaskGroup``/``CancelScope``, or for its backend class). Here both backends
share one implementation, so each module names this package's public objects;
``docs/conformance.md`` lists every name and who imports it.
"""
