"""Forecasting benchmark (``make bench-forecast``): accuracy and speed tables.

Accuracy: rolling-origin backtests (``forecasting.backtest``) of every
model on the metro traffic data with its holidays (hourly, day-ahead) and on
synthetic casino traces at 1-minute and 5-minute steps (hour-ahead), with
the issue's targets checked and printed PASS/MISS.

Speed: one series with 14 days of 1-minute history, the operator's budget:
refit hourly, then update + predict (60 steps) every minute; p50 over the
hours of the amortised cost per cycle. Anchor: statsforecast's MSTL with an
AutoETS trend (AutoETS alone cannot model a season over 24 points), fitted and
predicted on the same history in the same process; the ratio is printed.
statsforecast is a benchmark-only dependency (the ``bench`` extra).

Event traces (``benchmarks/forecast_events.py``): every model and the
forecasting baselines (mstl, autoets, prophet, gbm) on the issue-15 traces,
the metro trace and a synthetic casino trace, against seasonal-naive, with
central and upper one-sided p95 coverage (``--events-only``, ``--holdout``).

Wall times are from a shared 2-core machine: read ratios, not absolutes.
Plots of each backtest go to var/bench-forecast/.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.forecast_plots import plot_backtest
from controller.traceio import read_events, read_series
from forecasting import registry
from forecasting.backtest import BacktestResult, backtest
from forecasting.base import Event, Forecaster, SupportsUpdate
from forecasting.synth import synth_trace

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "data"
OUT = REPO / "var" / "bench-forecast"
MODELS = ("seasonal-naive", "holt-winters", "calendar")
console = Console(width=150)


def datasets(seed: int) -> list[tuple[str, pd.Series, list[Event], dict[str, int], bool]]:
    """(name, series, events, backtest settings, is_casino) per data set."""
    metro = read_series(DATA / "metro_traffic_hourly.csv")
    metro_events = read_events(DATA / "metro_traffic_hourly_events.csv")
    minute, minute_events = synth_trace(days=28, step="1min", seed=seed)
    five, five_events = synth_trace(days=28, step="5min", seed=seed)
    return [
        # Day-ahead at midnight over the last 120 days: July 4, State Fair, Labor Day (72 event hours).
        ("metro hourly", metro, metro_events, {"horizon": 24, "every": 24, "test_steps": 120 * 24}, False),
        # Hour-ahead over the last 7 days; origins every 2 h (1-min) and 1 h (5-min).
        ("casino 1-min", minute, minute_events, {"horizon": 60, "every": 120, "test_steps": 7 * 1440}, True),
        ("casino 5-min", five, five_events, {"horizon": 12, "every": 12, "test_steps": 7 * 288}, True),
    ]


def factory(name: str) -> Callable[[], Forecaster]:
    """A no-argument constructor of the registry model ``name``."""
    return lambda: registry.create(name)


def run_accuracy(seed: int) -> list[tuple[str, BacktestResult, bool]]:
    results = []
    OUT.mkdir(parents=True, exist_ok=True)
    factories: dict[str, Callable[[], Forecaster]] = {name: factory(name) for name in MODELS}
    for name, series, events, settings, casino in datasets(seed):
        with Progress(
            TextColumn(f"backtest {name:14s}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task(name, total=None)

            def report(done: int, total: int, task: TaskID = task, progress: Progress = progress) -> None:
                progress.update(task, completed=done, total=total)

            result = backtest(
                series,
                events,
                factories,
                horizon=settings["horizon"],
                every=settings["every"],
                test_steps=settings["test_steps"],
                progress=report,
            )
        result.series = name
        plot_backtest(result, events, OUT / f"{name.replace(' ', '-')}.png")
        results.append((name, result, casino))
    return results


def fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def accuracy_table(results: list[tuple[str, BacktestResult, bool]]) -> Table:
    table = Table(title="Accuracy (rolling-origin backtests)")
    for col in ("data set", "origins", "model", "MASE", "event MASE", "sMAPE %", "cover 95", "spike recall", "ms p50"):
        table.add_column(col, justify="left" if col in ("data set", "model") else "right")
    for name, result, _ in results:
        for model, score in result.models.items():
            table.add_row(
                name,
                str(result.origins),
                model,
                fmt(score.mase),
                fmt(score.event_mase),
                fmt(score.smape, 1),
                fmt(score.coverage_95),
                fmt(score.spike_recall) + (f" of {score.spike_events}" if score.spike_recall is not None else ""),
                fmt(score.fit_predict_ms_p50, 1),
            )
        table.add_section()
    return table


def targets_table(results: list[tuple[str, BacktestResult, bool]]) -> Table:
    table = Table(title="Targets (calendar)")
    for col in ("data set", "target", "value", "result"):
        table.add_column(col)
    for name, result, casino in results:
        cal, sn, hw = (result.models[m] for m in MODELS[::-1])
        checks: list[tuple[str, float | None, bool | None]] = []
        if cal.event_mase is not None and sn.event_mase and hw.event_mase:
            checks.append(("event MASE <= 0.5x seasonal-naive", cal.event_mase / sn.event_mase,
                           cal.event_mase <= 0.5 * sn.event_mase))
            checks.append(("event MASE <= 0.7x holt-winters", cal.event_mase / hw.event_mase,
                           cal.event_mase <= 0.7 * hw.event_mase))
        else:
            checks.append(("event MASE ratios", None, None))
        checks.append(("MASE <= holt-winters", cal.mase / hw.mase, cal.mase <= hw.mase))
        checks.append(("coverage 95 in [0.90, 0.98]", cal.coverage_95, 0.90 <= cal.coverage_95 <= 0.98))
        if casino:
            recall = cal.spike_recall
            checks.append(("spike recall >= 0.9", recall, None if recall is None else recall >= 0.9))
        for label, value, ok in checks:
            verdict = "n/a" if ok is None else ("PASS" if ok else "MISS")
            table.add_row(name, label, fmt(value), verdict)
    return table


def amortised(model_name: str, series: pd.Series, events: list[Event], hours: int) -> dict[str, float]:
    """Refit hourly on 14 days, then update + predict(60) every minute; per-cycle cost p50 over hours."""
    window = 14 * 1440
    per_cycle, fits, cycles = [], [], []
    start = len(series) - hours * 60
    for hour in range(hours):
        origin = start + hour * 60
        t0 = time.perf_counter()
        model = registry.create(model_name).fit(series.iloc[origin - window : origin], events)
        model.predict(60, events)
        fit_ms = (time.perf_counter() - t0) * 1000
        total = fit_ms
        can_update = isinstance(model, SupportsUpdate)
        for minute in range(1, 60):
            t1 = time.perf_counter()
            if can_update:
                assert isinstance(model, SupportsUpdate)
                model.update(series.iloc[origin + minute - 1 : origin + minute])
            model.predict(60, events)
            ms = (time.perf_counter() - t1) * 1000
            cycles.append(ms)
            total += ms
        fits.append(fit_ms)
        per_cycle.append(total / 60)
    return {
        "amortised": statistics.median(per_cycle),
        "fit": statistics.median(fits),
        "cycle": statistics.median(cycles),
    }


def anchor_ms(series: pd.Series, runs: int) -> list[tuple[str, float]]:
    """statsforecast speed anchors: fit + predict(60) on the same 14 days of 1-minute data.

    MSTL with daily and weekly seasons and an AutoETS trend, with R-style STL
    smoothing jumps (ceil(window / 10); statsmodels' default of 1 takes ~30 s
    per fit here), and AutoETS alone (non-seasonal: it cannot take a
    1440-point season)."""
    from statsforecast.models import MSTL, AutoETS

    y = series.to_numpy()[-14 * 1440 :].astype(float)
    jumps = {"trend_jump": 276, "low_pass_jump": 145}  # trend window ~2751, low-pass 1441 for period 1440
    makers: list[tuple[str, Callable[[], object]]] = [
        ("statsforecast MSTL[1440,10080]+AutoETS", lambda: MSTL(
            season_length=[1440, 10080], trend_forecaster=AutoETS(model="ZZN"), stl_kwargs=jumps)),
        ("statsforecast AutoETS (non-seasonal)", lambda: AutoETS(model="ZZN")),
    ]
    out = []
    for label, make in makers:
        times = []
        for i in range(runs + 1):  # the first run pays numba's JIT compilation: not counted
            t0 = time.perf_counter()
            model = make()
            model.fit(y)  # type: ignore[attr-defined]
            model.predict(h=60)  # type: ignore[attr-defined]
            if i:
                times.append((time.perf_counter() - t0) * 1000)
        out.append((label, statistics.median(times)))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=7, help="seed of the synthetic casino traces")
    parser.add_argument("--hours", type=int, default=6, help="hours of per-minute cycles in the speed run")
    parser.add_argument("--anchor-runs", type=int, default=2, help="timed statsforecast runs")
    parser.add_argument("--skip-accuracy", action="store_true")
    parser.add_argument("--skip-events", action="store_true", help="skip the event traces with the baselines")
    parser.add_argument("--events-only", action="store_true", help="only the event traces with the baselines")
    parser.add_argument("--holdout", action="store_true", help="add the hold-out trace (final report only)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    started = time.perf_counter()
    if not args.skip_events:
        import forecast_events  # benchmarks/forecast_events.py: the issue-15 traces and baselines

        console.print(forecast_events.table(forecast_events.run(args.holdout, console)))
        if args.events_only:
            return
    if not args.skip_accuracy:
        results = run_accuracy(args.seed)
        console.print(accuracy_table(results))
        console.print(targets_table(results))
    series, events = synth_trace(days=16, step="1min", seed=args.seed)
    speed = Table(title=f"Speed: 14 days of 1-minute history, refit hourly + update/predict(60) every minute, "
                  f"{args.hours} h")
    for col in ("model", "amortised ms/cycle p50", "fit+predict ms p50", "update+predict ms p50"):
        speed.add_column(col, justify="left" if col == "model" else "right")
    rows = {}
    for name in ("calendar", "seasonal-naive", "holt-winters"):  # warm-up: imports and caches are not timed
        registry.create(name).fit(series.iloc[:3 * 1440], events).predict(60, events)
    for name in ("calendar", "seasonal-naive", "holt-winters"):
        with console.status(f"speed: {name}"):
            rows[name] = amortised(name, series, events, args.hours if name != "holt-winters" else 1)
        r = rows[name]
        note = "" if name != "holt-winters" else " (no update: later cycles predict from the hourly fit)"
        speed.add_row(name + note, f"{r['amortised']:.2f}", f"{r['fit']:.1f}", f"{r['cycle']:.2f}")
    with console.status("speed: statsforecast anchors (first runs compile)"):
        anchors = anchor_ms(series, args.anchor_runs)
    for label, ms in anchors:
        speed.add_row(label, f"{ms:.1f} (refit each cycle)", f"{ms:.1f}", "-")
    console.print(speed)
    cal = rows["calendar"]["amortised"]
    anchor = anchors[0][1]
    console.print(
        f"calendar amortised p50 {cal:.2f} ms/cycle (target <= 25 ms: {'PASS' if cal <= 25 else 'MISS'}); "
        f"{anchors[0][0]} / calendar amortised = {anchor / cal:.0f}x; "
        f"one calendar full refit is {anchor / rows['calendar']['fit']:.0f}x faster than one anchor fit"
    )
    console.print(f"plots in {OUT}; total {time.perf_counter() - started:.0f} s on a shared 2-core machine")


if __name__ == "__main__":
    main()
