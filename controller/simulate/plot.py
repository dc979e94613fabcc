"""Plot a simulation: demand, each policy's ready capacity, and the events (PNG, matplotlib Agg).

Called by ``pitboss simulate --plot`` and the benchmark.
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt

from controller.simulate.engine import SimResult

COLORS = {
    "hpa": "#d62728",
    "keda-cron": "#ff7f0e",
    "holt-winters": "#9467bd",
    "pitboss": "#2ca02c",
    "oracle": "#7f7f7f",
}


def plot_result(result: SimResult, path: str | Path, *, title: str | None = None) -> Path:
    """Write the PNG to ``path`` and return it."""
    out = Path(path)
    fig, ax = plt.subplots(figsize=(14, 5), dpi=100)
    try:
        index = result.index
        ax.plot(index, result.demand, color="black", linewidth=0.8, label="demand")
        for name, run in result.runs.items():
            capacity = run.ready * result.capacity_per_replica
            ax.step(
                index,
                capacity,
                where="post",
                linewidth=1.0,
                color=COLORS.get(name),
                linestyle="--" if name == "oracle" else "-",
                alpha=0.85,
                label=f"{name} ready capacity (unserved {run.metrics.unserved_fraction:.2%})",
            )
        labelled = False
        for event in result.events:
            if event.end <= index[0] or event.start >= index[-1]:
                continue
            ax.axvspan(
                max(event.start, index[0]),
                min(event.end, index[-1]),
                color="#1f77b4",
                alpha=0.12,
                label=None if labelled else "known events",
            )
            labelled = True
        ax.set_title(title or f"{result.series_name}: demand and ready capacity per policy")
        ax.set_ylabel("demand per step")
        ax.set_ylim(bottom=0)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
        fig.autofmt_xdate()
        fig.tight_layout()
        fig.savefig(out, format="png")
    finally:
        plt.close(fig)
    return out
