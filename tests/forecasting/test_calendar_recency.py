"""A long history (26 weeks or more, sub-daily): own shapes per weekday and recency weights.

``calendar_fit._terms`` gives every weekday its own daily shape from ``LONG_SPAN`` on (not just
Fri/Sat/Sun), and ``shared_design.fit_design`` weighs the regression's rows by age
(``recency_weights``), caching the weighted Gram matrix X'WX with the design. Below ``LONG_SPAN``
(and at daily steps) both are off and the fit is the unweighted one (``test_shared_design``).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.base import Event
from forecasting.models import shared_design
from forecasting.models.calendar import Calendar
from forecasting.models.calendar_fit import _recency, _terms
from forecasting.models.calendar_state import CalendarConfig
from forecasting.series import WEEK

START = pd.Timestamp("2024-01-01", tz="UTC")  # a Monday


def _hourly(weeks: int, value: object) -> pd.Series:
    idx = pd.date_range(START, periods=weeks * 168, freq="1h")
    hour = idx.hour.to_numpy()
    dow = idx.dayofweek.to_numpy()
    age = (idx[-1] - idx) / WEEK
    rng = np.random.default_rng(5)
    base = 100 + 40 * np.sin(2 * np.pi * (hour - 6) / 24)
    y = value(base, hour, dow, np.asarray(age, dtype=float)) * np.exp(rng.normal(0, 0.03, len(idx)))
    return pd.Series(y, index=idx)


@pytest.mark.parametrize(
    ("weeks", "step", "weekdays", "weighted"),
    [
        (25, "1h", False, False),  # under half a year: Fri/Sat/Sun shapes only, equal weights
        (26, "1h", True, True),
        (40, "30min", True, True),
        (200, "1D", False, False),  # daily steps: no daily shape, yearly terms need every year
    ],
)
def test_long_histories_get_weekday_shapes_and_recency_weights(
        weeks: int, step: str, weekdays: bool, weighted: bool) -> None:
    cfg = CalendarConfig()
    span = weeks * WEEK
    assert _terms(cfg, pd.Timedelta(step), span).weekdays is weekdays
    assert (_recency(cfg, pd.Timedelta(step), span) is not None) is weighted
    assert _recency(CalendarConfig(recency_half_life=0), pd.Timedelta(step), span) is None  # switched off


def test_recency_weights_halve_per_half_life_down_to_the_floor() -> None:
    stamps = (np.arange(0, 40) * WEEK.value).astype(np.int64)  # one point a week, the last is the newest
    w = shared_design.recency_weights(stamps, pd.Timedelta(weeks=8), 0.3)
    assert w[-1] == 1.0
    assert w[-9] == pytest.approx(0.5)  # eight weeks old
    assert w[0] == 0.3  # 39 weeks old: 2^-4.9 is below the floor
    assert np.all(np.diff(w) >= 0)


def test_points_inside_event_windows_keep_the_event_floor() -> None:
    """The shape forgets old seasons (floor 0.05), a kind's lift keeps every occurrence (0.3)."""
    stamps = (np.arange(0, 40) * WEEK.value).astype(np.int64)
    inside = np.zeros(40, dtype=bool)
    inside[[2, 30, 39]] = True
    w = shared_design.recency_weights(stamps, pd.Timedelta(weeks=4), 0.05, inside, 0.3)
    assert w[0] == 0.05 and w[2] == 0.3 and w[39] == 1.0
    assert w[30] == pytest.approx(max(0.3, 2 ** (-9 / 4)))
    idx = pd.date_range(START, periods=27 * 168, freq="1h")
    holiday = Event("h", "holiday", idx[500], idx[524])  # 24 weeks before the end
    hist = pd.Series(100.0 + 10 * np.sin(np.arange(len(idx)) / 3.8), index=idx)
    shared_design.CACHE.clear()
    try:
        Calendar().fit(hist, [holiday])
        _, design = next(iter(shared_design.CACHE._entries.values()))
        assert design.weights is not None
        assert design.weights[500:524].min() == pytest.approx(0.3)  # inside the holiday's window
        assert design.weights[400] == pytest.approx(0.05)  # a day before it
    finally:
        shared_design.CACHE.clear()


def test_a_tuesday_rush_gets_its_own_shape() -> None:
    """Tuesday 03:00-05:00 doubles; Mon-Thu shared one shape before, so it spread over the week."""

    def value(base: np.ndarray, hour: np.ndarray, dow: np.ndarray, age: np.ndarray) -> np.ndarray:
        return base * np.where((dow == 1) & (hour >= 3) & (hour < 5), 2.0, 1.0)

    hist = _hourly(30, value)  # ends on a Sunday night: the forecast is Monday and Tuesday
    fc = Calendar().fit(hist).predict(48)
    med = fc.quantiles[0.5]
    tue, mon = med[24 + 3: 24 + 5], med[3:5]
    assert float(np.mean(tue / mon)) > 1.7, f"Tuesday rush / Monday: {tue / mon}"


def test_recent_weeks_outweigh_old_ones() -> None:
    """The evening peak moved from 18:00 to 20:00 twelve weeks ago (of 30): weighted, the fit follows it."""

    def value(base: np.ndarray, hour: np.ndarray, dow: np.ndarray, age: np.ndarray) -> np.ndarray:
        peak = np.where(age < 12, 20, 18)
        return base * (1 + 0.8 * (hour == peak))

    hist = _hourly(30, value)
    med = Calendar().fit(hist).predict(24).quantiles[0.5]
    ratio = float(med[20] / med[18])  # the new peak over the old one, next day
    # (the base is 100 at 18:00, 80 at 20:00.) Unweighted the old peak leads: 0.67; weighted 0.92.
    assert ratio > 0.8, f"20:00 / 18:00 = {ratio:.3f}"


def test_a_long_old_tail_does_not_outweigh_this_season() -> None:
    """Sixty weeks, the peak moved twenty weeks ago: with a floor of 0.3 the forty older weeks held
    most of the weight and the forecast kept the old peak (ratio 0.74); at 0.05 it follows the new (1.21)."""

    def value(base: np.ndarray, hour: np.ndarray, dow: np.ndarray, age: np.ndarray) -> np.ndarray:
        peak = np.where(age < 20, 20, 18)
        return base * (1 + 0.8 * (hour == peak))

    med = Calendar().fit(_hourly(60, value)).predict(24).quantiles[0.5]
    ratio = float(med[20] / med[18])  # (the base is 100 at 18:00, 80 at 20:00: 1.44 if it follows fully)
    assert ratio > 1.0, f"20:00 / 18:00 = {ratio:.3f}"


def test_the_weighted_gram_is_cached_and_forecasts_stay_bit_identical() -> None:
    hist = _hourly(27, lambda base, hour, dow, age: base)
    shared_design.CACHE.clear()
    try:
        a = [Calendar().fit(hist * k).predict(24) for k in (1, 3)]
        assert (shared_design.CACHE.built, shared_design.CACHE.hits) == (1, 1)
        _, design = next(iter(shared_design.CACHE._entries.values()))  # (grid end, design)
        assert design.weights is not None and design.weights.min() == pytest.approx(0.05)
        X, w = design.observed, design.weights
        assert np.allclose(design.gram, (X * w[:, None]).T @ X)  # X'WX, not X'X
        with shared_design.disabled():
            b = [Calendar().fit(hist * k).predict(24) for k in (1, 3)]
        for fa, fb in zip(a, b, strict=True):
            assert all(np.array_equal(fa.quantiles[q], fb.quantiles[q]) for q in fa.quantiles)
    finally:
        shared_design.CACHE.clear()
