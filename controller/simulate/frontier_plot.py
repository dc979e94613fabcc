"""Draw a sweep's frontier: unserved demand against replica-hours per policy, the oracle as a star (PNG, HTML).

The PNG is matplotlib (Agg); the HTML is one self-contained file with the
same figure inline as SVG and the sweep's two tables. Called by
``pitboss simulate --sweep --plot/--html``.
"""

from __future__ import annotations

import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from controller.simulate.plot import COLORS
from controller.simulate.sweep import SweepResult

CSS = ("body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;"
       "color:#222}table{border-collapse:collapse;font-size:.9em;margin:.5em 0}td,th{border:1px solid #ddd;"
       "padding:4px 8px}th{background:#f4f4f4}td.num{text-align:right;font-variant-numeric:tabular-nums}"
       ".muted{color:#666}")


def figure(result: SweepResult) -> Figure:
    """The frontier figure (the caller closes it)."""
    fig, ax = plt.subplots(figsize=(10, 6), dpi=100)
    for name in dict.fromkeys(p.policy for p in result.points):
        if name == "oracle":
            continue
        points = sorted(result.of(name), key=lambda p: p.replica_hours)
        front = result.frontier(name)
        color = COLORS.get(name)
        ax.plot([p.replica_hours for p in front], [p.unserved_fraction * 100 for p in front], "-", color=color,
                linewidth=1.5, label=f"{name} frontier")
        ax.plot([p.replica_hours for p in points], [p.unserved_fraction * 100 for p in points], "o", color=color,
                markersize=5, markerfacecolor="none" if name == "keda-cron" else color)
        for p in points:
            ax.annotate(p.label, (p.replica_hours, p.unserved_fraction * 100), textcoords="offset points",
                        xytext=(4, 4), fontsize=7, color=color)
    oracle = result.oracle
    if oracle is not None:
        ax.plot([oracle.replica_hours], [0.0], "*", color=COLORS["oracle"], markersize=14,
                label=f"oracle ({oracle.replica_hours:,.0f} replica-h, nothing unserved)")
    ax.set_yscale("symlog", linthresh=0.1)
    ax.set_ylim(bottom=0)
    ax.set_xlabel("replica-hours over the test window")
    ax.set_ylabel("unserved demand, % (symlog)")
    ax.set_title(f"{result.series_name}: the cost of safety, each policy over its knob ({result.steps} steps)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(loc="center right", fontsize=8)
    fig.tight_layout()
    return fig


def write_png(result: SweepResult, path: str | Path) -> Path:
    """Write the frontier PNG to ``path``."""
    fig = figure(result)
    try:
        fig.savefig(Path(path), format="png")
    finally:
        plt.close(fig)
    return Path(path)


def _table(headers: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td class='num'>{html.escape(c)}</td>" if i else f"<td>{html.escape(c)}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def write_html(result: SweepResult, path: str | Path, points: list[list[str]], savings: list[list[str]],
               headers: tuple[list[str], list[str]], caption: str) -> Path:
    """One self-contained HTML file: the figure as inline SVG and the two tables (rows as the CLI prints them)."""
    fig = figure(result)
    buf = io.StringIO()
    try:
        fig.savefig(buf, format="svg")
    finally:
        plt.close(fig)
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(result.series_name)}: "
             f"pitboss simulate --sweep</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(result.series_name)}: unserved demand against replica-hours</h1>",
             f"<p class='muted'>{html.escape(caption)}</p>", svg, "<h2>Every point</h2>",
             _table(headers[0], points)]
    if savings:
        parts += ["<h2>Pitboss against HPA at the same unserved demand</h2>", _table(headers[1], savings)]
    if result.notes:
        parts.append("<ul>" + "".join(f"<li>{html.escape(n)}</li>" for n in result.notes) + "</ul>")
    parts.append("</body></html>")
    Path(path).write_text("\n".join(parts), encoding="utf-8")
    return Path(path)
