"""CLI commands: ``pitboss forecast``, ``pitboss backtest`` and ``pitboss trace synth``.

Registered on the root app by ``cli.app`` (``synth`` through ``cli.trace_cmd``, which owns
the trace group). Reads traces through
``controller.traceio`` (bad files -> one-line error naming file, row and
field, exit 2), parses durations with ``controller.core.durations``, and runs
the pure ``forecasting`` package. Outputs are written to a temporary file and
renamed, so nothing is half-written on failure.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import pandas as pd
import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import atomic_write as _atomic  # nothing half-written
from cli.common import console, err_console, guarded
from controller.core.durations import format_duration, parse_duration
from controller.traceio import read_events, read_series, write_events, write_series
from forecasting import registry
from forecasting.backtest import BacktestResult, backtest
from forecasting.base import Event, Forecaster
from forecasting.synth import synth_trace

DEFAULT_MODELS = "seasonal-naive,holt-winters,calendar"


def steps_of(text: str, step: pd.Timedelta, *, field: str, at_least_one: bool = False) -> int:
    """A duration flag as a whole number of series steps (rounded up); ValueError naming the flag.

    A duration shorter than one step is an error, or one step with ``at_least_one``."""
    if text.strip().startswith("-"):
        raise ValueError(f"{field}: must not be negative, got {text!r}")
    value = pd.Timedelta(parse_duration(text, field=field))
    if value <= pd.Timedelta(0):
        raise ValueError(f"{field}: expected a positive duration such as 30m, 2h or 1d, got {text!r}")
    if value < step and not at_least_one:
        raise ValueError(f"{field}: {text} is shorter than the series step {format_duration(step)}")
    return max(1, math.ceil(value / step))


def say(message: str) -> None:
    """One plain line on stdout (no wrapping of long paths, no markup)."""
    console.print(message, soft_wrap=True, markup=False, highlight=False)


def _check_out_dir(path: Path | None, field: str) -> None:
    if path is not None and not Path(path).resolve().parent.is_dir():
        raise ValueError(f"{field}: directory {Path(path).parent} does not exist")


def _load(series_path: Path, events_path: Path | None) -> tuple[pd.Series, list[Event]]:
    series = read_series(series_path)
    events = read_events(events_path) if events_path is not None else []
    return series, events


def _write_forecast(frame: pd.DataFrame, path: Path) -> None:
    out = frame.copy()
    out.index = out.index.tz_convert("UTC").tz_localize(None)
    out.index.name = "timestamp"
    out.to_csv(path, float_format="%.6g", date_format="%Y-%m-%dT%H:%M:%S")


@guarded
def forecast_command(
    series_path: Annotated[Path, typer.Argument(metavar="SERIES.csv", help="Demand series in the trace format.")],
    horizon: Annotated[str, typer.Option(help="How far ahead: 30m, 2h, 1d.")] = "1h",
    events_path: Annotated[Path | None, typer.Option("--events", help="Known events CSV.")] = None,
    model: Annotated[str, typer.Option(help=f"One of: {', '.join(registry.names())}.")] = "auto",
    out: Annotated[Path | None, typer.Option(help="Write the forecast CSV here.")] = None,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG plot here.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the forecast as one JSON object on stdout.")] = False,
) -> None:
    """Forecast demand (median and quantiles) over --horizon, with known events as inputs."""
    _check_out_dir(out, "out")
    _check_out_dir(plot, "plot")
    forecaster = registry.create(model)
    series, events = _load(series_path, events_path)
    step = pd.Timedelta(series.index.freq)
    steps = steps_of(horizon, step, field="horizon")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        forecaster.fit(series, events)
        forecast = forecaster.predict(steps, events)
    for warning in caught:
        err_console.print(f"warning: {warning.message}", markup=False, highlight=False)
    frame = forecast.to_frame()
    if out is not None:
        _atomic(out, lambda tmp: _write_forecast(frame, tmp))
    if plot is not None:
        from cli.forecast_plots import plot_forecast

        _atomic(plot, lambda tmp: plot_forecast(series, forecast, events, tmp))
    peak_at = frame["q95"].idxmax()
    if as_json:
        rows = [{"timestamp": pd.Timestamp(ts).isoformat(), **{k: float(v) for k, v in row.items()}}
                for ts, row in frame.iterrows()]
        typer.echo(json.dumps({"series": series.name, "model": forecast.model, "steps": steps,
                               "step_seconds": step.total_seconds(), "peak_q95": float(frame["q95"].max()),
                               "peak_at": pd.Timestamp(peak_at).isoformat(), "forecast": rows}))
        return
    table = Table(title=f"{series.name}: {forecast.model}, {steps} x {format_duration(step)} ahead")
    columns = ["mean", "q50", "q90", "q95", "q99"]
    for column in ("timestamp (UTC)", *columns):
        table.add_column(column, justify="right")
    shown = frame if len(frame) <= 12 else pd.concat([frame.iloc[:6], frame.iloc[-6:]])
    for ts, row in shown[columns].iterrows():
        table.add_row(pd.Timestamp(ts).strftime("%Y-%m-%d %H:%M"), *(f"{v:.1f}" for v in row))
    console.print(table)
    say(f"peak q95 {frame['q95'].max():,.1f} at {pd.Timestamp(peak_at).isoformat()}")
    if out is not None:
        say(f"wrote {out}")
    if plot is not None:
        say(f"wrote {plot}")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}f}"


@guarded
def backtest_command(
    series_path: Annotated[Path, typer.Argument(metavar="SERIES.csv", help="Demand series in the trace format.")],
    events_path: Annotated[Path | None, typer.Option("--events", help="Known events CSV.")] = None,
    horizon: Annotated[str, typer.Option(help="Forecast horizon per origin: 30m, 1h, 1d.")] = "1h",
    step: Annotated[str, typer.Option(help="Distance between origins: 15m, 1h (at least one series step).")] = "15m",
    test_days: Annotated[float, typer.Option(help="Days at the end of the series to test on.")] = 7.0,
    models: Annotated[str, typer.Option(help="Comma-separated model names.")] = DEFAULT_MODELS,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object on stdout.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG plot here.")] = None,
) -> None:
    """Rolling-origin backtest: each origin sees only the data before it."""
    _check_out_dir(plot, "plot")
    names = [name.strip() for name in models.split(",") if name.strip()]
    if not names:
        raise ValueError("models: expected a comma-separated list of model names")
    for name in names:
        registry.create(name)  # validates the name before any work
    if len(set(names)) != len(names):
        raise ValueError(f"models: duplicate model name in {models!r}")
    if not (test_days > 0 and math.isfinite(test_days)):
        raise ValueError(f"test_days: expected a positive number of days, got {test_days}")
    series, events = _load(series_path, events_path)
    grid = pd.Timedelta(series.index.freq)
    horizon_steps = steps_of(horizon, grid, field="horizon")
    every = steps_of(step, grid, field="step", at_least_one=True)  # --step 15m on hourly data: every step
    test_steps = math.ceil(pd.Timedelta(days=test_days) / grid)
    factories: dict[str, Callable[[], Forecaster]] = {n: (lambda n=n: registry.create(n)) for n in names}  # type: ignore[misc]
    with Progress(
        TextColumn("backtest"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as progress:
        task = progress.add_task("fits", total=None)

        def report(done: int, total: int) -> None:
            progress.update(task, completed=done, total=total)

        result = backtest(
            series, events, factories, horizon=horizon_steps, every=every, test_steps=test_steps, progress=report
        )
    if plot is not None:
        from cli.forecast_plots import plot_backtest

        _atomic(plot, lambda tmp: plot_backtest(result, events, tmp))
    _warn_fallbacks(result)
    if as_json:
        typer.echo(json.dumps(result.to_json()))
        return
    console.print(backtest_table(result))
    say(f"best: {result.best}")
    if plot is not None:
        say(f"wrote {plot}")


def _warn_fallbacks(result: BacktestResult) -> None:
    """One stderr line per model that fell back (with how often), then its distinct warnings."""
    for name, score in result.models.items():
        if score.fallback:
            err_console.print(f"warning: {name} fell back to {score.fallback} at {score.fallback_origins} origin(s)",
                              markup=False, highlight=False, soft_wrap=True)
        for note in result.warnings.get(name, []):
            err_console.print(f"warning: {note}", markup=False, highlight=False, soft_wrap=True)


def backtest_table(result: BacktestResult) -> Table:
    """The per-model metrics as a rich table."""
    table = Table(
        title=f"{result.series}: {result.origins} origins, horizon {result.horizon_steps} x {result.step_seconds}s"
    )
    for column in ("model", "MASE", "event MASE", "sMAPE %", "cover 95", "below q50/q90/q95/q99", "spike recall",
                   "ms p50"):
        table.add_column(column, justify="right" if column != "model" else "left", no_wrap=column == "model")
    for name, score in result.models.items():
        table.add_row(
            name,
            _fmt(score.mase),
            _fmt(score.event_mase),
            _fmt(score.smape, 1),
            _fmt(score.coverage_95),
            "/".join(_fmt(score.calibration.get(q, math.nan)) for q in (0.5, 0.9, 0.95, 0.99)),
            _fmt(score.spike_recall),
            _fmt(score.fit_predict_ms_p50, 1),
        )
    return table


@guarded
def synth_command(
    out: Annotated[Path, typer.Option(help="Series CSV to write.")],
    events_out: Annotated[Path, typer.Option("--events-out", help="Events CSV to write.")],
    days: Annotated[int, typer.Option(help="Length of the trace in days.")] = 28,
    step: Annotated[str, typer.Option(help="Step of the series: 1m, 5m, 1h.")] = "1m",
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same trace).")] = 7,
    start: Annotated[str, typer.Option(help="First timestamp (UTC).")] = "2026-01-05T00:00:00",
) -> None:
    """Write a casino-shaped synthetic trace and its event calendar."""
    _check_out_dir(out, "out")
    _check_out_dir(events_out, "events_out")
    grid = pd.Timedelta(parse_duration(step, field="step"))
    try:
        first = pd.Timestamp(start)
    except ValueError:
        raise ValueError(f"start: expected an ISO 8601 timestamp, got {start!r}") from None
    series, events = synth_trace(days=days, step=grid, seed=seed, start=first)
    _atomic(out, lambda tmp: write_series(series, tmp))
    _atomic(events_out, lambda tmp: write_events(events, tmp))
    say(f"wrote {out} ({len(series)} steps of {format_duration(grid)}) and {events_out} ({len(events)} events)")


def register(app: typer.Typer) -> None:
    """Add ``forecast`` and ``backtest`` to the root app (``trace synth`` joins the trace group in cli.trace_cmd)."""
    app.command("forecast")(forecast_command)
    app.command("backtest")(backtest_command)
