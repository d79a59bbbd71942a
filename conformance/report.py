"""Counting outcomes and writing results.md."""

from __future__ import annotations

import re
from typing import Any

from .tests_run import BACKEND_IDS, NO_BACKEND, OUTCOMES, FileResult, backend_of

COLUMNS = (*BACKEND_IDS, NO_BACKEND)


def _empty() -> dict[str, int]:
    return dict.fromkeys(OUTCOMES, 0)


def tests_summary(files: list[FileResult]) -> dict[str, Any]:
    per_file: dict[str, Any] = {}
    totals = {column: _empty() for column in COLUMNS}
    outcomes: dict[str, str] = {}
    for result in files:
        counts = {column: _empty() for column in COLUMNS}
        for nodeid, outcome in sorted(result.outcomes.items()):
            counts[backend_of(nodeid)][outcome] += 1
            totals[backend_of(nodeid)][outcome] += 1
            outcomes[nodeid] = outcome
        per_file[result.path] = {
            "status": result.status,
            "duration_s": result.duration,
            "collect_errors": result.collect_errors,
            "counts": counts,
        }
    failures = {
        nodeid: message
        for result in files
        for nodeid, message in result.messages.items()
        if outcomes.get(nodeid) in ("failed", "error")
    }
    return {
        "totals": totals,
        "files": per_file,
        "outcomes": outcomes,
        "failure_messages": failures,
    }


def _first_error(message: str) -> str:
    """The telling line of a collection error, e.g. "ImportError: cannot import name 'X'"."""
    found = re.findall(r"^E\s+(\w+(?:Error|Exception)\b.*)$", message, re.MULTILINE)
    if not found:
        found = re.findall(r"^.*\berror\b.*$", message, re.MULTILINE | re.IGNORECASE)
    lines = message.strip().splitlines()
    text = found[-1] if found else lines[-1] if lines else "?"
    text = re.sub(r" \(/[^)]*\)", "", text.strip())  # drop absolute paths
    return text.replace("|", "\\|")[:160]


def _cell(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    if not total:
        return "–"
    parts = [f"{counts['passed']}/{total}"]
    for key, label in (
        ("failed", "F"),
        ("error", "E"),
        ("skipped", "S"),
        ("xfailed", "X"),
        ("crashed", "C"),
        ("timeout", "T"),
    ):
        if counts[key]:
            parts.append(f"{counts[key]}{label}")
    return " ".join(parts)


def file_line(result: FileResult) -> str:
    counts = _empty()
    for outcome in result.outcomes.values():
        counts[outcome] += 1
    extra = f" [{result.status}]" if result.status != "ok" else ""
    errors = (
        f" ({len(result.collect_errors)} collection errors, first:"
        f" {_first_error(result.collect_errors[0])})"
        if result.collect_errors
        else ""
    )
    return f"{result.path}: {_cell(counts)} in {result.duration}s{extra}{errors}"


def docs_line(docs: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for example in docs["examples"]:
        for status in example["results"].values():
            if status != "n/a":
                counts[status] = counts.get(status, 0) + 1
    runnable = sum(1 for example in docs["examples"] if not example["not_runnable"])
    return (
        f"docs: {runnable} runnable examples of {len(docs['examples'])}; runs: {counts}"
    )


def totals_line(tests: dict[str, Any] | None) -> str:
    if not tests:
        return "tests: not run"
    return "tests: " + "; ".join(
        f"{column}: {_cell(counts)}"
        for column, counts in tests["totals"].items()
        if sum(counts.values())
    )


def covered_by(entry: dict[str, Any]) -> list[str]:
    """The node ids an exclusion's ``covered_by`` names (a string or a list)."""
    value = entry.get("covered_by", [])
    return [value] if isinstance(value, str) else list(value)


def _covered_by(entry: dict[str, Any]) -> str:
    return "<br>".join(f"`{nodeid}`" for nodeid in covered_by(entry)) or "–"


def markdown(results: dict[str, Any]) -> str:
    lines = [
        f"# Conformance with upstream anyio {results['upstream']}",
        "",
        f"Upstream's own test suite and documentation examples, run by `python -m conformance`"
        f" against anyio {results['anyio']['version']} on Python {results['python']}"
        f" ({results['platform']}) in {results['duration_s']} s.",
        "",
    ]
    tests = results.get("tests")
    if tests:
        lines += [
            "## Tests",
            "",
            "Cells: passed/total, then F failed, E error, S skipped, X xfailed, C crashed, T timed out.",
            "`none` counts tests that do not run on an event loop backend.",
            "",
            "| file | " + " | ".join(COLUMNS) + " |",
            "| --- | " + " | ".join("---" for _ in COLUMNS) + " |",
        ]
        lines.append(
            "| **total** | "
            + " | ".join(f"**{_cell(tests['totals'][c])}**" for c in COLUMNS)
            + " |"
        )
        for path, info in tests["files"].items():
            status = f" ({info['status']})" if info["status"] != "ok" else ""
            if info["collect_errors"]:
                status += f" (not collected: {_first_error(info['collect_errors'][0])})"
            lines.append(
                f"| {path}{status} | "
                + " | ".join(_cell(info["counts"][c]) for c in COLUMNS)
                + " |"
            )
        lines.append("")

    lines += [
        "## Excluded tests",
        "",
        "Each exclusion names our own test of the public behaviour it checks.",
        "",
        "| test | reason | covered by |",
        "| --- | --- | --- |",
    ]
    marker = results.get("marker") or {}
    if marker:
        lines.append(
            f"| tests marked `{marker.get('deselect', '')}` | {marker.get('reason', '')} | |"
        )
    for entry in results.get("excluded", []):
        lines.append(
            f"| `{entry['test']}` | {entry['reason']} | {_covered_by(entry)} |"
        )
    lines.append("")
    edits = [
        (
            guard["file"],
            f"`{guard['line']}` wrapped in try/except ImportError",
            guard["reason"],
        )
        for guard in results.get("import_guards", [])
    ] + [
        (patch["file"], f"`{patch['old']}` → `{patch['new']}`", patch["reason"])
        for patch in results.get("text_patches", [])
    ]
    if edits:
        lines += [
            "Edits to the cached copy of upstream's tests (nothing else is changed):",
            "",
            "| file | edit | reason |",
            "| --- | --- | --- |",
        ]
        lines += [f"| {file} | {edit} | {reason} |" for file, edit, reason in edits]
        lines.append("")

    docs = results.get("docs")
    if docs:
        lines += [
            "## Documentation examples",
            "",
            "Examples from upstream's docs/*.rst (code blocks, `::` literal blocks and included"
            " snippets) that are complete programs, run once per backend; output compared where"
            " the page states it exactly. Examples written for asyncio itself (they"
            " import asyncio) count only on the asyncio variants, native Trio ones only"
            " on Trio.",
            "",
            "| page | examples | not runnable | " + " | ".join(BACKEND_IDS) + " |",
            "| --- | --- | --- | " + " | ".join("---" for _ in BACKEND_IDS) + " |",
        ]
        for page, info in sorted(docs["pages"].items()):
            cells = []
            for backend in BACKEND_IDS:
                counts = {k: v for k, v in info[backend].items() if k != "n/a"}
                total = sum(counts.values())
                cells.append(
                    f"{counts.get('passed', 0)}/{total}"
                    + "".join(
                        f" {n} {status}"
                        for status, n in sorted(counts.items())
                        if status != "passed"
                    )
                    if total
                    else "–"
                )
            lines.append(
                f"| {page} | {info['examples']} | {info['not_runnable']} | "
                + " | ".join(cells)
                + " |"
            )
        lines += ["", "Not runnable on their own:", ""]
        for example in docs["examples"]:
            if example["not_runnable"]:
                lines.append(
                    f"- {example['origin']} ({example['page']}:{example['line']}): {example['not_runnable']}"
                )
        lines.append("")
    return "\n".join(lines)
