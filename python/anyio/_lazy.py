"""Resolving a package's public names and submodules on first use.

``anyio`` and ``anyio.streams`` import nothing up front; their module
``__getattr__`` calls :func:`resolve`, which imports the private module behind
a name (or the submodule of that name), stores the result in the package's
namespace so that later lookups are plain dictionary hits, and reports public
objects under the package's name (``anyio.Event``, not ``anyio._sync.Event``)
in reprs, tracebacks and pickles, as upstream does.
"""

from __future__ import annotations

import importlib
import types
import warnings
from collections.abc import Mapping, Set
from typing import Any

_RENAMEABLE = (type, types.FunctionType, types.BuiltinFunctionType)
_MISSING = object()


def _publish(value: Any, package: str) -> None:
    """Name `package` as the home of `value` if it lives in a private module."""
    if isinstance(value, _RENAMEABLE):
        module = getattr(value, "__module__", None)
        if isinstance(module, str) and module.startswith(package + "._"):
            try:
                value.__module__ = package
            except (AttributeError, TypeError):  # a static type: keep its name
                pass


def resolve(
    namespace: dict[str, Any],
    name: str,
    public: Mapping[str, str],
    submodules: Set[str],
    deprecated: Mapping[str, str],
) -> Any:
    """The value of `name` in the package whose globals are `namespace`.

    :param public: public name -> module (relative to the package) defining it
    :param submodules: public submodules, imported when first reached
    :param deprecated: old name -> current name; warns on every use
    :raises AttributeError: for any other name
    """
    package = namespace["__name__"]
    if name in deprecated:
        current = deprecated[name]
        warnings.warn(
            f"The {package}.{name} alias is deprecated, use {package}.{current} instead.",
            DeprecationWarning,
            stacklevel=3,
        )
        return resolve(namespace, current, public, submodules, deprecated)

    if name in submodules:
        # Importing a submodule also binds it in the package's namespace.
        return importlib.import_module(f"{package}.{name}")

    try:
        module_name = public[name]
    except KeyError:
        raise AttributeError(f"module {package!r} has no attribute {name!r}") from None

    module = importlib.import_module(module_name, package)
    value = getattr(module, name)
    _publish(value, package)
    namespace[name] = value
    # The module's other public names too, so that they all report the public
    # module from now on, however they are reached. One still being defined
    # (the module is partly initialised during a circular import) is left for
    # its own first lookup.
    for other, other_module in public.items():
        if other_module == module_name and other not in namespace:
            other_value = getattr(module, other, _MISSING)
            if other_value is not _MISSING:
                _publish(other_value, package)
                namespace[other] = other_value

    return value
