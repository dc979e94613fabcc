"""Daily and coarser steps: calendar and holt-winters are real models there, and a fallback says so.

Issue 9: on daily data both models fell back to seasonal-naive ("needs two
days of sub-daily data") and the backtest printed three identical rows. The
daily series is data/us_births_daily.csv (US births, with the holidays
package's US calendar as events; data/README.md).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from controller.traceio import read_events, read_series
from forecasting import registry
from forecasting.backtest import backtest
from forecasting.base import Event
from forecasting.features import DAY_BINS, event_window
from forecasting.models.calendar import Calendar
from forecasting.models.holt_winters import HoltWinters
from forecasting.timeutil import stamps_ns, td_ns
from tests.conftest import DATA

DAY = pd.Timedelta(days=1)


@pytest.fixture(scope="module")
def births() -> tuple[pd.Series, list[Event]]:
    """The last four years of the daily births series and its holiday calendar."""
    series = read_series(DATA / "us_births_daily.csv")
    return series.iloc[-4 * 365 :], read_events(DATA / "us_births_daily_events.csv")


def test_whole_day_bins_around_an_event() -> None:
    index = pd.date_range("2026-12-20", periods=12, freq="D", tz="UTC")
    christmas = Event("christmas", "holiday", pd.Timestamp("2026-12-25", tz="UTC"),
                      pd.Timestamp("2026-12-26", tz="UTC"))
    i0, i1, bins = event_window(stamps_ns(index), christmas, td_ns(DAY))
    labels = [DAY_BINS[j] for j in bins.argmax(axis=1)]
    assert (index[i0].day, index[i1 - 1].day) == (23, 27)
    assert labels == ["pre2", "pre1", "day", "post1", "post2"]
    # An evening event touches only the day it falls on; a three-day event fills three "day" steps.
    evening = Event("cup", "tournament", pd.Timestamp("2026-12-24T20:00", tz="UTC"),
                    pd.Timestamp("2026-12-24T23:00", tz="UTC"))
    i0, _, bins = event_window(stamps_ns(index), evening, td_ns(DAY))
    assert index[i0 + int(np.flatnonzero(bins[:, DAY_BINS.index("day")])[0])].day == 24
    fair = Event("fair", "fair", pd.Timestamp("2026-12-22", tz="UTC"), pd.Timestamp("2026-12-25", tz="UTC"))
    _, _, bins = event_window(stamps_ns(index), fair, td_ns(DAY))
    assert bins[:, DAY_BINS.index("day")].sum() == 3 and bins.sum() == 7


def test_calendar_learns_holidays_on_daily_data(births: tuple[pd.Series, list[Event]]) -> None:
    series, events = births
    cut = series.index.get_loc(pd.Timestamp("2014-12-18", tz="UTC"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no fallback warning
        model = Calendar().fit(series.iloc[:cut], events)
    assert model.fallback_reason is None
    fc = model.predict(14, events)
    assert fc.fallback is None and fc.index[0] == series.index[cut]
    actual = series.iloc[cut : cut + 14].to_numpy()
    christmas = int(np.flatnonzero(fc.index == pd.Timestamp("2014-12-25", tz="UTC"))[0])
    point = fc.quantile(0.5)
    # Christmas: a third below the days around it, within 15 % of what happened (a normal day is +75 %).
    assert point[christmas] < 0.75 * np.median(point)
    assert point[christmas] == pytest.approx(actual[christmas], rel=0.15)
    assert np.mean(np.abs(point - actual) / actual) < 0.06


def test_holt_winters_uses_a_weekly_season_on_daily_data(births: tuple[pd.Series, list[Event]]) -> None:
    series, _ = births
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model = HoltWinters().fit(series.iloc[:-14])
    fc = model.predict(14)
    assert fc.fallback is None and model.fallback_reason is None
    point, actual = fc.quantile(0.5), series.iloc[-14:].to_numpy()
    weekend = fc.index.day_of_week >= 5
    assert point[weekend].mean() < 0.8 * point[~weekend].mean()  # the weekly cycle, not a flat line
    assert np.median(np.abs(point - actual) / actual) < 0.1


def test_backtest_on_the_daily_trace_is_no_fallback(births: tuple[pd.Series, list[Event]]) -> None:
    series, events = births
    names = ("seasonal-naive", "holt-winters", "calendar")
    result = backtest(series, events, {n: (lambda n=n: registry.create(n)) for n in names},
                      horizon=7, every=7, test_steps=56)
    scores = result.models
    assert scores["calendar"].fallback is None and scores["holt-winters"].fallback is None
    assert result.to_json()["models"]["calendar"]["fallback"] is None
    assert not any("falling back" in note for notes in result.warnings.values() for note in notes)
    sn, cal = scores["seasonal-naive"], scores["calendar"]
    assert cal.mase != pytest.approx(sn.mase, rel=0.05)
    assert not np.allclose(result.paths["calendar"]["q50"], result.paths["seasonal-naive"]["q50"], rtol=0.01)
    assert cal.event_mase is not None and sn.event_mase is not None and cal.event_mase < sn.event_mase


def test_weekly_steps_get_a_yearly_season(births: tuple[pd.Series, list[Event]]) -> None:
    series, events = births
    weekly = series.resample("7D").sum()
    weekly.index.freq = pd.Timedelta(days=7)
    for model in (Calendar(), HoltWinters()):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            fc = model.fit(weekly.iloc[:-8], events).predict(8, events)
        assert fc.fallback is None, type(model).__name__
        err = np.abs(fc.quantile(0.5) - weekly.iloc[-8:].to_numpy()) / weekly.iloc[-8:].to_numpy()
        assert np.median(err) < 0.1, type(model).__name__


def test_too_short_a_daily_history_falls_back_with_the_reason(births: tuple[pd.Series, list[Event]]) -> None:
    series, events = births
    short = series.iloc[-10:]
    for model in (Calendar(), HoltWinters()):
        with pytest.warns(UserWarning, match=f"{model.name}: .*falling back to seasonal-naive"):
            model.fit(short, events)
        assert model.fallback_reason is not None and "needs" in model.fallback_reason
        assert model.predict(3, events).fallback == "seasonal-naive"
    result = backtest(series.iloc[-18:], events, {"calendar": Calendar}, horizon=2, every=2, test_steps=6)
    assert result.models["calendar"].fallback == "seasonal-naive"
    assert result.to_json()["models"]["calendar"]["fallback"] == "seasonal-naive"
    assert any("calendar:" in note and "falling back" in note for note in result.warnings["calendar"])


def test_auto_picks_on_a_week_ahead_over_four_weeks(births: tuple[pd.Series, list[Event]]) -> None:
    series, events = births
    model = registry.create("auto").fit(series.iloc[-2 * 365 :], events)
    assert set(model.scores) == {"seasonal-naive", "holt-winters", "calendar"}  # type: ignore[attr-defined]
    assert model.chosen in model.scores  # type: ignore[attr-defined]
    fc = model.predict(7, events)
    assert len(fc.index) == 7 and fc.fallback is None
