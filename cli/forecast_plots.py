"""PNG plots for ``pitboss forecast --plot`` and ``pitboss backtest --plot``.

Called only by ``cli.forecast_cmd``. Matplotlib with the Agg backend; each
plot is written to a temporary file beside the target and renamed, so a
failed run never leaves half a PNG behind.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

from forecasting.backtest import BacktestResult
from forecasting.base import Event, Forecast


def _save(fig: plt.Figure, path: Path) -> None:
    path = Path(path)
    fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent or Path("."))
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=110, format="png")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.unlink(tmp)


def _shade_events(ax: plt.Axes, events: Sequence[Event], start: pd.Timestamp, end: pd.Timestamp) -> None:
    labelled: set[str] = set()
    for event in events:
        if event.end < start or event.start > end:
            continue
        label = event.kind if event.kind not in labelled else None
        labelled.add(event.kind)
        ax.axvspan(max(event.start, start), min(event.end, end), color="tab:orange", alpha=0.15, label=label)


def plot_forecast(history: pd.Series, forecast: Forecast, events: Sequence[Event], path: Path) -> None:
    """History tail, the median forecast and its 90% / 95% bands, events shaded."""
    fig, ax = plt.subplots(figsize=(11, 4.5))
    span = max(forecast.index[-1] - forecast.index[0], pd.Timedelta(hours=6)) * 3
    tail = history[history.index >= history.index[-1] - span]
    ax.plot(tail.index, tail.to_numpy(), color="black", lw=0.8, label="history")
    ax.fill_between(
        forecast.index, forecast.quantile(0.025), forecast.quantile(0.975), color="tab:blue", alpha=0.15, label="95%"
    )
    ax.fill_between(forecast.index, forecast.quantile(0.05), forecast.quantile(0.95), color="tab:blue", alpha=0.25)
    ax.plot(forecast.index, forecast.quantile(0.5), color="tab:blue", lw=1.2, label=f"{forecast.model} median")
    ax.plot(forecast.index, forecast.quantile(0.95), color="tab:red", lw=0.8, ls="--", label="q95 (sizing)")
    _shade_events(ax, events, tail.index[0], forecast.index[-1])
    ax.set_title(f"{history.name or 'series'}: forecast of {len(forecast.index)} steps")
    ax.set_ylabel("demand per step")
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    _save(fig, path)


def plot_backtest(result: BacktestResult, events: Sequence[Event], path: Path) -> None:
    """Actuals with each model's rolling forecast on top; MASE and event MASE bars below."""
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(12, 7), gridspec_kw={"height_ratios": [3, 1.4]})
    actual = result.actual
    top.plot(actual.index, actual.to_numpy(), color="black", lw=0.7, label="actual")
    for name, path_frame in result.paths.items():
        if not path_frame.empty:
            # On the actual's grid, so the gaps between origins stay gaps instead of straight lines.
            q50 = path_frame["q50"][~path_frame.index.duplicated()].reindex(actual.index)
            top.plot(q50.index, q50.to_numpy(), lw=0.9, label=name)
    _shade_events(top, events, actual.index[0], actual.index[-1])
    top.set_title(
        f"{result.series}: rolling-origin backtest, {result.origins} origins, {result.horizon_steps}-step horizon"
    )
    top.legend(loc="upper left", fontsize=8)
    names = list(result.models)
    mase = [result.models[n].mase for n in names]
    ev = [result.models[n].event_mase or 0.0 for n in names]
    x = range(len(names))
    bottom.bar([i - 0.2 for i in x], mase, width=0.4, label="MASE")
    bottom.bar([i + 0.2 for i in x], ev, width=0.4, label="event MASE")
    bottom.set_xticks(list(x), names)
    bottom.legend(fontsize=8)
    fig.tight_layout()
    _save(fig, path)
