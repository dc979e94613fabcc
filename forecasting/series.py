"""History hygiene and forecast assembly shared by every model.

Called by the models in ``forecasting/models`` (and the backtest) so that all
of them read a history the same way: a float Series on a regular UTC grid
whose gaps are NaN, and so that every Forecast they return has the same
quantile levels, monotone in q and never negative.
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache

import numpy as np
import pandas as pd

from forecasting.base import REQUIRED_QUANTILES, Forecast
from forecasting.timeutil import stamps_ns, utc_ns_index

# Levels every model emits: the required ones plus the tails of the central 95% interval.
QUANTILES: tuple[float, ...] = tuple(sorted({*REQUIRED_QUANTILES, 0.025, 0.05, 0.1, 0.975}))

DAY = pd.Timedelta(days=1)
WEEK = pd.Timedelta(days=7)


def prepare_history(history: pd.Series, *, field: str = "history") -> pd.Series:
    """Return ``history`` as float demand on a regular tz-aware UTC grid (NaN = gap).

    A naive index is read as UTC, another zone is converted; unsorted rows are
    sorted; missing grid points become NaN. Duplicate timestamps, an index
    that is not datetime, off-grid rows and negative values raise ValueError
    naming the field and the row (0-based position in the input).
    """
    if not isinstance(history, pd.Series):
        raise ValueError(f"{field}: expected a pandas Series, got {type(history).__name__}")
    if not isinstance(history.index, pd.DatetimeIndex):
        raise ValueError(f"{field}: expected a DatetimeIndex, got {type(history.index).__name__}")
    if len(history) < 2:
        raise ValueError(f"{field}: needs at least 2 points, got {len(history)}")
    try:
        values = history.astype(float)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: values must be numbers") from None
    # The boundary where series enter: UTC at nanosecond resolution (forecasting.timeutil).
    index = utc_ns_index(history.index)
    values = pd.Series(values.to_numpy(), index=index, name=history.name)
    finite = values.to_numpy()
    bad = np.flatnonzero(np.isinf(finite) | (finite < 0))
    if bad.size:
        raise ValueError(f"{field}: row {bad[0]}: expected a finite non-negative value, got {finite[bad[0]]!r}")
    dup = index.duplicated()
    if dup.any():
        row = int(np.flatnonzero(dup)[0])
        raise ValueError(f"{field}: row {row}: duplicate timestamp {index[row].isoformat()}")
    order = np.arange(len(index))
    if not index.is_monotonic_increasing:
        order = np.argsort(stamps_ns(index), kind="stable")
        values = values.iloc[order]
        index = values.index
    step = _step_of(index, history.index.freq)
    offsets = (index - index[0]) % step
    off = np.flatnonzero(offsets != pd.Timedelta(0))
    if off.size:
        ts = index[off[0]]
        raise ValueError(
            f"{field}: row {order[off[0]]}: {ts.isoformat()} is off the {step} grid (irregular series)"
        )
    full = pd.date_range(index[0], index[-1], freq=step)
    if len(full) != len(index):
        values = values.reindex(full)
    values.index.freq = pd.tseries.frequencies.to_offset(step)
    if not np.isfinite(values.to_numpy()).any():
        raise ValueError(f"{field}: every value is empty")
    return values


def _step_of(index: pd.DatetimeIndex, freq: object) -> pd.Timedelta:
    if freq is not None:
        try:
            return pd.Timedelta(pd.tseries.frequencies.to_offset(freq))
        except (TypeError, ValueError):
            pass
    diffs = pd.Series(np.diff(stamps_ns(index)))
    counts = diffs.value_counts()
    step = int(min(counts.index[counts == counts.max()]))
    if step <= 0:
        raise ValueError("history: timestamps must increase")
    return pd.Timedelta(step, unit="ns")


def step_of(series: pd.Series) -> pd.Timedelta:
    """The grid step of a prepared series."""
    return pd.Timedelta(series.index.freq)


def check_horizon(horizon: int) -> int:
    """``horizon`` as a positive int, or ValueError naming the field."""
    if isinstance(horizon, bool) or not isinstance(horizon, int | np.integer) or horizon < 1:
        raise ValueError(f"horizon: expected a positive number of steps, got {horizon!r}")
    return int(horizon)


def future_index(last: pd.Timestamp, step: pd.Timedelta, horizon: int) -> pd.DatetimeIndex:
    """The ``horizon`` grid points right after ``last`` (an index is immutable, so one is shared by
    every forecast of those steps: the operator's policies forecast the same ones each cycle)."""
    last, step = pd.Timestamp(last), pd.Timedelta(step)
    # Keyed by what date_range's result depends on: equal Timestamps in other zones or units are other keys.
    return _future_index(last, str(last.tz), last.unit, step, step.unit, int(horizon))


@lru_cache(maxsize=64)
def _future_index(last: pd.Timestamp, _tz: str, _unit: str, step: pd.Timedelta, _step_unit: str,
                  horizon: int) -> pd.DatetimeIndex:
    return pd.date_range(last + step, periods=horizon, freq=step)


def assemble(
    index: pd.DatetimeIndex,
    median: np.ndarray,
    offsets: Mapping[float, np.ndarray],
    *,
    model: str,
    mean: np.ndarray | None = None,
    log_space: bool = False,
) -> Forecast:
    """Build a Forecast from a centre and per-quantile offsets.

    With ``log_space`` the centre is log demand and quantile q is
    ``exp(median + offsets[q])``; otherwise it is ``median + offsets[q]``.
    Quantiles are made monotone in q (cumulative max) and clipped at zero.
    """
    median = np.asarray(median, dtype=float)
    # One preallocated grid, written in place (every model's every forecast passes here).
    grid = np.empty((len(QUANTILES), len(median)))
    for i, q in enumerate(QUANTILES):
        off = offsets.get(q)
        row = np.add(median, 0.0 if off is None else np.asarray(off, dtype=float), out=grid[i])
        if log_space:
            np.exp(row, out=row)
    np.maximum.accumulate(grid, axis=0, out=grid)
    np.maximum(grid, 0.0, out=grid)
    if not np.isfinite(grid).all():
        grid = np.nan_to_num(grid, nan=0.0, posinf=np.finfo(float).max)
    quantiles = {q: grid[i] for i, q in enumerate(QUANTILES)}
    centre = quantiles[0.5] if mean is None else np.maximum(np.nan_to_num(np.asarray(mean, dtype=float)), 0.0)
    return Forecast(index=index, mean=centre, quantiles=quantiles, model=model)


def fill_gaps(values: np.ndarray, season: int | None = None) -> np.ndarray:
    """Fill NaN: from one season back when known, else linear interpolation, else the mean."""
    out = np.asarray(values, dtype=float).copy()
    nan = np.isnan(out)
    if not nan.any():
        return out
    if season and season < len(out):
        for i in np.flatnonzero(nan):
            if i >= season and not np.isnan(out[i - season]):
                out[i] = out[i - season]
        nan = np.isnan(out)
    if nan.any():
        good = np.flatnonzero(~nan)
        if good.size == 0:
            return np.zeros_like(out)
        out[nan] = np.interp(np.flatnonzero(nan), good, out[good])
    return out


def season_steps(step: pd.Timedelta, period: pd.Timedelta) -> int:
    """How many steps make one ``period`` (0 when the step does not divide it)."""
    if period % step != pd.Timedelta(0):
        return 0
    return int(period / step)


def extend_history(history: pd.Series, new_points: pd.Series, *, keep: int | None = None) -> pd.Series:
    """``history`` continued by the ``new_points`` after its end (on its grid), trimmed to ``keep`` points."""
    step = step_of(history)
    new = prepare_history(new_points, field="new_points") if len(new_points) >= 2 else _single(new_points)
    new = new[new.index > history.index[-1]]
    if new.empty:
        return history
    off = (new.index - history.index[-1]) % step
    if (off != pd.Timedelta(0)).any():
        raise ValueError(f"new_points: timestamps are off the {step} grid of the history")
    full = pd.date_range(history.index[0], new.index[-1], freq=step)
    out = pd.concat([history, new]).reindex(full)
    out.index.freq = history.index.freq
    if keep is not None and len(out) > keep:
        out = out.iloc[-keep:]
        out.index.freq = history.index.freq
    return out


def _single(points: pd.Series) -> pd.Series:
    if not isinstance(points, pd.Series) or not isinstance(points.index, pd.DatetimeIndex):
        raise ValueError("new_points: expected a pandas Series on a DatetimeIndex")
    index = utc_ns_index(points.index)
    values = points.astype(float).to_numpy()
    if (values < 0).any() or np.isinf(values).any():
        raise ValueError("new_points: expected finite non-negative values")
    return pd.Series(values, index=index)
