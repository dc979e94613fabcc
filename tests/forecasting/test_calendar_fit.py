"""The calendar model's free functions and its frozen fitted state (``CalendarFit``).

``fit_calendar`` / ``update_calendar`` / ``predict_calendar`` give what the ``Calendar`` wrapper
gives, and an update returns a new fit without touching the one it started from, also inside an
event, where the residual filter's state grows by the occurrence's deviation.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from forecasting.base import Event, Forecast
from forecasting.models.calendar import Calendar
from forecasting.models.calendar_fit import fit_calendar
from forecasting.models.calendar_predict import predict_calendar, update_calendar
from forecasting.models.calendar_state import CalendarConfig

START = pd.Timestamp("2026-02-02T00:00:00Z")
STEP = pd.Timedelta(minutes=30)


def world() -> tuple[pd.Series, list[Event]]:
    """Ten days of a daily sine with AR(1) noise (~5%) and a 4-hour 2x promo at 18:00 every day."""
    rng = np.random.default_rng(5)
    index = pd.date_range(START, periods=10 * 48, freq=STEP)
    hours = np.asarray(index.hour + index.minute / 60, dtype=float)
    level = 100 * (1.6 + np.sin(2 * np.pi * (hours - 15) / 24))
    events = []
    for day in range(10):
        start = START + pd.Timedelta(days=day, hours=18)
        events.append(Event(f"promo-{day}", "promo", start, start + pd.Timedelta(hours=4)))
        level[(index >= start) & (index < start + pd.Timedelta(hours=4))] *= 2.0
    noise = np.zeros(len(index))
    for i, shock in enumerate(rng.normal(0, 0.03, len(index))):
        noise[i] = 0.8 * noise[i - 1] + shock if i else shock
    return pd.Series(level * np.exp(noise), index=index), events


def same(a: Forecast, b: Forecast) -> bool:
    return (
        a.index.equals(b.index)
        and np.array_equal(a.mean, b.mean)
        and a.quantiles.keys() == b.quantiles.keys()
        and all(np.array_equal(a.quantiles[q], b.quantiles[q]) for q in a.quantiles)
    )


def test_free_functions_forecast_what_the_wrapper_forecasts() -> None:
    series, events = world()
    cut = START + pd.Timedelta(days=9, hours=17)
    history, new = series[series.index < cut], series[series.index >= cut].iloc[:5]
    model = Calendar().fit(history, events).update(new)
    fit = update_calendar(fit_calendar(history, events, CalendarConfig()), new)
    assert same(model.predict(12, events), predict_calendar(fit, 12, events, model="calendar"))


def test_update_returns_a_new_fit_and_leaves_the_old_one_as_it_was() -> None:
    series, events = world()
    cut = START + pd.Timedelta(days=9, hours=17)  # an hour before the last promo
    fit0 = fit_calendar(series[series.index < cut], events)
    rest = series[series.index >= cut]
    fit1 = update_calendar(fit0, rest.iloc[:4])  # into the promo: its deviation joins the state
    assert fit1 is not fit0 and fit1.last == rest.index[3] and fit0.last < fit1.last
    assert len(fit1.keys) == 1 and not fit0.keys
    before0 = predict_calendar(fit0, 8, events, model="calendar")
    before1 = predict_calendar(fit1, 8, events, model="calendar")
    fit2 = update_calendar(fit1, rest.iloc[4:6])  # further inside the same promo
    assert fit2.last == rest.index[5]
    assert same(predict_calendar(fit0, 8, events, model="calendar"), before0)
    assert same(predict_calendar(fit1, 8, events, model="calendar"), before1)
    assert update_calendar(fit2, rest.iloc[:2]) is fit2  # only old points: nothing to absorb


def test_a_fit_is_frozen_and_its_arrays_read_only() -> None:
    series, events = world()
    fit = fit_calendar(series, events)
    with pytest.raises(dataclasses.FrozenInstanceError):
        fit.offset = 1.0  # type: ignore[misc]
    for arr in (fit.beta_s, fit.beta_e, fit.x, fit.P, fit.closed):
        with pytest.raises(ValueError, match="read-only"):
            arr[...] = 0


def test_fit_calendar_names_a_history_too_short_to_fit() -> None:
    series, events = world()
    with pytest.raises(ValueError, match=r"^history: history spans .* needs two days of history"):
        fit_calendar(series.iloc[:20], events)


@pytest.mark.parametrize(
    ("field", "value"), [("daily_harmonics", -1), ("prior_weight", 0.0), ("max_points", 5)]
)
def test_config_names_the_bad_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match="harmonics" if field == "daily_harmonics" else field):
        CalendarConfig(**{field: value})
