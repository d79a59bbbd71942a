"""Executes the Python examples in docs/*.md and README.md (see docs/writing-docs.md).

Every ```python block is a complete program, run once per backend: asyncio,
asyncio+uvloop and trio. Sybil's Markdown lexers find the blocks and the HTML
comment directives; the evaluator below runs each block in a fresh namespace.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from sybil import Document, Example, Region, Sybil
from sybil.integration.pytest import pytest_integration as _sybil_collector
from sybil.parsers.markdown.lexers import (
    DirectiveInHTMLCommentLexer,
    FencedCodeBlockLexer,
)
from tests._backends import BACKEND_IDS, BACKENDS
from tests._backends import backend as backend_config


def _plugin_autoloaded() -> bool:
    import os
    from importlib.metadata import entry_points

    if os.environ.get("PYTEST_DISABLE_PLUGIN_AUTOLOAD"):
        return False
    return any(ep.name == "anyio" for ep in entry_points(group="pytest11"))


# An installed anyio registers its plugin through the pytest11 entry point; a
# source checkout on PYTHONPATH (python/) has no entry point, so load it here.
# pytester drives the plugin's own tests (tests/test_pytest_plugin.py).
pytest_plugins = ["pytester"]
if not _plugin_autoloaded():
    pytest_plugins.append("anyio.pytest_plugin")

_BETWEEN_BLOCKS = re.compile(r"\s*")
# Sybil ends a one-line directive's region before its closing "-->".
_AFTER_DIRECTIVE = re.compile(r"\s*(?:-*->)?\s*")


@dataclass
class DocExample:
    source: str
    expected_output: str | None
    backends: frozenset[str]
    skip_reason: str | None
    min_python: tuple[int, int] | None = None


def _adjacent(text: str, end: int, start: int) -> bool:
    """Whether only whitespace separates text[end:start]."""
    return end <= start and _BETWEEN_BLOCKS.fullmatch(text, end, start) is not None


def _parse_backends(
    arguments: str, document: Document, position: int
) -> frozenset[str]:
    names = [name.strip() for name in arguments.split(",") if name.strip()]
    unknown = [name for name in names if name not in BACKENDS]
    if unknown or not names:
        raise ValueError(
            f"{document.path}: {document.line_column(position)}: unknown backend(s) "
            f"{unknown or arguments!r} in 'backends:' (use {', '.join(BACKENDS)})"
        )

    return frozenset(names)


def _parse_python(arguments: str, document: Document, position: int) -> tuple[int, int]:
    """`<!-- python: 3.11 -->`: the example needs that Python or later."""
    match = re.fullmatch(r"(\d+)\.(\d+)\+?", arguments)
    if match is None:
        raise ValueError(
            f"{document.path}: {document.line_column(position)}: 'python:' takes "
            f"a version such as 3.11, not {arguments!r}"
        )

    return int(match[1]), int(match[2])


class ProgramBlockParser:
    """Finds ```python blocks plus the directive before and the output after each."""

    def __init__(self, backend_id: str) -> None:
        self.backend_id = backend_id
        self.code_lexer = FencedCodeBlockLexer(language=r"[\w+-]+")
        self.directive_lexer = DirectiveInHTMLCommentLexer(
            directive=r"backends|skip|python", arguments=".*?"
        )

    def __call__(self, document: Document) -> Iterable[Region]:
        text = document.text
        blocks = sorted(self.code_lexer(document), key=lambda region: region.start)
        directives = list(self.directive_lexer(document))
        for index, block in enumerate(blocks):
            if block.lexemes["language"] != "python":
                continue

            expected = None
            if index + 1 < len(blocks):
                following = blocks[index + 1]
                if following.lexemes["language"] == "output" and _adjacent(
                    text, block.end, following.start
                ):
                    expected = str(following.lexemes["source"])

            backends = frozenset(BACKEND_IDS)
            skip_reason = None
            min_python = None
            # The directives right before the block, one per line, nearest first.
            boundary = block.start
            for directive in reversed(directives):
                if directive.end > boundary:
                    continue
                if not _AFTER_DIRECTIVE.fullmatch(text, directive.end, boundary):
                    break
                boundary = directive.start
                arguments = directive.lexemes["arguments"].strip()
                if directive.lexemes["directive"] == "skip":
                    skip_reason = arguments or "skipped in the documentation"
                elif directive.lexemes["directive"] == "python":
                    min_python = _parse_python(arguments, document, directive.start)
                else:
                    backends = _parse_backends(arguments, document, directive.start)

            parsed = DocExample(
                str(block.lexemes["source"]),
                expected,
                backends,
                skip_reason,
                min_python,
            )
            yield Region(block.start, block.end, parsed, self.evaluate)

    def evaluate(self, example: Example) -> None:
        spec: DocExample = example.parsed
        if spec.skip_reason is not None:
            pytest.skip(spec.skip_reason)
        if spec.min_python is not None and sys.version_info < spec.min_python:
            wanted = ".".join(map(str, spec.min_python))
            pytest.skip(f"example needs Python {wanted} or later")
        if self.backend_id not in spec.backends:
            pytest.skip(f"example runs on {', '.join(sorted(spec.backends))} only")

        backend, options = backend_config(self.backend_id)
        filename = f"{example.path}:{example.line}"
        output = run_program(spec.source, filename, backend, options)
        if spec.expected_output is not None and output != spec.expected_output:
            raise AssertionError(
                f"{filename}: the program printed\n{output!r}\nbut the docs show\n{spec.expected_output!r}"
            )


@contextlib.contextmanager
def _default_backend(backend: str, options: dict[str, Any]) -> Iterator[None]:
    """Make a bare anyio.run() pick `backend`; explicit choices stay untouched."""
    import anyio

    original: Callable[..., Any] | None = getattr(anyio, "run", None)
    if original is None:
        yield
        return

    def run(
        func: Callable[..., Any],
        *args: object,
        backend: str | None = None,
        backend_options: dict[str, Any] | None = None,
    ) -> Any:
        if backend is None:
            backend, backend_options = (
                default_backend,
                {**default_options, **(backend_options or {})},
            )
        return original(func, *args, backend=backend, backend_options=backend_options)

    default_backend, default_options = backend, options
    anyio.run = run  # type: ignore[assignment]
    try:
        yield
    finally:
        anyio.run = original  # type: ignore[assignment]


@contextlib.contextmanager
def _uvloop_for_plain_asyncio(enabled: bool) -> Iterator[None]:
    """Let asyncio.run() in asyncio-only examples create uvloop loops."""
    if not enabled:
        yield
        return

    import uvloop

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        previous = asyncio.get_event_loop_policy()
        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_event_loop_policy(previous)


def run_program(
    source: str, filename: str, backend: str, options: dict[str, Any]
) -> str:
    """Execute `source` as a __main__ module; return what it printed."""
    code = compile(source, filename, "exec", dont_inherit=True)
    namespace: dict[str, Any] = {"__name__": "__main__", "__file__": filename}
    captured = io.StringIO()
    with (
        _default_backend(backend, options),
        _uvloop_for_plain_asyncio(bool(options.get("use_uvloop"))),
        contextlib.redirect_stdout(captured),
    ):
        exec(code, namespace)

    sys.stdout.flush()
    return captured.getvalue()


_sybils = [
    Sybil(
        parsers=[ProgramBlockParser(backend_id)],
        patterns=["docs/*.md", "README.md"],
        name=backend_id,
    )
    for backend_id in BACKEND_IDS
]
# One collector per file; each item's id names its backend (sybil:<id>,line:N,...).
pytest_collect_file = _sybil_collector(*_sybils)
