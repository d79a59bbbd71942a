"""Typed attributes: look up information through a chain of wrapped objects.

A typed attribute is a unique key (any object); providers map keys to
zero-argument getters. Wrappers merge their own mapping over the one of the
object they wrap, so a lookup on the outermost wrapper finds attributes of any
layer below it.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping
from typing import Any, TypeVar, final, overload

from ._exceptions import TypedAttributeLookupError

T_Attr = TypeVar("T_Attr")
T_Default = TypeVar("T_Default")

# Distinguishes "no default given" from an explicit default of None.
_NO_DEFAULT: Any = object()


def typed_attribute() -> Any:
    """Create a new typed attribute key.

    Use it as the value of an annotated class attribute in a
    :class:`TypedAttributeSet` subclass; the annotation tells type checkers what
    :meth:`TypedAttributeProvider.extra` returns for this key.
    """
    return object()


def _own_annotations(cls: type) -> Mapping[str, Any]:
    # Only the names matter here, so never evaluate the annotations: on 3.14
    # they are lazy and may refer to names that are not importable at runtime.
    if sys.version_info >= (3, 14):
        import annotationlib

        return annotationlib.get_annotations(
            cls, format=annotationlib.Format.FORWARDREF
        )

    annotations = cls.__dict__.get("__annotations__", {})
    return annotations if isinstance(annotations, Mapping) else {}


class TypedAttributeSet:
    """Base class for a namespace of related typed attributes.

    Every public class attribute of a subclass must carry a type annotation:
    that annotation is the type of the attribute's value.
    """

    def __init_subclass__(cls, **kwargs: Any) -> None:
        annotations = _own_annotations(cls)
        for name in cls.__dict__:
            if not name.startswith("_") and name not in annotations:
                raise TypeError(f"Attribute {name!r} is missing its type annotation")

        super().__init_subclass__(**kwargs)


class TypedAttributeProvider:
    """Base class for objects that offer typed attributes through :meth:`extra`."""

    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        """A mapping of typed attribute keys to the getters of their values.

        Subclasses that wrap another provider should include its mapping
        (``{**wrapped.extra_attributes, ...own...}``).
        """
        return {}

    @overload
    def extra(self, attribute: T_Attr) -> T_Attr: ...

    @overload
    def extra(self, attribute: T_Attr, default: T_Default) -> T_Attr | T_Default: ...

    @final
    def extra(self, attribute: Any, default: Any = _NO_DEFAULT) -> Any:
        """Return the value of the given typed attribute.

        :param attribute: the attribute key (a member of a
            :class:`TypedAttributeSet`)
        :param default: returned when no layer provides the attribute
        :raises TypedAttributeLookupError: if the attribute is not provided and
            no default was given
        """
        try:
            getter = self.extra_attributes[attribute]
        except KeyError:
            if default is _NO_DEFAULT:
                raise TypedAttributeLookupError("Attribute not found") from None

            return default

        # Called outside the try block: a KeyError raised by the getter itself
        # is a real error, not a missing attribute.
        return getter()
