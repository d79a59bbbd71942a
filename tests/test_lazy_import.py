"""``import anyio`` imports nothing else; names and submodules load on first use.

httpcore does ``import anyio`` and then uses ``anyio.streams.tls.TLSAttribute``;
every public submodule must be reachable that way, ``dir()`` must list it, and
public objects report the public module (``anyio.Event``) as upstream does.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import types
import warnings
from pathlib import Path
from textwrap import dedent

import pytest

import anyio
import anyio.abc
import anyio.streams

SUBMODULES = (
    "abc",
    "from_thread",
    "functools",
    "itertools",
    "lowlevel",
    "streams",
    "to_interpreter",
    "to_process",
    "to_thread",
)
STREAM_SUBMODULES = ("buffered", "file", "memory", "stapled", "text", "tls")


def _run_fresh(code: str) -> object:
    """Run `code` in a new interpreter (anyio not yet imported); its JSON output."""
    process = subprocess.run(
        [sys.executable, "-c", dedent(code)], capture_output=True, check=True, text=True
    )
    return json.loads(process.stdout)


def test_bare_import_loads_no_submodule_or_implementation() -> None:
    loaded = _run_fresh(
        """\
        import json, sys
        import anyio
        print(json.dumps(sorted(m for m in sys.modules if m.startswith("anyio"))))
        """
    )
    assert isinstance(loaded, list)
    assert "anyio" in loaded
    for name in SUBMODULES:
        assert f"anyio.{name}" not in loaded
    # Nor the C++ core, nor the event loop machinery.
    assert "anyio._cpp" not in loaded
    assert "asyncio" not in _run_fresh(
        "import json, sys, anyio; print(json.dumps(list(sys.modules)))"
    )


def test_submodules_reachable_as_attributes_without_import() -> None:
    result = _run_fresh(
        f"""\
        import json, types
        import anyio
        out = {{}}
        for name in {SUBMODULES!r}:
            out[name] = isinstance(getattr(anyio, name), types.ModuleType)
        for name in {STREAM_SUBMODULES!r}:
            out["streams." + name] = isinstance(
                getattr(anyio.streams, name), types.ModuleType
            )
        out["TLSAttribute"] = anyio.streams.tls.TLSAttribute.__name__
        out["StapledByteStream"] = anyio.streams.stapled.StapledByteStream.__name__
        print(json.dumps(out))
        """
    )
    expected: dict[str, object] = dict.fromkeys(SUBMODULES, True)
    expected.update({f"streams.{name}": True for name in STREAM_SUBMODULES})
    expected.update(TLSAttribute="TLSAttribute", StapledByteStream="StapledByteStream")
    assert result == expected


def test_dir_lists_public_names_and_submodules() -> None:
    listed = dir(anyio)
    for name in (*SUBMODULES, "Event", "create_task_group", "TASK_STATUS_IGNORED"):
        assert name in listed
    assert not [name for name in listed if name.startswith("_")]
    for name in STREAM_SUBMODULES:
        assert name in dir(anyio.streams)
    for name in ("AsyncBackend", "TestRunner", "TaskGroup", "SocketStream"):
        assert name in dir(anyio.abc)


def test_every_listed_name_resolves() -> None:
    for name in dir(anyio):
        assert getattr(anyio, name) is not None
        if name not in SUBMODULES:
            assert not isinstance(getattr(anyio, name), types.ModuleType)
    for name in dir(anyio.abc):
        getattr(anyio.abc, name)


def test_unknown_names_raise_attribute_error() -> None:
    with pytest.raises(AttributeError, match="module 'anyio' has no attribute 'nope'"):
        anyio.nope  # type: ignore[attr-defined]  # noqa: B018
    with pytest.raises(
        AttributeError, match="module 'anyio.streams' has no attribute 'nope'"
    ):
        anyio.streams.nope  # type: ignore[attr-defined]  # noqa: B018


def test_public_objects_report_the_public_module() -> None:
    assert anyio.sleep.__module__ == "anyio"
    assert anyio.CancelScope.__module__ == "anyio"
    assert anyio.Event.__module__ == "anyio"
    assert anyio.BrokenResourceError.__module__ == "anyio"
    assert anyio.current_effective_deadline.__module__ == "anyio"
    assert anyio.abc.UDPSocket.__module__ == "anyio.abc"
    assert anyio.abc.AsyncBackend.__module__ == "anyio.abc"


@pytest.mark.parametrize(
    ("module", "old", "new"),
    [
        ("anyio", "BrokenWorkerIntepreter", "anyio.BrokenWorkerInterpreter"),
        ("anyio.abc", "CancelScope", "anyio.CancelScope"),
        ("anyio.abc", "CapacityLimiter", "anyio.CapacityLimiter"),
        ("anyio.abc", "Condition", "anyio.Condition"),
        ("anyio.abc", "Event", "anyio.Event"),
        ("anyio.abc", "Lock", "anyio.Lock"),
        ("anyio.abc", "Semaphore", "anyio.Semaphore"),
    ],
)
def test_deprecated_aliases_warn_and_resolve(module: str, old: str, new: str) -> None:
    with pytest.warns(DeprecationWarning, match=f"use {new} instead") as records:
        value = getattr(sys.modules[module], old)
    assert records[0].filename == __file__
    new_module, _, attr = new.rpartition(".")
    assert value is getattr(sys.modules[new_module], attr)
    # Listed nowhere, and never cached: every use warns.
    assert old not in dir(sys.modules[module])
    with warnings.catch_warnings(record=True) as again:
        warnings.simplefilter("always")
        getattr(sys.modules[module], old)
    assert [w.category for w in again] == [DeprecationWarning]


def test_type_checking_imports_match_the_runtime_table() -> None:
    """The TYPE_CHECKING imports (for type checkers) and the lazy table agree."""
    source = Path(anyio.__file__).read_text()
    block = next(
        node
        for node in ast.parse(source).body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    static: dict[str, str] = {}
    submodules: set[str] = set()
    for node in block.body:
        assert isinstance(node, ast.ImportFrom)
        for alias in node.names:
            assert alias.asname == alias.name
            if node.module is None:
                submodules.add(alias.name)
            else:
                static[alias.name] = "." * node.level + node.module
    assert static == anyio._PUBLIC
    assert submodules == set(anyio._SUBMODULES) == set(SUBMODULES)
