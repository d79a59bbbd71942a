"""Typed attributes: keys, attribute sets and provider lookups."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from anyio import (
    TypedAttributeLookupError,
    TypedAttributeProvider,
    TypedAttributeSet,
    typed_attribute,
)


class Colours(TypedAttributeSet):
    red: str = typed_attribute()
    green: int = typed_attribute()


class Inner(TypedAttributeProvider):
    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {Colours.red: lambda: "inner red", Colours.green: lambda: 1}


class Outer(Inner):
    @property
    def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
        return {**super().extra_attributes, Colours.red: lambda: "outer red"}


def test_keys_are_unique() -> None:
    assert typed_attribute() is not typed_attribute()
    assert Colours.red is not Colours.green


def test_lookup_and_override() -> None:
    assert Inner().extra(Colours.red) == "inner red"
    assert Outer().extra(Colours.red) == "outer red"
    assert Outer().extra(Colours.green) == 1


def test_missing_attribute() -> None:
    with pytest.raises(TypedAttributeLookupError, match="^Attribute not found$"):
        TypedAttributeProvider().extra(Colours.red)

    assert issubclass(TypedAttributeLookupError, LookupError)


@pytest.mark.parametrize("default", [None, 0, "fallback"])
def test_missing_attribute_default(default: object) -> None:
    assert TypedAttributeProvider().extra(Colours.red, default) == default


def test_default_ignored_when_present() -> None:
    assert Inner().extra(Colours.green, 99) == 1


def test_base_provider_has_no_attributes() -> None:
    assert TypedAttributeProvider().extra_attributes == {}


def test_getter_key_error_propagates() -> None:
    class Faulty(TypedAttributeProvider):
        @property
        def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
            return {Colours.red: self._fail}

        def _fail(self) -> str:
            raise KeyError("inside getter")

    with pytest.raises(KeyError, match="inside getter"):
        Faulty().extra(Colours.red)

    # A default does not hide the getter's error either.
    with pytest.raises(KeyError, match="inside getter"):
        Faulty().extra(Colours.red, None)


def test_getter_runs_on_each_lookup() -> None:
    calls: list[int] = []

    class Counting(TypedAttributeProvider):
        @property
        def extra_attributes(self) -> Mapping[Any, Callable[[], Any]]:
            return {Colours.green: lambda: calls.append(1) or len(calls)}

    provider = Counting()
    assert provider.extra(Colours.green) == 1
    assert provider.extra(Colours.green) == 2


def test_set_requires_annotations() -> None:
    with pytest.raises(TypeError, match="^Attribute 'blue' is missing its type"):

        class Missing(TypedAttributeSet):
            blue = typed_attribute()


def test_set_rejects_unannotated_method() -> None:
    with pytest.raises(TypeError, match="^Attribute 'helper' is missing its type"):

        class WithMethod(TypedAttributeSet):
            def helper(self) -> None:
                pass


def test_set_allows_private_names() -> None:
    class WithPrivate(TypedAttributeSet):
        blue: bytes = typed_attribute()
        _cache = {}

    assert WithPrivate._cache == {}


def test_set_subclassing() -> None:
    class MoreColours(Colours):
        blue: bytes = typed_attribute()

    assert MoreColours.red is Colours.red
    assert MoreColours.blue is not Colours.red

    with pytest.raises(TypeError, match="'black' is missing"):

        class Broken(MoreColours):
            black = 0
