"""python -m conformance.signatures: compare our public signatures with upstream's.

Both packages are read the way a type checker reads them (mypy's semantic
model: stubs of the C++ extension, overloads, ``TYPE_CHECKING`` branches,
generics), not by ``inspect``: most of our primitives are C++ types whose
signatures only their stub knows, and several of upstream's overloads exist
only for type checkers. Runtime agreement of the stub is stubtest's job (see
``conformance/typecheck.py``).

For every public module, every exported name is dumped as text: functions as
their (overloaded) signatures, classes as their type parameters, public
ancestors, constructor and every public member (inherited ones included, so
a different class layout is not a difference). Type variables are renamed by
position and private classes by their last name component, so only what a
user of the API sees is compared. ``--update`` is not offered: differences
that are deliberate go into ``signatures_allowed.toml`` with a reason.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
ALLOWED = HERE / "signatures_allowed.toml"

PUBLIC_MODULES = (
    "anyio",
    "anyio.abc",
    "anyio.from_thread",
    "anyio.functools",
    "anyio.itertools",
    "anyio.lowlevel",
    "anyio.pytest_plugin",
    "anyio.streams.buffered",
    "anyio.streams.file",
    "anyio.streams.memory",
    "anyio.streams.stapled",
    "anyio.streams.text",
    "anyio.streams.tls",
    "anyio.to_interpreter",
    "anyio.to_process",
    "anyio.to_thread",
)

# Members every class has (or that say nothing about the API).
_SKIPPED_MEMBERS = {
    "__init__",
    "__new__",
    "__slots__",
    "__module__",
    "__dict__",
    "__doc__",
    "__annotations__",
    "__match_args__",
    "__dataclass_fields__",
    "__dataclass_params__",
    "__weakref__",
    "__orig_bases__",
    "__parameters__",
    "__abstractmethods__",
    "__firstlineno__",
    "__static_attributes__",
    "__final__",
    "__qualname__",
    "__protocol_attrs__",
    "__non_callable_proto_members__",
}


class _Formatter:
    """Types as text, independent of where a package defines its classes."""

    def __init__(self, public: dict[str, str]) -> None:
        self.public = public

    def name(self, fullname: str) -> str:
        if fullname in self.public:
            return self.public[fullname]
        if fullname.startswith("anyio."):
            return "anyio.<private>." + fullname.rpartition(".")[2]
        return fullname.removeprefix("builtins.")

    def type(self, typ: Any) -> str:
        from mypy import types as t

        typ = t.get_proper_type(typ)
        if typ is None:
            return "<untyped>"
        if isinstance(typ, t.Instance):
            if typ.last_known_value is not None:
                return self.type(typ.last_known_value)
            if typ.type.fullname == "builtins.tuple":
                return f"tuple[{self.type(typ.args[0])}, ...]"
            coroutine = self._private_coroutine(typ)
            if coroutine is not None:
                return self.type(coroutine)
            text = self.name(typ.type.fullname)
            if typ.args:
                text += "[" + ", ".join(self.type(arg) for arg in typ.args) + "]"
            return text
        if isinstance(typ, t.CallableType):
            return self.callable(typ)
        if isinstance(typ, t.Overloaded):
            return " & ".join(f"({self.callable(item)})" for item in typ.items)
        if isinstance(typ, t.UnionType):
            items = sorted(self.type(item) for item in typ.items)
            return " | ".join(items)
        if isinstance(typ, t.TupleType):
            items = ", ".join(self.type(item) for item in typ.items)
            if not typ.partial_fallback.type.fullname == "builtins.tuple":
                return f"{self.name(typ.partial_fallback.type.fullname)}({items})"
            return f"tuple[{items or '()'}]"
        if isinstance(typ, t.TypeType):
            return f"type[{self.type(typ.item)}]"
        if isinstance(typ, t.LiteralType):
            return f"Literal[{typ.value!r}]"
        if isinstance(typ, t.NoneType):
            return "None"
        if isinstance(typ, t.AnyType):
            return "Any"
        if isinstance(typ, t.UninhabitedType):
            return "Never"
        if isinstance(typ, (t.TypeVarType, t.ParamSpecType, t.TypeVarTupleType)):
            prefix = {"TypeVarType": "T", "ParamSpecType": "P"}.get(
                type(typ).__name__, "Ts"
            )
            text = f"{prefix}{typ.id.raw_id}"
            if (
                isinstance(typ, t.ParamSpecType)
                and typ.flavor != t.ParamSpecFlavor.BARE
            ):
                text += ".args" if typ.flavor == t.ParamSpecFlavor.ARGS else ".kwargs"
            return text
        if isinstance(typ, t.UnpackType):
            return f"*{self.type(typ.type)}"
        if isinstance(typ, t.Parameters):
            return "[" + self.arguments(typ) + "]"
        if isinstance(typ, t.TypedDictType):
            return self.name(typ.fallback.type.fullname)
        return str(typ)

    def _private_coroutine(self, typ: Any) -> Any:
        """A private anyio class that is a Coroutine reads as that Coroutine:
        what users may do with the object is what Coroutine allows."""
        from mypy.maptype import map_instance_to_supertype

        fullname = typ.type.fullname
        if not fullname.startswith("anyio.") or fullname in self.public:
            return None
        for base in typ.type.mro:
            if base.fullname == "typing.Coroutine":
                return map_instance_to_supertype(typ, base)
        return None

    def type_var_decl(self, var: Any) -> str:
        from mypy import nodes
        from mypy import types as t

        text = self.type(var)
        if isinstance(var, t.TypeVarType):
            if var.values:
                text += "(" + ", ".join(self.type(v) for v in var.values) + ")"
            elif var.upper_bound is not None:
                bound = self.type(var.upper_bound)
                if bound not in ("object", "object | None"):
                    text += f"<:{bound}"
            if var.id.raw_id < 0:
                pass  # a function's type variable: variance means nothing
            elif var.variance == nodes.COVARIANT:
                text += "+"
            elif var.variance == nodes.CONTRAVARIANT:
                text += "-"
        return text

    def arguments(self, typ: Any, defaults: dict[str, str] | None = None) -> str:
        from mypy.nodes import ArgKind

        parts: list[str] = []
        star_seen = False
        for kind, name, arg_type in zip(
            typ.arg_kinds, typ.arg_names, typ.arg_types, strict=True
        ):
            text = self.type(arg_type)
            if kind == ArgKind.ARG_STAR:
                parts.append(f"*{name}: {text}")
                star_seen = True
            elif kind == ArgKind.ARG_STAR2:
                parts.append(f"**{name}: {text}")
            else:
                if kind.is_named() and not star_seen:
                    parts.append("*")
                    star_seen = True
                label = name if name is not None else "_"
                part = f"{label}: {text}"
                if kind.is_optional():
                    part += " = " + (defaults or {}).get(label, "...")
                parts.append(part)
        # positional-only markers: mypy names them None or "__x"
        return ", ".join(parts)

    def callable(self, typ: Any, defaults: dict[str, str] | None = None) -> str:
        variables = ""
        if typ.variables:
            variables = (
                "[" + ", ".join(self.type_var_decl(v) for v in typ.variables) + "]"
            )
        return (
            f"{variables}({self.arguments(typ, defaults)}) -> {self.type(typ.ret_type)}"
        )


def _default_text(expr: Any) -> str:
    from mypy import nodes

    if expr is None or isinstance(expr, nodes.EllipsisExpr):
        return "..."
    if isinstance(expr, nodes.NameExpr):
        return expr.name
    if isinstance(expr, (nodes.IntExpr, nodes.FloatExpr)):
        return repr(expr.value)
    if isinstance(expr, (nodes.StrExpr, nodes.BytesExpr)):
        return repr(expr.value)
    if isinstance(expr, nodes.UnaryExpr):
        return expr.op + _default_text(expr.expr)
    if isinstance(expr, nodes.MemberExpr):
        return expr.name
    return "<expr>"


def _defaults(func: Any) -> dict[str, str]:
    """Default values written in the source; stubs' ``...`` say nothing."""
    arguments = getattr(func, "arguments", None) or []
    return {
        arg.variable.name: _default_text(arg.initializer)
        for arg in arguments
        if arg.initializer is not None
    }


def _drop_self(typ: Any) -> Any:
    if typ.arg_types:
        return typ.copy_modified(
            arg_types=typ.arg_types[1:],
            arg_kinds=typ.arg_kinds[1:],
            arg_names=typ.arg_names[1:],
        )
    return typ


def _function_text(fmt: _Formatter, node: Any, method: bool) -> list[str]:
    """One entry per signature (several for an overloaded function)."""
    from mypy import nodes, types

    if isinstance(node, nodes.OverloadedFuncDef):
        texts: list[str] = []
        for item in node.items:
            texts += _function_text(fmt, item, method)
        return texts
    prefix = ""
    if isinstance(node, nodes.Decorator):
        func = node.func
        typ = node.var.type if node.var.type is not None else func.type
        if node.var.is_property:
            return ["property -> " + _property_type(fmt, func)]
    else:
        func, typ = node, node.type
    typ = types.get_proper_type(typ)
    if func.is_static:
        prefix = "static "
    elif func.is_class:
        prefix = "classmethod "
    if getattr(func, "is_abstract", False) or getattr(func, "abstract_status", 0):
        prefix += "abstract "
    if isinstance(typ, types.CallableType):
        if method and not func.is_static:
            typ = _drop_self(typ)
        return [prefix + fmt.callable(typ, _defaults(func))]
    if typ is None:
        return [prefix + "<untyped>"]
    return [prefix + fmt.type(typ)]


def _property_type(fmt: _Formatter, func: Any) -> str:
    from mypy import types

    typ = types.get_proper_type(func.type)
    if isinstance(typ, types.CallableType):
        return fmt.type(typ.ret_type)
    return "<untyped>"


def _member_text(fmt: _Formatter, node: Any) -> list[str]:
    from mypy import nodes

    if isinstance(node, nodes.Var):
        if node.is_property:
            return ["attribute " + fmt.type(node.type)]
        return ["attribute " + fmt.type(node.type)]
    if isinstance(node, nodes.OverloadedFuncDef) and node.is_property:
        first = node.items[0]
        assert isinstance(first, nodes.Decorator)
        # a property with a setter reads and writes like an attribute
        return ["attribute " + _property_type(fmt, first.func)]
    if isinstance(node, nodes.Decorator) and node.var.is_property:
        return ["read-only " + _property_type(fmt, node.func)]
    if isinstance(node, (nodes.FuncDef, nodes.OverloadedFuncDef, nodes.Decorator)):
        return _function_text(fmt, node, method=True)
    if isinstance(node, nodes.TypeInfo):
        return ["class"]
    return [type(node).__name__]


def _class_entries(fmt: _Formatter, name: str, info: Any) -> dict[str, list[str]]:
    from mypy import typeops

    entries: dict[str, list[str]] = {}
    flags = []
    if info.is_protocol:
        flags.append("protocol")
    if info.is_final:
        flags.append("final")
    if info.is_abstract:
        flags.append("abstract")
    params = ", ".join(fmt.type_var_decl(v) for v in info.defn.type_vars)
    ancestors = sorted(
        {
            fmt.name(base.fullname)
            for base in info.mro[1:]
            if not fmt.name(base.fullname).startswith("anyio.<private>")
            and base.fullname not in ("builtins.object", "typing.Generic")
        }
    )
    entries[name] = [
        f"class[{params}] {' '.join(flags)}".rstrip(),
        "bases: " + ", ".join(ancestors),
    ]
    constructor = typeops.type_object_type(info)
    entries[f"{name}()"] = [fmt.type(constructor)]
    seen: set[str] = set()
    for base in info.mro:
        if not base.fullname.startswith("anyio."):
            continue
        for member, symbol in base.names.items():
            if member in seen or member in _SKIPPED_MEMBERS:
                continue
            if member.startswith("_") and not (
                member.startswith("__") and member.endswith("__")
            ):
                continue
            seen.add(member)
            if symbol.node is None:
                continue
            entries[f"{name}.{member}"] = _member_text(fmt, symbol.node)
    return entries


def dump(package_dir: Path, python_version: str) -> dict[str, list[str]]:
    """Every public name of the anyio found in `package_dir`, as text."""
    from mypy import build, nodes, types
    from mypy.modulefinder import BuildSource
    from mypy.options import Options

    options = Options()
    options.python_version = tuple(int(p) for p in python_version.split("."))
    options.mypy_path = [str(package_dir)]
    options.incremental = False
    options.ignore_missing_imports = True
    options.implicit_reexport = False  # as under --strict
    options.python_executable = sys.executable
    options.preserve_asts = True
    with tempfile.TemporaryDirectory() as tmp:
        probe = Path(tmp) / "signature_probe.py"
        probe.write_text("".join(f"import {m}\n" for m in PUBLIC_MODULES))
        result = build.build([BuildSource(str(probe), "signature_probe")], options)

    public: dict[str, str] = {}
    exported: list[tuple[str, Any]] = []
    for module in PUBLIC_MODULES:
        tree = result.files.get(module)
        if tree is None:
            continue
        for name, symbol in tree.names.items():
            if name.startswith("_") or not symbol.module_public:
                continue
            if isinstance(symbol.node, nodes.MypyFile):
                continue
            node = symbol.node
            if isinstance(node, nodes.TypeAlias):
                # "Name = SomeClass" exports the class itself
                proper = types.get_proper_type(node.target)
                if isinstance(proper, types.Instance) and not node.alias_tvars:
                    if all(isinstance(a, types.AnyType) for a in proper.args):
                        node = proper.type
            exported.append((f"{module}.{name}", node))
            if isinstance(node, nodes.TypeInfo):
                public.setdefault(node.fullname, f"{module}.{name}")
            elif isinstance(node, nodes.TypeAlias):
                target = node.target
                proper = types.get_proper_type(target)
                if isinstance(proper, types.Instance):
                    public.setdefault(proper.type.fullname, f"{module}.{name}")

    fmt = _Formatter(public)
    out: dict[str, list[str]] = {}
    for qualified, node in exported:
        if isinstance(node, nodes.TypeInfo):
            out.update(_class_entries(fmt, qualified, node))
        elif isinstance(
            node, (nodes.FuncDef, nodes.OverloadedFuncDef, nodes.Decorator)
        ):
            out[qualified] = _function_text(fmt, node, method=False)
        elif isinstance(node, nodes.Var):
            proper = types.get_proper_type(node.type)
            if isinstance(proper, (types.CallableType, types.Overloaded)):
                # a function object bound to a name reads as that function
                out[qualified] = [
                    fmt.callable(item)
                    for item in (
                        proper.items
                        if isinstance(proper, types.Overloaded)
                        else [proper]
                    )
                ]
            else:
                out[qualified] = ["variable " + fmt.type(node.type)]
        elif isinstance(node, nodes.TypeAlias):
            out[qualified] = ["alias " + fmt.type(node.target)]
        elif isinstance(node, nodes.TypeVarLikeExpr):
            out[qualified] = ["type variable"]
        else:
            out[qualified] = [type(node).__name__]
    return out


def _load_allowed() -> dict[str, dict[str, Any]]:
    if not ALLOWED.exists():
        return {}
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        import tomli as tomllib
    with open(ALLOWED, "rb") as file:
        data = tomllib.load(file)
    return {entry["name"]: entry for entry in data.get("allowed", [])}


def _defaults_agree(theirs: str, ours: str) -> bool:
    """Equal signatures, where a stub's ``= ...`` matches any default."""
    if theirs == ours:
        return True
    a = theirs.split(" = ")
    b = ours.split(" = ")
    if len(a) != len(b):
        return False
    for index, (x, y) in enumerate(zip(a, b, strict=True)):
        if index == 0:
            if x != y:
                return False
            continue
        # each piece starts with the default value, up to the next ", " or ")"
        x_value, x_rest = _split_default(x)
        y_value, y_rest = _split_default(y)
        if x_rest != y_rest:
            return False
        if "..." not in (x_value, y_value) and x_value != y_value:
            return False
    return True


def _split_default(piece: str) -> tuple[str, str]:
    for index, char in enumerate(piece):
        if char in ",)":
            return piece[:index], piece[index:]
    return piece, ""


def compare(
    theirs: dict[str, list[str]], ours: dict[str, list[str]]
) -> tuple[list[str], list[str]]:
    """(differences, names only we export)."""
    differences: list[str] = []
    for name in sorted(theirs):
        if name not in ours:
            differences.append(f"{name}: missing (upstream: {theirs[name]})")
            continue
        a, b = theirs[name], ours[name]
        if len(a) == len(b) and all(
            _defaults_agree(x, y) for x, y in zip(a, b, strict=True)
        ):
            continue
        differences.append(
            f"{name}:\n    upstream: "
            + "\n              ".join(a)
            + "\n    ours:     "
            + "\n              ".join(b)
        )
    extra = sorted(set(ours) - set(theirs))
    return differences, extra


def run(
    cache: Path, python_version: str, verbose: bool = False, dump_to: Path | None = None
) -> int:
    from .typecheck import ours_package, upstream_package

    theirs = dump(upstream_package(cache), python_version)
    ours = dump(ours_package(cache), python_version)
    if dump_to is not None:
        dump_to.mkdir(parents=True, exist_ok=True)
        for label, data in (("upstream", theirs), ("ours", ours)):
            (dump_to / f"{label}.json").write_text(json.dumps(data, indent=1))
    differences, extra = compare(theirs, ours)
    allowed = _load_allowed()
    names = [d.partition(":")[0] for d in differences]

    def is_allowed(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in allowed)

    unexpected = [
        d for d, n in zip(differences, names, strict=True) if not is_allowed(n)
    ]
    stale = sorted(
        pattern
        for pattern in allowed
        if not any(fnmatch.fnmatchcase(n, pattern) for n in names)
    )
    print(
        f"public signatures (Python {python_version}): {len(theirs)} upstream entries,"
        f" {len(differences)} differ, {len(differences) - len(unexpected)} of them"
        f" allowed; {len(extra)} names only here"
    )
    for line in unexpected if not verbose else differences:
        print(f"  {line}")
    if verbose and extra:
        print("  only here: " + ", ".join(extra))
    if stale:
        print("allow-list entries that no longer differ: " + ", ".join(stale))
    return 1 if unexpected or stale else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m conformance.signatures", description=__doc__
    )
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "anyio-sdist")
    parser.add_argument("--python-version", default="3.14")
    parser.add_argument("--dump", type=Path, help="write both dumps to this directory")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    return run(args.cache, args.python_version, args.verbose, args.dump)


if __name__ == "__main__":
    raise SystemExit(main())
