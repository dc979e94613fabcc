"""``holt-winters``: statsmodels exponential smoothing, the seasonality-only anchor.

Level plus an additive season on log demand (no trend: a trend extrapolated
over a day of hourly data ran away in trials on the metro data). The season
is weekly when the history holds three weeks, in buckets of at most an hour
(168 a week), else daily. Long seasons are slow in statsmodels (a 1440-point
season takes ~0.5 s per fit even with ``use_brute=False``, 96 buckets over 28
days ~2 s with estimated initial states), so sub-hourly data is first averaged
into buckets (hourly for a weekly season; for a daily one at most 96 per day,
15 minutes at 1-minute steps), the history is capped at the last 21 days (42
for a weekly season) and the initial states are set heuristically (tens of ms per fit);
the bucket forecast is interpolated back to the series step. Gaps are filled
from the day before (else interpolated). Quantiles: empirical quantiles of
the step-level residuals, widened with the horizon by the smoothing level
(ETS(A,N,A) variance growth). Known events are ignored (that is the point of
the anchor). At daily and coarser steps the season is a week of steps (7 at
daily steps; 52 weekly steps at weekly ones), fitted on the last two years
with no bucketing. Histories under two days (sub-daily) or two seasons
(coarser) fall back to ``seasonal-naive`` with a warning naming the reason,
and the forecasts say so (``Forecast.fallback``). Used through the registry.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from forecasting.base import Event, Forecast
from forecasting.models.seasonal_naive import SeasonalNaive
from forecasting.series import (
    DAY,
    QUANTILES,
    WEEK,
    assemble,
    check_horizon,
    fill_gaps,
    future_index,
    prepare_history,
    season_steps,
    step_of,
)

MAX_SEASON = 96
MAX_WEEKLY = 168  # weekly season: hourly buckets at most
MAX_DAYS = 21
COARSE_HISTORY = pd.Timedelta(days=730)  # daily and coarser steps: the last two years


def _bucket(day_steps: int, most: int) -> int:
    """The fewest steps per bucket that divide a day into at most ``most`` buckets."""
    factor = 1
    while day_steps // factor > most or day_steps % factor:
        factor += 1
    return factor


def _plan(hist: pd.Series, step: pd.Timedelta, max_season: int, max_days: int) -> tuple[int, int, int, int] | str:
    """(season in buckets, steps per bucket, steps to keep, gap-fill lag), or why no season fits."""
    span = hist.index[-1] - hist.index[0]
    if step >= DAY:
        # Daily and coarser: a weekly season when steps divide a week, else a yearly one
        # (52 weekly steps); two seasons of history at least, the last two years at most.
        week = season_steps(step, WEEK)
        season = week if week >= 2 else season_steps(step, 52 * WEEK)
        if season < 2:
            return f"no weekly or yearly season at step {step}"
        if len(hist) < 2 * season:
            return f"history of {len(hist)} steps at step {step}; needs two {season}-step seasons"
        keep = min(len(hist), max(4 * season, int(COARSE_HISTORY / step)))
        return season, 1, keep, season
    day_steps = season_steps(step, DAY)
    if day_steps < 2 or span < 2 * DAY:
        return f"history spans {span} at step {step}; needs two days of sub-daily data"
    if len(hist) >= 21 * day_steps:
        # Three weeks: a weekly season, as seasonal-naive's, in buckets of at most an hour
        # (168 at most: statsmodels' cost grows with the season). A daily season cannot tell a
        # Sunday from a Monday: on a call centre closed at weekends (bank-calls, 5-minute steps)
        # the daily one scored 6.3x seasonal-naive's MASE, the weekly one 0.83x.
        factor = _bucket(day_steps, MAX_WEEKLY // 7)
        season, days = 7 * (day_steps // factor), 2 * max_days
    else:
        factor = _bucket(day_steps, max_season)
        season, days = day_steps // factor, max_days
    keep = min(len(hist), days * day_steps)
    keep -= keep % factor
    return season, factor, keep, day_steps


class HoltWinters:
    """statsmodels ExponentialSmoothing over (bucketed) log demand with a daily season."""

    name: ClassVar[str] = "holt-winters"

    def __init__(self, max_season: int = MAX_SEASON, max_days: int = MAX_DAYS) -> None:
        if max_season < 2:
            raise ValueError(f"max_season: expected at least 2, got {max_season}")
        if max_days < 2:
            raise ValueError(f"max_days: expected at least 2, got {max_days}")
        self.max_season = max_season
        self.max_days = max_days
        self._fallback: SeasonalNaive | None = None
        self.fallback_reason: str | None = None  # why the last fit fell back to seasonal-naive
        self._fitted = False

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        """Fit ExponentialSmoothing on the bucketed, capped log history."""
        from statsmodels.tsa.holtwinters import ExponentialSmoothing

        hist = prepare_history(history)
        step = step_of(hist)
        self._fitted = True
        plan = _plan(hist, step, self.max_season, self.max_days)
        if isinstance(plan, str):
            self.fallback_reason = plan
            warnings.warn(f"holt-winters: {plan}, falling back to seasonal-naive", stacklevel=2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._fallback = SeasonalNaive().fit(hist)
            return self
        self._fallback, self.fallback_reason = None, None
        season, factor, keep, fill_lag = plan
        values = hist.to_numpy()[-keep:]
        self._offset = max(1e-3, 0.01 * float(np.nanmedian(values)))
        z = np.log(fill_gaps(values, fill_lag) + self._offset)
        buckets = z.reshape(-1, factor).mean(axis=1)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # statsmodels convergence chatter
            model = ExponentialSmoothing(
                buckets,
                seasonal="add",
                seasonal_periods=season,
                # "estimated" optimises every initial seasonal state (~1 s for 48-168 states);
                # the heuristic start is ~100x faster for a ~10% larger in-sample SSE.
                initialization_method="heuristic" if len(buckets) >= 3 * season else "estimated",
            )
            self._result = model.fit(use_brute=False)
        fitted = np.repeat(np.asarray(self._result.fittedvalues), factor)
        raw_resid = z - fitted
        resid_b = buckets - np.asarray(self._result.fittedvalues)
        self._var_raw = float(np.var(raw_resid))
        self._var_bucket = float(np.var(resid_b))
        self._alpha = float(self._result.params.get("smoothing_level", 0.5))
        std = raw_resid / math.sqrt(max(self._var_raw, 1e-12))
        centre = float(np.quantile(std, 0.5))
        self._zq = {q: float(np.quantile(std, q)) - centre for q in QUANTILES}
        self._factor, self._step, self._last = factor, step, hist.index[-1]
        return self

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        """Forecast ``horizon`` steps; events are ignored."""
        if not self._fitted:
            raise ValueError("predict: call fit before predict")
        horizon = check_horizon(horizon)
        if self._fallback is not None:
            fc = self._fallback.predict(horizon, events)
            return Forecast(index=fc.index, mean=fc.mean, quantiles=fc.quantiles, model=self.name,
                            fallback=SeasonalNaive.name)
        f = self._factor
        n_buckets = math.ceil(horizon / f) + 1
        ahead = np.asarray(self._result.forecast(n_buckets))
        centres = np.arange(n_buckets) * f + (f - 1) / 2
        pos = np.arange(horizon)
        mu = np.interp(pos, centres, ahead)
        k = pos // f + 1
        var = self._var_raw + self._var_bucket * (k - 1) * self._alpha**2
        sd = np.sqrt(var)
        median = np.exp(mu) - self._offset
        offsets = {q: np.exp(mu + self._zq[q] * sd) - self._offset - median for q in QUANTILES}
        index = future_index(self._last, self._step, horizon)
        return assemble(index, median, offsets, model=self.name, mean=np.exp(mu + var / 2) - self._offset)
