"""Calibrated intervals of the calendar model: a p95 covers about 95 %, hour by hour.

The quantiles are split-conformal on the model's own h-step errors,
normalised by horizon and hour-of-week. A series whose noise is four times
larger in the evening than at night must get a band that covers ~95 % in
both, not one width that over-covers the night and under-covers the evening.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import backtest
from forecasting.models.calendar import Calendar
from forecasting.models.calendar_kernels import conformal_quantiles, horizon_buckets

START = pd.Timestamp("2026-02-02T00:00:00Z")
STEP = pd.Timedelta(minutes=30)


def noisy_evenings(days: int = 49, seed: int = 0) -> pd.Series:
    rng = np.random.default_rng(seed)
    index = pd.date_range(START, periods=days * 48, freq=STEP)
    hours = index.hour + index.minute / 60
    level = 100 * (1.6 + np.sin(2 * np.pi * (hours - 15) / 24))
    sd = np.where((index.hour >= 17) & (index.hour < 23), 0.12, 0.03)
    return pd.Series(level * np.exp(rng.normal(0, sd)), index=index)


def test_p95_covers_about_95_percent_in_quiet_and_noisy_hours() -> None:
    series = noisy_evenings()
    result = backtest(series, [], {"calendar": Calendar}, horizon=48, every=48, test_steps=14 * 48)
    share = result.models["calendar"].calibration
    assert 0.91 <= share[0.95] <= 0.99, share
    assert share[0.5] == pytest.approx(0.5, abs=0.1)
    hist = series.iloc[: -14 * 48]
    fc = Calendar().fit(hist).predict(48)
    width = fc.quantile(0.95) / fc.quantile(0.5)
    evening = np.asarray((fc.index.hour >= 18) & (fc.index.hour < 22))
    night = np.asarray((fc.index.hour >= 1) & (fc.index.hour < 5))
    assert np.median(width[evening]) - 1 > 2.5 * (np.median(width[night]) - 1)


def test_conformal_quantiles_are_the_empirical_quantiles_of_the_scores() -> None:
    rng = np.random.default_rng(1)
    resid = rng.normal(0, 2.0, 5000)
    states = np.zeros((5000, 1))
    out = conformal_quantiles(resid, states, np.zeros((8, 1)), np.full(8, 2.0), np.ones(5000), (0.05, 0.5, 0.95))
    assert out.shape == (4, 3)  # buckets 1, 2-3, 4-7, 8
    assert out[:, 2] == pytest.approx(np.full(4, 1.645), abs=0.08)
    assert out[:, 1] == pytest.approx(np.zeros(4), abs=0.05)
    assert list(horizon_buckets(8)) == [0, 1, 1, 2, 2, 2, 2, 3]
