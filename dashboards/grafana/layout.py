"""A picture of each dashboard's layout, drawn from its JSON's gridPos with matplotlib (docs/img/dashboard-*.png).

Grafana's grid is 24 columns wide; a unit of height is 30 px. Every panel is
drawn where its gridPos puts it, with its title, the question it answers (its
description), its visualization and its unit; rows are drawn as bands. A panel that repeats per policy says so. No
Grafana is needed, so the pictures are regenerated with the JSON by
``pitboss dashboards build --images DIR``; docs/dashboards.md shows them.
"""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.patches import FancyBboxPatch

COLUMNS = 24
COLORS = {"timeseries": "#dbeafe", "stat": "#dcfce7", "bargauge": "#fef3c7", "table": "#f3e8ff", "row": "#e5e7eb"}
INCH_PER_COLUMN = 0.55
INCH_PER_ROW = 0.36


def image_name(uid: str) -> str:
    return f"dashboard-{uid.removeprefix('pitboss-')}.png"


def draw(board: Mapping[str, Any], path: Path) -> Path:
    """Draw ``board``'s grid to ``path`` (PNG); returns the path."""
    panels = board.get("panels", [])
    height = max((p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels), default=1)
    fig, ax = plt.subplots(figsize=(COLUMNS * INCH_PER_COLUMN, height * INCH_PER_ROW + 0.8))
    ax.set_xlim(0, COLUMNS)
    ax.set_ylim(height, -1.2)
    ax.axis("off")
    ax.text(0, -0.6, board.get("title", ""), fontsize=14, fontweight="bold", va="center")
    for panel in panels:
        g = panel["gridPos"]
        kind = panel.get("type", "")
        pad = 0.08
        ax.add_patch(FancyBboxPatch((g["x"] + pad, g["y"] + pad), g["w"] - 2 * pad, g["h"] - 2 * pad,
                                    boxstyle="round,pad=0,rounding_size=0.15", facecolor=COLORS.get(kind, "#f5f5f5"),
                                    edgecolor="#6b7280", linewidth=0.8))
        if kind == "row":
            ax.text(g["x"] + 0.3, g["y"] + g["h"] / 2, panel.get("title", ""), fontsize=10, fontweight="bold",
                    va="center")
            continue
        width_chars = max(8, int(g["w"] * 3.8))
        title = "\n".join(textwrap.wrap(panel.get("title", ""), width_chars)[:3])
        ax.text(g["x"] + 0.3, g["y"] + 0.35, title, fontsize=9, fontweight="bold", va="top")
        lines = title.count("\n") + 1
        room = max(0, int((g["h"] - 1.3 - lines * 0.45) / 0.42))  # lines of the question that fit
        question = textwrap.wrap(panel.get("description", ""), int(width_chars * 1.15))
        if room and question:
            shown = question[:room]
            if len(question) > room:
                shown[-1] = shown[-1].rstrip(".,;") + " ..."
            ax.text(g["x"] + 0.3, g["y"] + 0.45 + lines * 0.45, "\n".join(shown), fontsize=7.5, color="#4b5563",
                    va="top", style="italic")
        unit = ((panel.get("fieldConfig") or {}).get("defaults") or {}).get("unit", "")
        detail = f"{kind} · {unit}"
        if panel.get("repeat"):
            detail += f" · one per ${panel['repeat']}"
        ax.text(g["x"] + 0.3, g["y"] + g["h"] - 0.35, detail, fontsize=7.5, color="#374151", va="bottom")
        ax.text(g["x"] + g["w"] - 0.3, g["y"] + 0.35, f"#{panel.get('id', '')}", fontsize=7.5, color="#6b7280",
                va="top", ha="right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return path


def draw_all(boards: Mapping[str, Mapping[str, Any]], out: Path) -> list[Path]:
    """One picture per dashboard in ``out``."""
    return [draw(board, out / image_name(uid)) for uid, board in boards.items()]
