"""The calendar model's in-event nowcast: an occurrence's realised lift, learned through update()."""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.base import Event
from forecasting.models.calendar import Calendar

START = pd.Timestamp("2026-02-02T00:00:00Z")
STEP = pd.Timedelta(minutes=10)


def world(last_lift: float, seed: int = 0) -> tuple[pd.Series, list[Event]]:
    """Twelve days of a daily sine with 3% noise; a 4-hour promo at 18:00 every day, lift ~2x
    (varying 10% between occurrences); the last day's promo lifts ``last_lift`` instead."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(START, periods=12 * 144, freq=STEP)
    hours = index.hour + index.minute / 60
    base = 100 * (1.6 + np.sin(2 * np.pi * (hours - 15) / 24))
    factor = np.ones(len(index))
    events = []
    for day in range(12):
        start = START + pd.Timedelta(days=day, hours=18)
        events.append(Event(f"promo-{day}", "promo", start, start + pd.Timedelta(hours=4)))
        lift = last_lift if day == 11 else 2.0 * float(np.exp(rng.normal(0, 0.1)))
        factor[(index >= start) & (index < start + pd.Timedelta(hours=4))] = lift
    return pd.Series(base * factor * np.exp(rng.normal(0, 0.03, len(index))), index=index), events


def replay(series: pd.Series, events: list[Event], seen_until: pd.Timestamp) -> Calendar:
    """Fit before the last promo, then update() step by step until ``seen_until``."""
    cut = START + pd.Timedelta(days=11, hours=17)
    model = Calendar().fit(series[series.index < cut], events)
    for stamp in series.index[(series.index >= cut) & (series.index < seen_until)]:
        model.update(series[[stamp]])
    return model


def test_update_inside_an_event_moves_the_forecast_to_the_realised_lift_and_narrows_it() -> None:
    series, events = world(last_lift=2.6)  # this occurrence runs ~30% above the kind's usual lift
    promo = events[-1]
    before = replay(series, events, promo.start)
    inside = replay(series, events, promo.start + pd.Timedelta(hours=1, minutes=30))
    fc_before, fc_inside = before.predict(30, events), inside.predict(12, events)
    rest = fc_inside.index[fc_inside.index < promo.end]
    actual = series.reindex(rest).to_numpy()
    # The realised lift is learned: the rest of the event is forecast near what it is, not at 2x.
    naive = fc_before.quantiles[0.5][fc_before.index.isin(rest)]
    nowcast = fc_inside.quantiles[0.5][: len(rest)]
    assert np.mean(np.abs(np.log(nowcast / actual))) < 0.5 * np.mean(np.abs(np.log(naive / actual)))
    # ...and its uncertainty mostly resolved: a narrower relative 95% band than before the start.
    width_before = np.log(fc_before.quantiles[0.95] / fc_before.quantiles[0.5])[fc_before.index.isin(rest)]
    width_inside = np.log(fc_inside.quantiles[0.95] / fc_inside.quantiles[0.5])[: len(rest)]
    assert width_inside.mean() < 0.8 * width_before.mean()
    assert (fc_inside.quantiles[0.95][: len(rest)] >= 0.95 * actual).mean() >= 0.8


def test_overlapping_events_widen_the_interval_more_than_either_alone() -> None:
    series, events = world(last_lift=2.0)
    cut = START + pd.Timedelta(days=11, hours=17)
    model = Calendar().fit(series[series.index < cut], events)
    promo = events[-1]
    twin = Event("promo-twin", "promo", promo.start, promo.end)
    one, two = model.predict(24, events), model.predict(24, [*events, twin])
    during = np.asarray((one.index >= promo.start + pd.Timedelta(hours=1)) & (one.index < promo.end))
    spread_one = np.log(one.quantiles[0.95] / one.quantiles[0.5])[during]
    spread_two = np.log(two.quantiles[0.95] / two.quantiles[0.5])[during]
    assert (spread_two > spread_one).all()
    assert (two.quantiles[0.5][during] > 1.5 * one.quantiles[0.5][during]).all()  # lifts multiply
