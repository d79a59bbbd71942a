"""Run the examples of upstream's documentation (docs/*.rst) against our anyio.

An example is a ``.. code-block:: python`` directive, a literal block after a
paragraph ending in ``::``, or a ``.. literalinclude::`` of a snippet file.
Sybil's reST lexers find the directives; literal blocks use Sybil's block
lexer with a pattern for the ``::`` marker. Each example that is a complete
program runs in a fresh process once per backend; where the text says what it
prints ("... gives the following output::"), stdout is compared with that.
"""

from __future__ import annotations

import ast
import asyncio
import importlib.util
import json
import re
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sybil import Document
from sybil.parsers.abstract.lexers import BlockLexer
from sybil.parsers.rest.lexers import END_PATTERN_TEMPLATE, DirectiveLexer
from tests._backends import ASYNCIO_IDS, BACKEND_IDS, TRIO, backend

from .tests_run import run_bounded

EXAMPLE_TIMEOUT = 10.0

# A paragraph line ending in "::" (not a directive) opens a literal block.
_LITERAL_START = re.compile(
    r"^(?P<prefix>[ \t]*)(?!\.\.)[^\n]*\S[^\n]*::[ \t]*\n(?=[ \t]*\n)", re.MULTILINE
)
_OUTPUT_PROSE = re.compile(r"\boutput\b|\bprints?\b", re.IGNORECASE)
_APPROXIMATE = re.compile(r"\blike\b|\bsimilar\b|\bsomething\b", re.IGNORECASE)
_HEADING = re.compile(r"^[=\-~+^*#]{3,}[ \t]*$", re.MULTILINE)
_EXTERNAL_HOST = re.compile(
    r"""["'](?!localhost)[\w-]+(?:\.[\w-]+)*\.(?:com|org|net|io)["']"""
)

# Runs before the example: a bare anyio.run() picks the backend under test.
_BOOTSTRAP = r"""
import asyncio, json, runpy, sys, warnings
backend, options, path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
import anyio
_original = anyio.run
def _run(func, *args, backend=None, backend_options=None):
    if backend is None:
        backend, backend_options = _default, {**_options, **(backend_options or {})}
    return _original(func, *args, backend=backend, backend_options=backend_options)
_default, _options = backend, options
anyio.run = _run
if options.get("use_uvloop"):
    import uvloop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
sys.argv = [path]
runpy.run_path(path, run_name="__main__")
"""


@dataclass
class DocExample:
    page: str
    line: int
    kind: str  # code-block | literal | literalinclude
    source: str
    origin: str  # where the code lives (page:line or snippet path)
    expected_output: str | None = None
    output_approximate: bool = False
    not_runnable: str | None = None
    results: dict[str, str] = field(default_factory=dict)
    details: dict[str, str] = field(default_factory=dict)


class _LiteralBlockLexer(BlockLexer):
    def __init__(self) -> None:
        super().__init__(_LITERAL_START, END_PATTERN_TEMPLATE)


def _blocks(
    document: Document, docs_dir: Path
) -> Iterator[tuple[int, int, str, str, str, str]]:
    """(start, end, kind, language, source, origin) for every block on a page."""
    for region in DirectiveLexer(
        directive=r"code-block|code|sourcecode", arguments=r".*"
    )(document):
        language = (region.lexemes.get("arguments") or "").strip()
        yield (
            region.start,
            region.end,
            "code-block",
            language,
            str(region.lexemes["source"]),
            "",
        )

    for region in DirectiveLexer(directive=r"literalinclude", arguments=r".+")(
        document
    ):
        target = (docs_dir / region.lexemes["arguments"].strip()).resolve()
        source = target.read_text(encoding="utf-8") if target.is_file() else ""
        language = "python" if target.suffix == ".py" else target.suffix.lstrip(".")
        yield (
            region.start,
            region.end,
            "literalinclude",
            language,
            source,
            str(target.relative_to(docs_dir.parent)),
        )

    for region in _LiteralBlockLexer()(document):
        # The block starts after the paragraph that introduces it ("...::"), so
        # that paragraph counts as prose between this block and the previous one.
        start = document.text.index("\n", region.start) + 1
        yield (
            start,
            region.end,
            "literal",
            "",
            str(region.lexemes["source"]).strip("\n") + "\n",
            "",
        )


def _is_python(language: str, source: str) -> bool:
    if language in ("python", "python3", "py"):
        return True
    if language:
        return False
    try:
        ast.parse(source)
    except SyntaxError:
        return False
    return True


def _entry_point(tree: ast.Module) -> bool:
    for node in tree.body:
        if isinstance(node, ast.If) and "__main__" in ast.unparse(node.test):
            return True
        if isinstance(node, ast.Expr | ast.Assign) and isinstance(node.value, ast.Call):
            func = node.value.func
            name = (
                func.attr
                if isinstance(func, ast.Attribute)
                else getattr(func, "id", "")
            )
            if name == "run":
                return True
    return False


def _undefined_names(tree: ast.Module) -> set[str]:
    """Names the code reads but never binds (ignoring scopes: a cheap, lenient check)."""
    import builtins

    bound: set[str] = set(dir(builtins)) | {"__name__", "__file__"}
    loaded: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (loaded if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return loaded - bound


def _why_not_runnable(example: DocExample) -> str | None:
    try:
        tree = ast.parse(example.source)
    except SyntaxError:
        return (
            "fragment: not a complete Python module (e.g. top-level await/async with)"
        )
    undefined = _undefined_names(tree)
    if undefined:
        return (
            f"fragment: uses names defined elsewhere ({', '.join(sorted(undefined))})"
        )
    if not _entry_point(tree):
        if any(
            isinstance(node, ast.AsyncFunctionDef) and node.name.startswith("test_")
            for node in tree.body
        ):
            return "pytest test module, not a program"
        return "no entry point: defines code but never runs it (no run() call or __main__ block)"
    if _EXTERNAL_HOST.search(example.source):
        return "needs Internet access (connects to a public host)"
    if re.search(r"#.*\bhangs\b", example.source, re.IGNORECASE):
        return "demonstrates a hang (the example says so)"
    if re.search(
        r"\.serve\(|serve_forever|sleep_forever\(\)|async for [^\n]* in (udp|unix|sock|server|listener)",
        example.source,
    ):
        return "server or endless loop: runs until interrupted"
    if re.search(
        r"connect_(tcp|unix)\(|create_connected_\w+_socket|SIGTERM|SIGINT|open_signal_receiver",
        example.source,
    ):
        return "needs a peer (server process) or an external signal to finish"
    missing = _missing_modules(tree)
    if missing:
        return f"imports placeholder or unavailable modules ({', '.join(missing)})"
    newer = [name for name in _asyncio_attributes(tree) if not hasattr(asyncio, name)]
    if newer:
        return f"needs a newer Python (asyncio.{', asyncio.'.join(newer)})"
    placeholders = [
        path for path in _absolute_paths(tree) if not Path(path).parent.exists()
    ]
    if placeholders:
        return f"uses placeholder file paths ({', '.join(placeholders)})"
    return None


def _missing_modules(tree: ast.Module) -> list[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module.split(".")[0])
    return sorted(name for name in names if importlib.util.find_spec(name) is None)


def _asyncio_attributes(tree: ast.Module) -> list[str]:
    return sorted(
        {
            node.attr
            for node in ast.walk(tree)
            if isinstance(node, ast.Attribute)
            and isinstance(node.value, ast.Name)
            and node.value.id == "asyncio"
        }
    )


def _absolute_paths(tree: ast.Module) -> list[str]:
    return sorted(
        {
            node.value
            for node in ast.walk(tree)
            if isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and re.fullmatch(r"/[\w.-]+(/[\w.-]+)+", node.value)
        }
    )


def applicable_backends(source: str) -> tuple[str, ...]:
    """Backends an example exercises: asyncio-specific code means asyncio only."""
    if re.search(r"^\s*(import asyncio|from asyncio\b)", source, re.MULTILINE):
        return ASYNCIO_IDS
    if re.search(r"^\s*import trio\b", source, re.MULTILINE) and "trio.run(" in source:
        return (TRIO,)
    return BACKEND_IDS


def collect(root: Path) -> list[DocExample]:
    docs_dir = (root / "docs").resolve()
    examples: list[DocExample] = []
    for page in sorted(docs_dir.glob("*.rst")):
        if page.name == "versionhistory.rst":
            continue
        document = Document(page.read_text(encoding="utf-8"), str(page))
        blocks = sorted(_blocks(document, docs_dir), key=lambda block: block[0])
        # Literal blocks inside directives (e.g. a note) are found twice; keep the outer.
        kept: list[tuple[int, int, str, str, str, str]] = []
        for block in blocks:
            if kept and block[0] < kept[-1][1]:
                continue
            kept.append(block)

        outputs: set[int] = set()
        for index, (start, end, kind, language, source, origin) in enumerate(kept):
            if index in outputs or not _is_python(language, source):
                continue
            line = document.text.count("\n", 0, start) + 1
            example = DocExample(
                page.name, line, kind, source, origin or f"{page.name}:{line}"
            )
            if index + 1 < len(kept):
                next_start, _, next_kind, next_language, next_source, _ = kept[
                    index + 1
                ]
                between = document.text[end:next_start]
                if (
                    _OUTPUT_PROSE.search(between)
                    and not _HEADING.search(between)
                    and len(between) < 400
                    and next_kind != "literalinclude"
                    and next_language not in ("python", "python3", "py")
                ):
                    example.expected_output = next_source
                    example.output_approximate = bool(_APPROXIMATE.search(between))
                    outputs.add(index + 1)
            if example.expected_output is None:
                example.expected_output = _output_from_comments(source)
            example.not_runnable = _why_not_runnable(example)
            examples.append(example)
    return examples


_OUTPUT_COMMENT = re.compile(r"#\s*Output:\s*(?P<rest>.*)$")


def _output_from_comments(source: str) -> str | None:
    """What the snippet's own comments say it prints.

    Either a ``# Output:`` line followed by ``# line`` comments, or single
    ``# Output: "text"`` remarks (also after a print call), read in order.
    """
    lines: list[str] = []
    found = False
    source_lines = source.splitlines()
    index = 0
    while index < len(source_lines):
        match = _OUTPUT_COMMENT.search(source_lines[index])
        index += 1
        if match is None:
            continue
        found = True
        rest = match["rest"].strip()
        if rest:
            lines.append(rest[1:-1] if rest[:1] == rest[-1:] == '"' else rest)
            continue
        while index < len(source_lines) and source_lines[index].lstrip().startswith(
            "#"
        ):
            lines.append(source_lines[index].lstrip()[1:].strip())
            index += 1
    return "\n".join(lines) + "\n" if found else None


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def run_examples(
    examples: list[DocExample], env: dict[str, str], deadline: float
) -> None:
    import time

    for example in examples:
        if example.not_runnable:
            continue
        for backend_id in BACKEND_IDS:
            if backend_id not in applicable_backends(example.source):
                example.results[backend_id] = "n/a"
                continue
            if time.monotonic() > deadline:
                example.results[backend_id] = "not-run"
                continue
            name, options = backend(backend_id)
            with tempfile.TemporaryDirectory() as tmp:
                program = Path(tmp) / "example.py"
                program.write_text(example.source, encoding="utf-8")
                out_path = Path(tmp) / "out.txt"
                with open(out_path, "w+", encoding="utf-8") as out:
                    command = [
                        sys.executable,
                        "-c",
                        _BOOTSTRAP,
                        name,
                        json.dumps(options),
                        str(program),
                    ]
                    exit_code = run_bounded(
                        command,
                        cwd=Path(tmp),
                        env=env,
                        stdout=out,
                        timeout=EXAMPLE_TIMEOUT,
                    )
                output = out_path.read_text(encoding="utf-8", errors="replace")
                status = (
                    "timeout"
                    if exit_code is None
                    else "passed"
                    if exit_code == 0
                    else "failed"
                )
            if (
                status == "passed"
                and example.expected_output is not None
                and not example.output_approximate
            ):
                got, want = _normalise(output), _normalise(example.expected_output)
                if got != want:
                    same_lines = sorted(got.splitlines()) == sorted(want.splitlines())
                    status = "output-order" if same_lines else "output-mismatch"
                    example.details[backend_id] = output[-800:]
            elif status != "passed":
                example.details[backend_id] = output[-800:]
            example.results[backend_id] = status


def summarise(examples: list[DocExample]) -> dict[str, object]:
    pages: dict[str, dict[str, object]] = {}
    for example in examples:
        page = pages.setdefault(
            example.page,
            {"examples": 0, "not_runnable": 0, **{b: {} for b in BACKEND_IDS}},
        )
        page["examples"] = int(page["examples"]) + 1  # type: ignore[call-overload]
        if example.not_runnable:
            page["not_runnable"] = int(page["not_runnable"]) + 1  # type: ignore[call-overload]
        for backend_id, status in example.results.items():
            counts = page[backend_id]
            assert isinstance(counts, dict)
            counts[status] = counts.get(status, 0) + 1
    return {
        "pages": pages,
        "examples": [
            {
                "page": example.page,
                "line": example.line,
                "kind": example.kind,
                "origin": example.origin,
                "not_runnable": example.not_runnable,
                "output_compared": example.expected_output is not None
                and not example.output_approximate,
                "results": example.results,
                "details": example.details,
            }
            for example in examples
        ],
    }
