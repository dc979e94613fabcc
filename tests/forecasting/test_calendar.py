"""The calendar model: per-kind lifts, priors for unseen kinds, overlaps, updates."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import backtest
from forecasting.base import Event
from forecasting.models.calendar import Calendar
from forecasting.models.seasonal_naive import SeasonalNaive

START = pd.Timestamp("2026-02-02T00:00:00Z")
STEP = pd.Timedelta(minutes=10)


def world(lifts: dict[str, float], days: int = 12, seed: int = 0) -> tuple[pd.Series, list[Event]]:
    """A daily sine with 3% noise; every 2 days at 20:00 an event of each kind in ``lifts``."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(START, periods=days * 144, freq=STEP)
    hours = index.hour + index.minute / 60
    base = 100 * (1.6 + np.sin(2 * np.pi * (hours - 15) / 24))
    factor = np.ones(len(index))
    events = []
    for day in range(1, days + 3, 2):
        for offset, (kind, lift) in enumerate(lifts.items()):
            start = START + pd.Timedelta(days=day + offset, hours=20)
            events.append(Event(f"{kind}-{day}", kind, start, start + pd.Timedelta(hours=2)))
            factor[(index >= start) & (index < start + pd.Timedelta(hours=2))] *= lift
    values = base * factor * np.exp(rng.normal(0, 0.03, len(index)))
    return pd.Series(values, index=index), events


def plateau(fc_index: pd.DatetimeIndex, event: Event) -> np.ndarray:
    return np.asarray((fc_index >= event.start + pd.Timedelta(minutes=40)) & (fc_index < event.end))


def baseline_at(index: pd.DatetimeIndex) -> np.ndarray:
    hours = index.hour + index.minute / 60
    return np.asarray(100 * (1.6 + np.sin(2 * np.pi * (hours - 15) / 24)))


@pytest.mark.parametrize(("lift", "unit"), [(3.0, "ns"), (0.5, "ns"), (3.0, "s"), (3.0, "us")])
def test_learns_the_lift_of_a_kind_from_past_events(lift: float, unit: str) -> None:
    """At any resolution of the history's stamps: pandas 3 parses text at s/us, and event windows
    that compared those raw integers with nanosecond event times matched nothing."""
    series, events = world({"tournament": lift})
    series.index = series.index.as_unit(unit)
    cut = series.index.get_loc(START + pd.Timedelta(days=11, hours=18))
    model = Calendar().fit(series.iloc[:cut], events)
    fc = model.predict(36, events)
    future = next(e for e in events if e.start > series.index[cut])
    inside = plateau(fc.index, future)
    ratio = fc.quantile(0.5)[inside] / baseline_at(fc.index[inside])
    assert np.median(ratio) == pytest.approx(lift, rel=0.12)
    assert (fc.quantile(0.95)[inside] > fc.quantile(0.5)[inside]).all()
    update = series.iloc[cut : cut + 6]
    model.update(update)
    assert model.predict(4, events).index[0] == update.index[-1] + STEP


def test_unseen_kind_uses_expected_lift_else_no_lift_with_a_band_spanning_the_seen_lifts() -> None:
    """A kind never seen: its ``expected_lift`` when announced; without one no lift (an unknown
    event may lower demand as well as raise it), with a band wide enough to reach the seen kinds'."""
    series, events = world({"tournament": 3.0})
    history = series.iloc[: 11 * 144]
    model = Calendar().fit(history, events)
    at = history.index[-1] + pd.Timedelta(hours=2)
    announced = Event("new", "slots_race", at, at + pd.Timedelta(hours=2), expected_lift=4.0)
    silent = Event("new2", "mystery", at, at + pd.Timedelta(hours=2))
    seen = Event("t", "tournament", at, at + pd.Timedelta(hours=2))
    out = {}
    for event in (announced, silent, seen):
        fc = model.predict(30, [event])
        inside = plateau(fc.index, event)
        out[event.kind] = (
            np.median(fc.quantile(0.5)[inside] / baseline_at(fc.index[inside])),
            np.median(fc.quantile(0.95)[inside] / fc.quantile(0.5)[inside]),
            np.median(fc.quantile(0.05)[inside] / fc.quantile(0.5)[inside]),
        )
    assert out["slots_race"][0] == pytest.approx(4.0, rel=0.12)
    assert out["mystery"][0] == pytest.approx(1.0, rel=0.1)  # no lift: it may as well lower demand
    assert out["mystery"][0] * out["mystery"][1] > 3.0  # its p95 still reaches the seen kind's lift
    assert out["mystery"][2] < 1 / 3.0  # and its p5 a drop as large
    assert out["slots_race"][1] > out["tournament"][1]
    assert out["mystery"][1] > out["slots_race"][1]


def test_overlapping_events_of_two_kinds_multiply() -> None:
    series, events = world({"promotion": 2.0, "tournament": 3.0})
    history = series.iloc[: 11 * 144]
    model = Calendar().fit(history, events)
    at = history.index[-1] + pd.Timedelta(hours=1)
    end = at + pd.Timedelta(hours=3)
    both = [Event("p", "promotion", at, end), Event("t", "tournament", at, end)]
    fc = model.predict(24, both)
    inside = plateau(fc.index, both[0])
    ratio = np.median(fc.quantile(0.5)[inside] / baseline_at(fc.index[inside]))
    assert ratio == pytest.approx(6.0, rel=0.2)


def test_update_matches_a_refit_closely_and_moves_the_origin() -> None:
    series, events = world({"tournament": 3.0})
    cut = 10 * 144
    updated = Calendar().fit(series.iloc[:cut], events)
    for i in range(cut, cut + 60, 6):  # an hour of 10-minute updates in small batches
        updated.update(series.iloc[i : i + 6])
    refit = Calendar().fit(series.iloc[: cut + 60], events)
    a, b = updated.predict(12, events), refit.predict(12, events)
    assert a.index.equals(b.index)
    np.testing.assert_allclose(a.quantile(0.5), b.quantile(0.5), rtol=0.1)


def test_beats_seasonal_naive_inside_events_on_a_casino_trace(casino_5m: tuple[pd.Series, list[Event]]) -> None:
    series, events = casino_5m
    result = backtest(
        series,
        events,
        {"calendar": Calendar, "seasonal-naive": SeasonalNaive},
        horizon=12,
        every=36,
        test_steps=288 * 2,
    )
    cal, naive = result.models["calendar"], result.models["seasonal-naive"]
    assert cal.event_mase is not None and naive.event_mase is not None
    assert cal.event_mase < 0.6 * naive.event_mase
    assert cal.mase < naive.mase
    assert 0.85 <= cal.coverage_95 <= 1.0


def test_short_history_warns_and_uses_seasonal_naive() -> None:
    series, events = world({"tournament": 3.0}, days=3)
    with pytest.warns(UserWarning, match="falling back to seasonal-naive"):
        model = Calendar().fit(series.iloc[:200], events)
    assert model.predict(6).model == "calendar"


@pytest.mark.parametrize("kwargs", [{"daily_harmonics": -1}, {"max_points": 5}])
def test_bad_parameters_name_the_field(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"harmonics|max_points"):
        Calendar(**kwargs)

