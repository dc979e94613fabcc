"""bench-forecast, event traces: every model and forecasting baseline against seasonal-naive, per trace.

Rolling-origin backtests (``forecasting.backtest``) on the issue-15 event
traces in data/, the metro trace and a synthetic casino trace, for the
project's models (seasonal-naive, holt-winters, calendar) and the
baselines (mstl, autoets, prophet, gbm; ``forecasting.models.baselines``,
skipped with a note when their library is missing). Day-ahead forecasts
from daily origins (midnight) over the last 14 days of each real trace;
hour-ahead from 12-hourly origins over 7 days of the 5-minute casino trace
(the baselines cost seconds per fit: on a shared 2-core machine more origins
take hours).

Columns: MASE and event MASE (and each as a ratio to seasonal-naive's),
coverage of the *central* 95% band [q2.5, q97.5] (the backtest's), and
coverage of the *upper one-sided* p95: the share of actuals at or below
q0.95, the quantile Pitboss sizes at (target 0.95 for both). Called by
``benchmarks/bench_forecast.py`` (``make bench-forecast``); the hold-out
only with ``--holdout``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from controller.traceio import read_events, read_series
from forecasting import registry
from forecasting.backtest import BacktestResult, backtest
from forecasting.base import Event, Forecast, Forecaster
from forecasting.models.baselines import BASELINES, missing
from forecasting.registry import register_baselines
from forecasting.synth import synth_trace

DATA = Path(__file__).resolve().parent.parent / "data"
OWN = ("seasonal-naive", "holt-winters", "calendar")


@dataclass
class Trace:
    name: str
    series: pd.Series
    events: list[Event]
    horizon: int
    every: int
    test_steps: int


def traces(holdout: bool, seed: int = 7) -> list[Trace]:
    out = []
    for name, stem in (("metro", "metro_traffic_hourly"), ("victoria", "victoria_electricity_halfhourly"),
                       ("bank-calls", "bank_calls_5min"), ("nyc-departures", "nyc_departures_hourly")):
        series, events = read_series(DATA / f"{stem}.csv"), read_events(DATA / f"{stem}_events.csv")
        day = int(pd.Timedelta(days=1) / pd.Timedelta(series.index.freq))
        out.append(Trace(name, series, events, day, day, 14 * day))
    five, five_events = synth_trace(days=28, step="5min", seed=seed)
    out.append(Trace("casino 5-min", five, five_events, 12, 144, 7 * 288))
    if holdout:
        series = read_series(DATA / "holdout" / "uk_online_retail_hourly.csv").loc[: "2011-01-09 23:00"]
        events = read_events(DATA / "holdout" / "uk_online_retail_hourly_events.csv")
        out.append(Trace("HOLDOUT uk-retail", series, events, 24, 24, 14 * 24))
    return out


def _recording(name: str, store: list[Forecast]) -> Callable[[], Forecaster]:
    """A factory of ``name`` whose forecasts are kept (for the upper one-sided coverage)."""

    class Recorded:
        def __init__(self) -> None:
            self.model = registry.create(name)

        def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Recorded:
            self.model.fit(history, events)
            return self

        def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
            fc = self.model.predict(horizon, events)
            store.append(fc)
            return fc

    Recorded.name = name  # type: ignore[attr-defined]
    return Recorded  # type: ignore[return-value]


def upper_coverage(series: pd.Series, forecasts: list[Forecast], origins: set[pd.Timestamp], q: float = 0.95) -> float:
    """Share of actuals at or below the ``q`` quantile over the grid origins' forecasts."""
    hits = total = 0
    actual = series.copy()
    actual.index = actual.index.tz_localize("UTC") if actual.index.tz is None else actual.index.tz_convert("UTC")
    for fc in forecasts:
        if fc.index[0] not in origins:
            continue  # an extra origin placed for spike recall only
        y = actual.reindex(fc.index).to_numpy(dtype=float)
        ok = np.isfinite(y)
        hits += int((y[ok] <= fc.quantile(q)[ok] + 1e-9).sum())
        total += int(ok.sum())
    return hits / total if total else float("nan")


def run(holdout: bool, console: Console) -> list[tuple[Trace, BacktestResult, dict[str, float]]]:
    absent = missing()
    if absent:
        console.print(f"baselines skipped (library missing): {', '.join(f'{k} ({v})' for k, v in absent.items())}")
    models = (*OWN, *register_baselines())
    out = []
    for trace in traces(holdout):
        if trace.name.startswith("HOLDOUT"):
            console.rule("[bold red]HOLD-OUT: evaluated once, in the final report; never tune on it")
        stores: dict[str, list[Forecast]] = {m: [] for m in models}
        factories = {m: _recording(m, stores[m]) for m in models}
        with Progress(TextColumn(f"backtest {trace.name:18s}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console, transient=True) as progress:
            task = progress.add_task(trace.name, total=None)

            def report(done: int, total: int, task: TaskID = task, progress: Progress = progress) -> None:
                progress.update(task, completed=done, total=total)

            result = backtest(trace.series, trace.events, factories, horizon=trace.horizon, every=trace.every,
                              test_steps=trace.test_steps, progress=report)
        first = len(trace.series) - trace.test_steps
        grid = {trace.series.index[i].tz_localize("UTC") if trace.series.index.tz is None
                else trace.series.index[i] for i in range(first, len(trace.series) - trace.horizon + 1, trace.every)}
        upper = {m: upper_coverage(trace.series, stores[m], grid) for m in models}
        out.append((trace, result, upper))
    return out


def table(results: list[tuple[Trace, BacktestResult, dict[str, float]]]) -> Table:
    t = Table(title="Event traces: accuracy vs seasonal-naive (day-ahead at daily origins over 14 days; casino: "
              "hour-ahead every 12 h over 7 days)")
    for col in ("trace", "origins", "model", "MASE", "vs SN", "event MASE", "vs SN", "cover central 95",
                "cover upper p95", "ms p50"):
        t.add_column(col, justify="left" if col in ("trace", "model") else "right", no_wrap=True)
    for trace, result, upper in results:
        sn = result.models["seasonal-naive"]
        for model, score in result.models.items():
            ev = score.event_mase
            t.add_row(trace.name, str(result.origins), model, f"{score.mase:.3f}", f"{score.mase / sn.mase:.2f}x",
                      "-" if ev is None else f"{ev:.3f}",
                      "-" if ev is None or not sn.event_mase else f"{ev / sn.event_mase:.2f}x",
                      f"{score.coverage_95:.3f}", f"{upper[model]:.3f}", f"{score.fit_predict_ms_p50:.0f}")
        t.add_section()
    return t


__all__ = ["BASELINES", "run", "table"]
