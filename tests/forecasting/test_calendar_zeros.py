"""The calendar model on series with runs of zero demand (closed hours, outages, idle services).

A log transform whose offset came from the median made a series that is zero
more than half the time (a call centre closed nights and weekends) sit ten
log units below its open hours: the point forecast and the upper quantiles
exploded (q99 at 200x the day's peak on bank_calls_5min). Each row is a
different shape of zero run; every forecast must stay finite, within a small
multiple of the history's peak, and beat or match seasonal-naive.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from forecasting.models.calendar import Calendar
from forecasting.models.calendar_kernels import log_offset, zero_slots
from forecasting.models.seasonal_naive import SeasonalNaive
from forecasting.timeutil import stamps_ns, td_ns

START = pd.Timestamp("2026-02-02T00:00:00Z")  # a Monday
STEP = pd.Timedelta(minutes=10)
DAYS = 29


def base(index: pd.DatetimeIndex, rng: np.random.Generator) -> np.ndarray:
    hours = index.hour + index.minute / 60
    shape = 100 * (1.6 + np.sin(2 * np.pi * (hours - 15) / 24))
    return np.asarray(rng.poisson(shape), dtype=float)


def closed_nights(index: pd.DatetimeIndex, y: np.ndarray) -> np.ndarray:
    return np.where((index.hour < 7) | (index.hour >= 21), 0.0, y)


def closed_nights_and_weekends(index: pd.DatetimeIndex, y: np.ndarray) -> np.ndarray:
    return np.where(index.dayofweek >= 5, 0.0, closed_nights(index, y))


def one_day_outage(index: pd.DatetimeIndex, y: np.ndarray) -> np.ndarray:
    day = (index >= START + pd.Timedelta(days=10)) & (index < START + pd.Timedelta(days=11))
    return np.where(day, 0.0, y)


def sporadic_zeros(index: pd.DatetimeIndex, y: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.where(rng.random(len(y)) < 0.2, 0.0, y)


def mostly_idle(index: pd.DatetimeIndex, y: np.ndarray) -> np.ndarray:
    """Zero except one hour a day (a nightly batch)."""
    return np.where(index.hour == 2, y, 0.0)


CASES: dict[str, Callable[[pd.DatetimeIndex, np.ndarray], np.ndarray]] = {
    "closed nights": closed_nights,
    "closed nights and weekends": closed_nights_and_weekends,
    "one-day outage": one_day_outage,
    "sporadic zeros": sporadic_zeros,
    "mostly idle": mostly_idle,
}


@pytest.mark.parametrize("case", list(CASES))
def test_zero_runs_keep_the_forecast_finite_bounded_and_accurate(case: str) -> None:
    rng = np.random.default_rng(0)
    index = pd.date_range(START, periods=DAYS * 144, freq=STEP)
    series = pd.Series(CASES[case](index, base(index, rng)), index=index)
    cut = len(series) - 144
    hist, future = series.iloc[:cut], series.iloc[cut:].to_numpy()
    model = Calendar().fit(hist)
    fc = model.predict(144)
    peak = float(hist.max())
    for q in (0.5, 0.95, 0.99):
        values = fc.quantile(q)
        assert np.isfinite(values).all()
        assert values.max() <= 2.0 * peak, f"q{q} peaks at {values.max():.0f}, history at {peak:.0f}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        naive = SeasonalNaive().fit(hist).predict(144).quantile(0.5)
    mae, naive_mae = np.mean(np.abs(fc.quantile(0.5) - future)), np.mean(np.abs(naive - future))
    assert mae <= 1.05 * naive_mae + 1e-9, f"calendar MAE {mae:.1f} vs seasonal-naive {naive_mae:.1f}"


def test_closed_slots_forecast_zero_and_open_ones_do_not() -> None:
    rng = np.random.default_rng(1)
    index = pd.date_range(START, periods=DAYS * 144, freq=STEP)
    series = pd.Series(closed_nights_and_weekends(index, base(index, rng)), index=index)
    fc = Calendar().fit(series).predict(7 * 144)
    closed = np.asarray((fc.index.dayofweek >= 5) | (fc.index.hour < 7) | (fc.index.hour >= 21))
    assert (fc.quantile(0.99)[closed] == 0).all()
    assert (fc.quantile(0.5)[~closed] > 10).all()


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0, 0, 0, 200, 210, 190], 2.0),  # zeros do not drag the offset down
        ([100, 100, 100], 1.0),  # no zeros: 1 % of the median
        ([0, 0, 0], 1e-3),  # nothing positive
        ([np.nan, 0, 50], 0.5),
    ],
)
def test_log_offset_scales_with_the_positive_values(values: list[float], expected: float) -> None:
    assert log_offset(np.asarray(values, dtype=float)) == pytest.approx(expected)


def test_zero_slots_need_two_weeks_of_zeros_and_no_opening() -> None:
    index = pd.date_range(START, periods=3 * 7 * 24, freq="1h")
    y = np.where(index.hour < 6, 0.0, 5.0)
    y[(index.hour == 3) & (index.day == 10)] = 1.0  # opened once at 03:00: not closed
    slots = zero_slots(stamps_ns(index), y, td_ns(pd.Timedelta(hours=1)))
    hours = {int(s) % 24 for s in slots}
    assert hours == {0, 1, 2, 3, 4, 5} and len(slots) == 6 * 7 - 1  # Tuesday 03:00 opened once
    # Eight days: only Monday was seen twice, so only its six night hours count as closed.
    assert len(zero_slots(stamps_ns(index[:24 * 8]), y[:24 * 8], td_ns(pd.Timedelta(hours=1)))) == 6
