"""The casino trace generator: deterministic, casino-shaped, events that lift 2-6x."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.synth import KINDS, synth_trace


def test_same_seed_same_trace_other_seed_other_trace() -> None:
    a, ev_a = synth_trace(days=3, step="5min", seed=7)
    b, ev_b = synth_trace(days=3, step="5min", seed=7)
    c, _ = synth_trace(days=3, step="5min", seed=8)
    pd.testing.assert_series_equal(a, b)
    assert ev_a == ev_b
    assert not a.equals(c)


def test_shape_evening_peak_weekend_uplift_and_utc_grid() -> None:
    series, _ = synth_trace(days=14, step="1h", seed=1, base_per_minute=500)
    assert str(series.index.tz) == "UTC" and series.index.freq == pd.Timedelta("1h")
    assert len(series) == 14 * 24
    by_hour = series.groupby(series.index.hour).median()
    assert by_hour.idxmax() in range(19, 24)
    assert by_hour.idxmin() in range(3, 9)
    weekday = series[series.index.day_of_week < 4].median()
    weekend = series[series.index.day_of_week >= 5].median()
    assert weekend > 1.15 * weekday


def test_coarser_steps_are_sums_of_the_minute_trace() -> None:
    minute, _ = synth_trace(days=2, step="1min", seed=5)
    five, _ = synth_trace(days=2, step="5min", seed=5)
    np.testing.assert_allclose(minute.to_numpy().reshape(-1, 5).sum(axis=1), five.to_numpy())


def test_events_lift_traffic_two_to_six_times() -> None:
    series, events = synth_trace(days=21, step="1min", seed=7)
    assert {e.kind for e in events} == {k.name for k in KINDS}
    assert len({e.name for e in events}) == len(events)
    assert all(e.end > e.start for e in events)
    lifts = []
    for event in events:
        inside = series[event.start + pd.Timedelta(minutes=30) : event.end - pd.Timedelta(minutes=1)]
        week_before = series[event.start - pd.Timedelta(days=7) + pd.Timedelta(minutes=30) :
                             event.end - pd.Timedelta(days=7) - pd.Timedelta(minutes=1)]
        if len(inside) > 5 and len(week_before) == len(inside):
            lifts.append(inside.mean() / week_before.mean())
    assert len(lifts) >= 5
    assert 1.5 < float(np.median(lifts)) < 6.5
    assert max(lifts) > 3.0


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"days": 0}, "days"), ({"step": "7min"}, "step"), ({"step": "30s"}, "step"), ({"base_per_minute": 0}, "base")],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        synth_trace(**kwargs)  # type: ignore[arg-type]
