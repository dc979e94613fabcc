"""Intervals calibrated on out-of-sample errors (issue 15): ``calendar_fit.holdout_resid``.

On a history of eight weeks or more (sub-daily steps) the split-conformal quantiles are taken from
rolling-origin residuals of the last four weeks: each week's residuals from the fit on the points
before it, not the in-sample residuals of a fit that saw (and, recency-weighted, leaned toward)
those very points. Where habits drift (the daily shape wanders from day to day), in-sample
residuals are too narrow and the band under-covers; the rolling-origin ones are what a forecast
really misses by.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.backtest import backtest
from forecasting.models import calendar_fit as cf
from forecasting.models.calendar import Calendar
from forecasting.models.calendar_state import CalendarConfig
from forecasting.models.shared_design import fit_design
from forecasting.series import WEEK
from forecasting.timeutil import stamps_ns

START = pd.Timestamp("2024-01-01", tz="UTC")  # a Monday


def drifting(weeks: int = 30, seed: int = 0) -> pd.Series:
    """Hourly; the daily shape's amplitude and phase take a random-walk step every day."""
    rng = np.random.default_rng(seed)
    idx = pd.date_range(START, periods=weeks * 168, freq="1h")
    hour, day = idx.hour.to_numpy(), np.arange(len(idx)) // 24
    amp = 0.5 + np.cumsum(rng.normal(0, 0.05, day.max() + 1))[day]
    shift = np.cumsum(rng.normal(0, 0.25, day.max() + 1))[day]
    z = np.log(100) + amp * np.sin(2 * np.pi * (hour - 6 - shift) / 24) + rng.normal(0, 0.05, len(idx))
    return pd.Series(np.exp(z), index=idx)


def test_holdout_residuals_are_those_of_refits_on_the_points_before_each_day() -> None:
    series = drifting(weeks=9)
    config = CalendarConfig()
    idx, step = series.index, pd.Timedelta(hours=1)
    terms = cf._terms(config, step, idx[-1] - idx[0])
    z = np.log(series.to_numpy())
    obs = np.isfinite(z)
    design = fit_design(terms, idx, step, (), obs, config.shape_harmonics, None)
    prior = np.zeros(design.columns)
    _, _, normal = cf._regress(design, z, obs, prior, config, coarse=False)
    oos = cf.holdout_resid(design, z, obs, normal, stamps_ns(idx), step)
    assert oos is not None
    held = int(cf.HOLDOUT / step)
    assert np.isnan(oos[:-held]).all() and np.isfinite(oos[-held:]).all()
    X = design.observed
    for week in (1, 2, 4):  # the fit on the points before that week (counted from the end), by hand
        cut = len(z) - week * int(WEEK / step)
        A = X[:cut].T @ X[:cut] + (normal.A - design.gram)  # the same ridge penalty
        beta = np.linalg.solve(A, X[:cut].T @ z[:cut])
        stop = cut + int(WEEK / step)
        np.testing.assert_allclose(oos[cut:stop], z[cut:stop] - X[cut:stop] @ beta, atol=1e-8)
    assert cf.holdout_resid(design, z[: 7 * 168], obs[: 7 * 168], normal, stamps_ns(idx[: 7 * 168]), step) is None


def test_bands_cover_where_habits_drift() -> None:
    """Central 90 % band (q05..q95) of day-ahead forecasts, 14 daily origins, five drifting series:
    in-sample calibration covered 0.79 of actuals on average (0.50 on one), out-of-sample 0.89."""
    covered = []
    for seed in range(5):
        result = backtest(drifting(seed=seed), [], {"calendar": Calendar}, horizon=24, every=24, test_steps=14 * 24)
        share = result.models["calendar"].calibration
        covered.append(share[0.95] - share[0.05])
    assert np.mean(covered) >= 0.85, covered
