"""The calendar model after a closure: a shop shut for ten days, seen once, must not leave the band wide.

A retailer closed from Christmas to New Year (no event marks the days between
the bank holidays) showed every open hour of those days as zero. Fitted as
ordinary days, their residuals (log(0 + c), clipped at 6 robust sd) pulled the
recency-weighted calendar down and made up a fifth of the last four weeks'
conformal scores: after reopening the median sat at a fraction of the demand
and the p95 at several times it. Closure days (``calendar_kernels.closure_days``)
are now gaps for the regression and the calibration; the residual filter
still sees them. The rule must not fire on a weekday that is regularly shut
(a Saturday open once), inside an announced event (a holiday that shuts the
business is its kind's lift to learn), or on a sparse series' empty days.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from forecasting.base import Event
from forecasting.models.calendar import Calendar
from forecasting.models.calendar_kernels import closure_days
from forecasting.timeutil import stamps_ns, td_ns

START = pd.Timestamp("2026-01-05T00:00:00Z")  # a Monday
STEP = pd.Timedelta(hours=1)
WEEKS = 12


def shop(rate: float = 40.0, seed: int = 3) -> pd.Series:
    """Hourly orders: open 08:00-18:00 on weekdays, shut nights and weekends, Poisson noise."""
    idx = pd.date_range(START, periods=WEEKS * 168, freq=STEP)
    rng = np.random.default_rng(seed)
    hours = idx.hour.to_numpy()
    open_ = (hours >= 8) & (hours < 18) & (idx.dayofweek.to_numpy() < 5)
    mean = rate * (1.2 + np.sin(np.pi * (hours - 8) / 10))
    return pd.Series(np.where(open_, rng.poisson(mean), 0).astype(float), index=idx)


def closed(series: pd.Series, first: str, days: int) -> pd.Series:
    out = series.copy()
    start = pd.Timestamp(first, tz="UTC")
    out[(out.index >= start) & (out.index < start + pd.Timedelta(days=days))] = 0.0
    return out


def mask(series: pd.Series, events: tuple[Event, ...] = ()) -> np.ndarray:
    st = stamps_ns(series.index)
    y = series.to_numpy()
    open_ = ~((series.index.hour < 8) | (series.index.hour >= 18) | (series.index.dayofweek >= 5))
    announced = np.zeros(len(y), dtype=bool)
    for e in events:
        announced |= (series.index >= e.start) & (series.index < e.end)
    return closure_days(st, y, np.asarray(open_), announced, td_ns(STEP))


def band(series: pd.Series) -> tuple[float, float]:
    """(median, p95) summed over the open hours of the day after the history."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = Calendar().fit(series).predict(24)
    return float(fc.quantiles[0.5].sum()), float(fc.quantiles[0.95].sum())


def test_band_after_a_ten_day_closure_is_the_ordinary_one() -> None:
    # The last week is open again (Mon 23 Mar .. Fri 27 Mar 2026 and the weekend); the closure
    # (Thu 12 .. Sat 21 Mar) lies inside the last four weeks, where the intervals are calibrated.
    base = shop()
    history = base.iloc[: -168 + 24 * 4]  # up to Friday 00:00 of the last week
    shut = closed(history, "2026-03-12", 10)
    plain_median, plain_p95 = band(history)
    median, p95 = band(shut)
    assert abs(median / plain_median - 1) < 0.15, (median, plain_median)
    assert p95 / median < 1.15 * plain_p95 / plain_median, (p95 / median, plain_p95 / plain_median)


def test_closure_days_are_whole_zero_days_in_normally_open_hours() -> None:
    base = shop()
    shut = closed(base, "2026-03-12", 10)
    days = sorted(set(shut.index[mask(shut)].strftime("%m-%d")))
    # The weekdays of the closure; its weekend is shut anyway (not open hours).
    assert days == ["03-12", "03-13", "03-16", "03-17", "03-18", "03-19", "03-20"]
    assert not mask(base).any()


def test_not_a_closure_inside_an_event_nor_on_a_sparse_series() -> None:
    shut = closed(shop(), "2026-03-12", 1)
    holiday = Event(start=pd.Timestamp("2026-03-12", tz="UTC"), end=pd.Timestamp("2026-03-13", tz="UTC"),
                    kind="holiday", name="a bank holiday")
    assert mask(shut).any()
    assert not mask(shut, (holiday,)).any()  # an announced holiday is its kind's lift to learn
    sparse = shop(rate=0.08, seed=5)  # about one order a day: empty days are chance, not a closure
    assert ((sparse.resample("D").sum() == 0) & (sparse.resample("D").sum().index.dayofweek < 5)).any()
    assert not mask(sparse).any()


def test_a_weekday_open_once_is_not_a_closure_every_other_week() -> None:
    base = shop()
    saturday = (base.index >= pd.Timestamp("2026-02-07T08:00Z")) & (base.index < pd.Timestamp("2026-02-07T18:00Z"))
    opened = base.copy()
    opened[saturday] = 50.0
    st, y = stamps_ns(opened.index), opened.to_numpy()
    open_ = ~((opened.index.hour < 8) | (opened.index.hour >= 18))  # Saturday hours are not closed slots now
    weekdays = opened.index.dayofweek < 5
    found = closure_days(st, y, np.asarray(open_ & (weekdays | (opened.index.dayofweek == 5))),
                         np.zeros(len(y), dtype=bool), td_ns(STEP))
    assert not found.any()
