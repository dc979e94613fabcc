"""What the baseline models share: seasons in steps, gap filling, quantiles from levels, event columns.

Called by the modules of ``forecasting.models.baselines`` only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecasting.base import Event, Forecast
from forecasting.series import DAY, QUANTILES, WEEK, assemble, fill_gaps, prepare_history, season_steps, step_of

# statsforecast-style interval levels (percent) that give every quantile of QUANTILES:
# q > 0.5 is the upper end of the (2q - 1) interval, q < 0.5 the lower end of the (1 - 2q) one.
LEVELS: tuple[int, ...] = tuple(sorted({round(abs(2 * q - 1) * 100) for q in QUANTILES if q != 0.5}))


def seasons(step: pd.Timedelta, n: int) -> list[int]:
    """The daily and weekly season lengths in steps that ``n`` points can hold twice (shortest first)."""
    out = []
    for period in (DAY, WEEK):
        s = season_steps(step, period)
        if s > 1 and n >= 2 * s:
            out.append(s)
    return out


def prepared(history: pd.Series) -> tuple[pd.Series, np.ndarray, pd.Timedelta]:
    """The prepared history, its values with gaps filled (a week back, else a day, else linear), its step."""
    hist = prepare_history(history)
    step = step_of(hist)
    lag = season_steps(step, WEEK) or season_steps(step, DAY) or None
    return hist, fill_gaps(hist.to_numpy(), lag), step


def from_levels(index: pd.DatetimeIndex, result: Mapping[str, np.ndarray], *, model: str) -> Forecast:
    """A Forecast from a statsforecast ``predict(h, level=LEVELS)`` dict ('mean', 'lo-80', 'hi-80', ...)."""
    mean = np.asarray(result["mean"], dtype=float)
    offsets = {}
    for q in QUANTILES:
        if q == 0.5:
            continue
        key = f"{'hi' if q > 0.5 else 'lo'}-{round(abs(2 * q - 1) * 100)}"
        offsets[q] = np.asarray(result[key], dtype=float) - mean
    return assemble(index, mean, offsets, model=model)


def from_samples(index: pd.DatetimeIndex, samples: np.ndarray, *, model: str, mean: np.ndarray) -> Forecast:
    """A Forecast from predictive samples shaped (steps, draws)."""
    median = np.quantile(samples, 0.5, axis=1)
    offsets = {q: np.quantile(samples, q, axis=1) - median for q in QUANTILES}
    return assemble(index, median, offsets, model=model, mean=mean)


def event_columns(index: pd.DatetimeIndex, events: Sequence[Event], kinds: Sequence[str]) -> np.ndarray:
    """(len(index), len(kinds)) 0/1: the step [ts, ts + step) overlaps an event of that kind."""
    out = np.zeros((len(index), len(kinds)))
    if not len(index) or not kinds:
        return out
    step = pd.Timedelta(index.freq) if index.freq is not None else pd.Timedelta(index[1] - index[0])
    col = {k: i for i, k in enumerate(kinds)}
    for event in events:
        if event.kind not in col:
            continue
        # Timestamps, not raw integers: pandas 3 indexes may count microseconds.
        lo = int(index.searchsorted(event.start - step, side="right"))
        hi = int(index.searchsorted(event.end, side="left"))
        out[lo:hi, col[event.kind]] = 1.0
    return out


def kinds_in(events: Sequence[Event], start: pd.Timestamp, end: pd.Timestamp) -> list[str]:
    """Event kinds with at least one event overlapping [start, end], sorted."""
    return sorted({e.kind for e in events if e.end > start and e.start <= end})
