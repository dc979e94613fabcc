"""Rolling-origin backtests and their metrics, as ``pitboss backtest`` reports them.

Called by the CLI (``pitboss backtest``), ``auto`` model selection and the
benchmark. Pure: the caller passes the series, the events, the model
factories, an optional progress callback and (for ``fit_predict_ms``) a timer.

Origins lie every ``every`` steps over the last ``test_steps`` steps; a model
at origin ``o`` is fitted on the points strictly before ``o`` and forecasts
``horizon`` steps from ``o``. Metrics pool every (origin, step) pair:

* ``mase``: MAE of the point forecast (the 0.5 quantile) / the in-sample MAE
  of the daily seasonal naive over the history before the first origin (the
  one-step naive at daily and coarser steps);
* ``event_mase``: the same over actuals inside event windows (None if none);
* ``smape``: mean of 200 |y - f| / (|y| + |f|), in percent (0 when both are 0);
* ``coverage_95``: share of actuals inside the central 95% interval [q2.5, q97.5];
* ``calibration``: per quantile q of the forecast, the share of actuals at or
  below it (a calibrated model gives about q: 0.95 at q0.95, the quantile
  Pitboss sizes at, and no more);
* ``spike_recall``: over events whose actual peak (in the covered part) is at
  least 1.3x the seasonal naive's forecast peak, the share for which the last
  forecast issued at least half a horizon before the event start reaches, at
  its 0.95 quantile, 80% of the actual peak within the part of the event its
  horizon covers. When no grid origin covers an event, one extra origin is
  placed for it (used for spike recall only). None if no event qualifies;
* ``fit_predict_ms_p50``: median wall time of fit + predict per origin;
* ``fallback``: the model a forecaster fell back to at any origin (e.g.
  ``"seasonal-naive"``; None when it always ran itself); ``BacktestResult.warnings``
  keeps each model's distinct warnings (the fallback's reason) for the caller to show.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from forecasting.base import Event, Forecast, Forecaster
from forecasting.models.seasonal_naive import SeasonalNaive
from forecasting.series import DAY, QUANTILES, prepare_history, season_steps, step_of
from forecasting.timeutil import stamps_ns, ts_ns

Progress = Callable[[int, int], None]
Factory = Callable[[], Forecaster]
BASELINE = "seasonal-naive"
MAX_NOTES = 5  # distinct warnings kept per model (a fallback's reason names the span, which moves)


@dataclass(frozen=True)
class Score:
    """One model's backtest metrics (see the module docstring)."""

    mase: float
    event_mase: float | None
    smape: float
    coverage_95: float
    spike_recall: float | None
    fit_predict_ms_p50: float
    spike_events: int = 0  # events that qualified for spike_recall (not part of the JSON)
    fallback: str | None = None
    fallback_origins: int = 0  # origins at which the model fell back (not part of the JSON)
    calibration: dict[float, float] = field(default_factory=dict)  # quantile -> share of actuals at or below

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready mapping with the issue's field names."""
        return {
            "mase": self.mase,
            "event_mase": self.event_mase,
            "smape": self.smape,
            "coverage_95": self.coverage_95,
            "spike_recall": self.spike_recall,
            "fit_predict_ms_p50": self.fit_predict_ms_p50,
            "fallback": self.fallback,
            "calibration": {f"{q:g}": share for q, share in self.calibration.items()},
        }


@dataclass
class BacktestResult:
    """Scores per model plus the rolling forecast paths (for plots)."""

    series: str
    step_seconds: int
    horizon_steps: int
    origins: int
    models: dict[str, Score]
    best: str
    actual: pd.Series = field(repr=False)
    paths: dict[str, pd.DataFrame] = field(default_factory=dict, repr=False)
    warnings: dict[str, list[str]] = field(default_factory=dict)  # per model, distinct, in order

    def to_json(self) -> dict[str, Any]:
        """The single JSON object ``pitboss backtest --json`` prints."""
        return {
            "series": self.series,
            "step_seconds": self.step_seconds,
            "horizon_steps": self.horizon_steps,
            "origins": self.origins,
            "models": {name: score.as_dict() for name, score in self.models.items()},
            "best": self.best,
        }


def daily_naive_scale(history: pd.Series) -> float:
    """In-sample MAE of the daily seasonal naive (the MASE denominator); the one-step naive
    at daily and coarser steps."""
    step = step_of(history)
    lag = 1 if step >= DAY else season_steps(step, DAY)
    if not lag:
        raise ValueError(f"step: {step_of(history)} does not divide a day; MASE needs a daily season")
    y = history.to_numpy()
    if len(y) <= lag:
        raise ValueError(f"test_days: leaves {len(y)} steps before the first origin; MASE needs more than a day")
    diffs = np.abs(y[lag:] - y[:-lag])
    diffs = diffs[np.isfinite(diffs)]
    if diffs.size == 0 or float(diffs.mean()) == 0.0:
        raise ValueError("history: the daily seasonal naive has no in-sample error to scale MASE by")
    return float(diffs.mean())


def in_events(index: pd.DatetimeIndex, events: Sequence[Event]) -> np.ndarray:
    """Boolean mask of the points inside any event window [start, end)."""
    mask = np.zeros(len(index), dtype=bool)
    t = stamps_ns(index)
    for event in events:
        i0, i1 = np.searchsorted(t, [ts_ns(event.start), ts_ns(event.end)])
        mask[i0:i1] = True
    return mask


def _run(
    factory: Factory,
    history: pd.Series,
    horizon: int,
    events: Sequence[Event],
    timer: Callable[[], float],
    notes: list[str] | None = None,
) -> tuple[Forecast, float]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        t0 = timer()
        model = factory()
        model.fit(history, events)
        forecast = model.predict(horizon, events)
        ms = (timer() - t0) * 1000.0
    if notes is not None:
        for message in dict.fromkeys(str(w.message) for w in caught):
            if message not in notes and len(notes) < MAX_NOTES:
                notes.append(message)
    return forecast, ms


def backtest(
    series: pd.Series,
    events: Sequence[Event],
    models: Mapping[str, Factory],
    *,
    horizon: int,
    every: int,
    test_steps: int,
    progress: Progress | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> BacktestResult:
    """Rolling-origin backtest of every model in ``models`` (name -> factory)."""
    if not models:
        raise ValueError("models: expected at least one model")
    for value, name in ((horizon, "horizon"), (every, "step"), (test_steps, "test_days")):
        if value < 1:
            raise ValueError(f"{name}: expected a positive number of steps, got {value}")
    series = prepare_history(series, field="series")
    n = len(series)
    first = n - test_steps
    if first < 2:
        raise ValueError(f"test_days: the test window ({test_steps} steps) leaves no history before it ({n} steps)")
    if test_steps < horizon:
        raise ValueError(f"horizon: {horizon} steps do not fit in the test window of {test_steps} steps")
    scale = daily_naive_scale(series.iloc[:first])
    step = step_of(series)
    grid = list(range(first, n - horizon + 1, every))
    extra = _anchor_origins(series.index, events, grid, first, horizon, step)
    y = series.to_numpy()
    runs: dict[str, dict[int, Forecast]] = {name: {} for name in models}
    baseline: dict[int, Forecast] = {}
    times: dict[str, list[float]] = {name: [] for name in models}
    notes: dict[str, list[str]] = {name: [] for name in models}
    total = (len(grid) + len(extra)) * len(models) + (0 if BASELINE in models else len(grid) + len(extra))
    done = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # each model's warnings are recorded once, in ``notes``
        for origin in [*grid, *extra]:
            history = series.iloc[:origin]
            for name, factory in models.items():
                forecast, ms = _run(factory, history, horizon, events, timer, notes[name])
                runs[name][origin] = forecast
                times[name].append(ms)
                done += 1
                if progress:
                    progress(done, total)
            if BASELINE in models:
                baseline[origin] = runs[BASELINE][origin]
            else:
                baseline[origin], _ = _run(SeasonalNaive, history, horizon, events, timer)
                done += 1
                if progress:
                    progress(done, total)
    scores = {}
    for name in models:
        score = _score(y, series.index, grid, runs[name], baseline, events, horizon, step, scale, times[name])
        fell = [fc.fallback for fc in runs[name].values() if fc.fallback]
        scores[name] = replace(score, fallback=fell[0] if fell else None, fallback_origins=len(fell))
    best = min(scores, key=lambda k: (math.inf if math.isnan(scores[k].mase) else scores[k].mase))
    paths = {name: _path(runs[name], grid, every, series.index) for name in models}
    return BacktestResult(
        series=str(series.name or "series"),
        step_seconds=int(step.total_seconds()),
        horizon_steps=horizon,
        origins=len(grid),
        models=scores,
        best=best,
        actual=series.iloc[max(0, first - horizon) :],
        paths=paths,
        warnings={name: found for name, found in notes.items() if found},
    )


def _anchor_origins(
    index: pd.DatetimeIndex, events: Sequence[Event], grid: list[int], first: int, horizon: int, step: pd.Timedelta
) -> list[int]:
    """Extra origins for events that no grid origin covers early enough."""
    extra: set[int] = set()
    grid_set = set(grid)
    for event in events:
        origin = _issuing_origin(index, event, first, horizon, step)
        if origin is None:
            continue
        last_grid = max((o for o in grid if index[o] <= index[origin]), default=None)
        if (last_grid is None or not _covers(index, last_grid, horizon, event)) and origin not in grid_set:
            extra.add(origin)
    return sorted(extra)


def _issuing_origin(
    index: pd.DatetimeIndex, event: Event, first: int, horizon: int, step: pd.Timedelta
) -> int | None:
    """The last possible origin at least half a horizon before the event start (None if outside the test)."""
    latest = event.start - horizon * step / 2
    pos = int(np.searchsorted(stamps_ns(index), ts_ns(latest), side="right")) - 1
    if pos < first or pos + horizon > len(index):
        return None
    return pos if _covers(index, pos, horizon, event) else None


def _covers(index: pd.DatetimeIndex, origin: int, horizon: int, event: Event) -> bool:
    end = index[origin + horizon - 1]
    return bool(end >= event.start and index[origin] < event.end)


def _score(
    y: np.ndarray,
    index: pd.DatetimeIndex,
    grid: list[int],
    runs: dict[int, Forecast],
    baseline: dict[int, Forecast],
    events: Sequence[Event],
    horizon: int,
    step: pd.Timedelta,
    scale: float,
    times: list[float],
) -> Score:
    errors, smapes, covered, event_errors = [], [], [], []
    below: dict[float, list[np.ndarray]] = {q: [] for q in QUANTILES}
    for origin in grid:
        fc = runs[origin]
        actual = y[origin : origin + horizon]
        ok = np.isfinite(actual)
        point = fc.quantile(0.5)
        err = np.abs(actual - point)[ok]
        errors.append(err)
        denom = (np.abs(actual) + np.abs(point))[ok]
        smapes.append(np.where(denom > 0, 200.0 * err / np.where(denom > 0, denom, 1.0), 0.0))
        lo, hi = fc.quantile(0.025)[ok], fc.quantile(0.975)[ok]
        covered.append((actual[ok] >= lo) & (actual[ok] <= hi))
        for q in QUANTILES:
            below[q].append(actual[ok] <= fc.quantile(q)[ok] + 1e-9)
        inside = in_events(fc.index, events)[ok]
        event_errors.append(err[inside])
    recall, qualifying = _spike_recall(y, index, grid, runs, baseline, events, horizon, step)
    all_err = np.concatenate(errors) if errors else np.array([])
    ev_err = np.concatenate(event_errors) if event_errors else np.array([])
    return Score(
        mase=float(all_err.mean() / scale) if all_err.size else math.nan,
        event_mase=float(ev_err.mean() / scale) if ev_err.size else None,
        smape=float(np.concatenate(smapes).mean()) if all_err.size else math.nan,
        coverage_95=float(np.concatenate(covered).mean()) if all_err.size else math.nan,
        spike_recall=recall,
        fit_predict_ms_p50=float(np.median(times)) if times else math.nan,
        spike_events=qualifying,
        calibration={q: float(np.concatenate(v).mean()) for q, v in below.items()} if all_err.size else {},
    )


def _spike_recall(
    y: np.ndarray,
    index: pd.DatetimeIndex,
    grid: list[int],
    runs: dict[int, Forecast],
    baseline: dict[int, Forecast],
    events: Sequence[Event],
    horizon: int,
    step: pd.Timedelta,
) -> tuple[float | None, int]:
    hits, qualifying = 0, 0
    origins = sorted(runs)
    for event in events:
        latest = event.start - horizon * step / 2
        candidates = [o for o in origins if index[o] <= latest and _covers(index, o, horizon, event)]
        if not candidates:
            continue
        origin = max(candidates)
        fc, base = runs[origin], baseline[origin]
        part = (fc.index >= event.start) & (fc.index < event.end)
        actual = y[origin : origin + horizon][part]
        if not np.isfinite(actual).any():
            continue
        peak = float(np.nanmax(actual))
        if peak < 1.3 * float(base.quantile(0.5)[part].max()):
            continue
        qualifying += 1
        if float(fc.quantile(0.95)[part].max()) >= 0.8 * peak:
            hits += 1
    return (hits / qualifying if qualifying else None), qualifying


def _path(runs: dict[int, Forecast], grid: list[int], every: int, index: pd.DatetimeIndex) -> pd.DataFrame:
    """The first ``every`` steps of each grid origin's forecast, stitched (q50, q2.5, q97.5)."""
    frames = []
    for origin in grid:
        fc = runs[origin]
        k = min(every, len(fc.index))
        frames.append(
            pd.DataFrame(
                {"q50": fc.quantile(0.5)[:k], "lo": fc.quantile(0.025)[:k], "hi": fc.quantile(0.975)[:k]},
                index=fc.index[:k],
            )
        )
    return pd.concat(frames) if frames else pd.DataFrame(columns=["q50", "lo", "hi"])
