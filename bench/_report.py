"""Statistics, the text table and the chart."""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any

from bench._targets import format_checks

IMPLS = ("ours", "upstream", "raw", "baseline")
# The columns every table shows; "baseline" (python -m bench --baseline DIR)
# only when it ran.
STANDARD_IMPLS = ("ours", "upstream", "raw")


def _with_baseline(doc: dict[str, Any]) -> bool:
    return "baseline" in doc["settings"]["impls"]


NA_NOT_IMPLEMENTED = "n/a (not implemented)"


def summarize(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
    else:
        q1 = q3 = ordered[0]
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "q1": q1,
        "q3": q3,
    }


def ratio(
    numerator: dict[str, Any] | None, denominator: dict[str, Any] | None
) -> float | None:
    """numerator/denominator of two cells' medians; > 1 means the denominator is faster."""
    if not numerator or not denominator:
        return None
    if numerator.get("status") != "ok" or denominator.get("status") != "ok":
        return None
    if denominator["median"] <= 0:
        return None
    return float(numerator["median"] / denominator["median"])


def _num(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:,.1f}"


def cell_text(cell: dict[str, Any] | None) -> str:
    if cell is None:
        return ""
    status = cell["status"]
    if status == "ok":
        if cell["min"] == cell["max"]:
            return _num(cell["median"])
        return f"{_num(cell['median'])} ({_num(cell['min'])}-{_num(cell['max'])})"
    if status == "n/a":
        detail = cell.get("detail", "")
        if detail.startswith("not implemented"):
            return NA_NOT_IMPLEMENTED
        return "n/a"
    return str(status)  # error / crashed / timeout; details are listed under the table


def _ratio_text(value: float | None) -> str:
    return "" if value is None else f"{value:.2f}x"


def table_rows(doc: dict[str, Any]) -> list[list[str]]:
    cells = {(r["workload"], r["backend"], r["impl"]): r for r in doc["results"]}
    ratios = {(r["workload"], r["backend"]): r for r in doc["ratios"]}
    rows = []
    for wl in doc["workloads"]:
        for backend in doc["settings"]["backends"]:
            key = (wl["name"], backend)
            row = [f"{wl['name']} [{wl['unit']}]", backend]
            impls = IMPLS if _with_baseline(doc) else STANDARD_IMPLS
            row += [cell_text(cells.get((*key, impl))) for impl in impls]
            r = ratios.get(key, {})
            row += [
                _ratio_text(r.get("upstream_over_ours")),
                _ratio_text(r.get("raw_over_ours")),
            ]
            if _with_baseline(doc):
                row.append(_ratio_text(r.get("baseline_over_ours")))
            rows.append(row)
    return rows


def header_lines(doc: dict[str, Any]) -> list[str]:
    m, v, s = doc["machine"], doc["versions"], doc["settings"]
    commit = v.get("ours_commit") or "?"
    if v.get("ours_dirty"):
        commit += "+dirty"
    return [
        f"anyio benchmarks, {doc['mode']} mode, {doc['created']}",
        f"machine: {m['cpu']}, {m['cores']} cores, {m['platform']}; "
        f"load average at start {m['loadavg_at_start']}",
        f"python {v['python']}, trio {v['trio']}, uvloop {v['uvloop']}; "
        f"upstream anyio {v['upstream_anyio']}; ours at {commit}",
        f"cells: median (min-max) over {s['samples_per_cell']} samples; lower is better; "
        "ratios x/ours > 1 mean ours is faster",
    ]


def markdown_table(head: list[str], rows: list[list[str]], left: int) -> list[str]:
    """Aligned Markdown table; the first `left` columns left-aligned, the rest right."""
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(cols: list[str]) -> str:
        parts = [
            c.ljust(w) if i < left else c.rjust(w)
            for i, (c, w) in enumerate(zip(cols, widths, strict=True))
        ]
        return "| " + " | ".join(parts) + " |"

    rule = "|".join(
        ("-" * (w + 1) + ":") if i >= left else "-" * (w + 2)
        for i, w in enumerate(widths)
    )
    return [line(head), f"|{rule}|", *(line(r) for r in rows)]


def glance_rows(doc: dict[str, Any]) -> list[list[str]]:
    """upstream/ours per workload, one column per backend."""
    ratios = {(r["workload"], r["backend"]): r for r in doc["ratios"]}
    return [
        [wl["name"]]
        + [
            _ratio_text(ratios.get((wl["name"], b), {}).get("upstream_over_ours"))
            or "-"
            for b in doc["settings"]["backends"]
        ]
        for wl in doc["workloads"]
    ]


def format_table(doc: dict[str, Any]) -> str:
    head = [
        "workload",
        "backend",
        "ours",
        "upstream",
        "raw",
        "upstream/ours",
        "raw/ours",
    ]
    if _with_baseline(doc):
        head[5:5] = ["baseline"]
        head.append("baseline/ours")
    out = [*header_lines(doc), ""]
    out += markdown_table(head, table_rows(doc), left=2)
    if {"ours", "upstream"} <= set(doc["settings"]["impls"]):
        out += ["", "upstream/ours at a glance (> 1: ours is faster or smaller):", ""]
        out += markdown_table(
            ["workload", *doc["settings"]["backends"]], glance_rows(doc), left=1
        )

    problems = [r for r in doc["results"] if r["status"] not in ("ok", "n/a")]
    if problems:
        out += ["", "failures:"]
        out += [
            f"  {r['workload']} / {r['backend']} / {r['impl']}: {r['status']}: "
            f"{r.get('detail', '')}"
            for r in problems
        ]
    out += format_checks(doc.get("targets", []))
    out += ["", "raw baselines:"]
    for wl in doc["workloads"]:
        labels = wl["raw"]
        out.append(
            f"  {wl['name']}: asyncio/uvloop = {labels.get('asyncio') or '-'}; "
            f"trio = {labels.get('trio') or '-'}"
        )
    return "\n".join(out)


def write_chart(doc: dict[str, Any], path: Path) -> None:
    """One panel per backend: horizontal bars per workload, min-max whiskers, log scale."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = doc["settings"]["backends"]
    workloads = doc["workloads"]
    cells = {(r["workload"], r["backend"], r["impl"]): r for r in doc["results"]}
    ratios = {(r["workload"], r["backend"]): r for r in doc["ratios"]}
    colors = {
        "ours": "#1f77b4",
        "upstream": "#ff7f0e",
        "raw": "#9a9a9a",
        "baseline": "#2ca02c",
    }
    impls = [i for i in IMPLS if i in doc["settings"]["impls"]]
    height = 0.8 / max(1, len(impls))

    fig, axes = plt.subplots(
        1,
        len(backends),
        figsize=(6 * len(backends), 0.55 * len(workloads) + 2.2),
        sharey=True,
        squeeze=False,
    )
    labels = [f"{wl['name']} ({wl['unit']})" for wl in workloads]
    for ax, backend in zip(axes[0], backends, strict=True):
        for k, impl in enumerate(impls):
            ys, xs, lo, hi = [], [], [], []
            for i, wl in enumerate(workloads):
                cell = cells.get((wl["name"], backend, impl))
                if cell and cell["status"] == "ok" and cell["median"] > 0:
                    ys.append(i + (k - (len(impls) - 1) / 2) * height)
                    xs.append(cell["median"])
                    lo.append(cell["median"] - cell["min"])
                    hi.append(cell["max"] - cell["median"])
            ax.barh(
                ys,
                xs,
                height=height,
                xerr=[lo, hi],
                color=colors[impl],
                label=impl,
                error_kw={"elinewidth": 0.8, "capsize": 1.5},
            )
        for i, wl in enumerate(workloads):
            r = ratios.get((wl["name"], backend), {}).get("upstream_over_ours")
            ours = cells.get((wl["name"], backend, "ours"))
            if r is not None and ours:
                ax.annotate(
                    f"{r:.1f}x",
                    (ours["max"], i - (len(impls) - 1) / 2 * height),
                    xytext=(4, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=7,
                )
            elif ours and ours["status"] != "ok":
                ax.annotate(
                    cell_text(ours),
                    (1, i - (len(impls) - 1) / 2 * height),
                    xycoords=("axes fraction", "data"),
                    ha="right",
                    va="center",
                    fontsize=6,
                    color="#1f77b4",
                )
        ax.set_xscale("log")
        ax.set_title(backend)
        ax.grid(axis="x", which="both", alpha=0.25)
        ax.set_xlabel(
            "ns per op (memory rows: bytes per task), log scale, lower is better"
        )
    axes[0][0].set_yticks(range(len(workloads)), labels, fontsize=8)
    axes[0][0].invert_yaxis()
    handles, names = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, names, loc="upper right", ncol=len(impls), fontsize=9)
    m, v = doc["machine"], doc["versions"]
    fig.suptitle(
        f"anyio with a C++ core vs upstream anyio {v['upstream_anyio']} vs raw asyncio/trio "
        f"(labels: upstream/ours)\n{m['cpu']}, {m['cores']} cores; Python {v['python']}, "
        f"trio {v['trio']}, uvloop {v['uvloop']}; {doc['created']}",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
