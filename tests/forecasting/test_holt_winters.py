"""holt-winters' season at sub-daily steps: weekly once three weeks of history are there.

A daily season cannot tell a Saturday from a Friday; seasonal-naive's weekly
lag can, so the anchor must too (bank-calls, a call centre closed at weekends:
6.3x seasonal-naive's MASE with the daily season, 0.85x with the weekly one).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.models.holt_winters import HoltWinters, _plan


def _office_hours(days: int, freq: str) -> pd.Series:
    """Calls 08:00-18:00 on weekdays (a noisy day-shaped hump), none at night or at weekends."""
    index = pd.date_range("2024-01-01", periods=days * pd.Timedelta("1D") // pd.Timedelta(freq), freq=freq, tz="UTC")
    hour = np.asarray(index.hour + index.minute / 60)
    open_ = np.asarray(index.day_of_week < 5) & (hour >= 8) & (hour < 18)
    rng = np.random.default_rng(3)
    hump = 100 * np.sin(np.pi * (hour - 8) / 10).clip(0)
    return pd.Series(np.where(open_, hump * rng.uniform(0.9, 1.1, len(index)), 0.0), index=index)


@pytest.mark.parametrize("freq", ["5min", "30min", "1h"])
def test_a_closed_weekend_is_forecast_closed_and_monday_open(freq: str) -> None:
    series = _office_hours(26, freq)  # 2024-01-01 is a Monday: history ends on Friday 26 Jan, midnight
    model = HoltWinters().fit(series)
    fc = model.predict(3 * int(pd.Timedelta("1D") / pd.Timedelta(freq)))  # Saturday, Sunday, Monday
    assert fc.index[0].day_of_week == 5 and fc.fallback is None
    point = pd.Series(fc.quantile(0.5), index=fc.index)
    weekend, monday = point[point.index.day_of_week >= 5], point[point.index.day_of_week == 0]
    assert float(weekend.max()) < 5.0  # closed (a weekday peaks near 100)
    assert float(monday.max()) > 70.0


@pytest.mark.parametrize(("freq", "days", "season", "per_bucket"), [
    ("1min", 14, 96, 15),     # two weeks: daily season, 15-minute buckets
    ("1min", 21, 168, 60),    # three weeks: weekly season, hourly buckets
    ("5min", 28, 168, 12),
    ("30min", 21, 168, 2),
    ("1h", 20, 24, 1),
    ("1h", 21, 168, 1),
])
def test_the_season_and_its_buckets(freq: str, days: int, season: int, per_bucket: int) -> None:
    series = _office_hours(days, freq)
    plan = _plan(series, pd.Timedelta(freq), 96, 21)
    assert not isinstance(plan, str)
    assert plan[:2] == (season, per_bucket)
