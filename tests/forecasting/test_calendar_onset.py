"""The calendar model's onset profile: a short event's ramp must not drag its plateau down.

A crowd ramps in minutes, not in shares of the event's duration: the past tournaments here last
two hours (ramp bins of 30 minutes) and all fill in their first ten minutes; the live one lasts 36
minutes (ramp bins of 9). Read against the bins learned on the long ones, every point of its real
ramp is far below the bins' lift, and the update took that for a weaker tournament (the demo's
mid-event flap, docs/demo.md). Read against the kind's lift by minute since start, it is not.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from forecasting.base import Event
from forecasting.models.calendar import Calendar

START = pd.Timestamp("2026-01-05T00:00:00Z")
STEP = pd.Timedelta(minutes=1)
DAYS = 15
LIFT = 3.5
RAMP = 10  # minutes, whatever the event's length


def world(seed: int = 3, *, scaled: bool = False) -> tuple[pd.Series, list[Event], Event]:
    """Fifteen days of 1-minute demand (a daily sine, 8% noise); a two-hour tournament at 19:00 on
    each of the first fourteen days, then a 36-minute one at 13:00 on the last; each ramps linearly
    to ``LIFT`` over its first ``RAMP`` minutes and ends sharply. ``scaled``: the past ones last
    60 to 120 minutes and each ramps in four steps over a quarter of its length, as the shape
    bins assume (``features.NOMINAL_SHAPE``)."""
    rng = np.random.default_rng(seed)
    index = pd.date_range(START, periods=DAYS * 1440, freq=STEP)
    hours = index.hour + index.minute / 60
    base = 20 * (1.5 + np.sin(2 * np.pi * (hours - 9) / 24))
    factor = np.ones(len(index))
    events = []
    for day in range(DAYS):
        live = day == DAYS - 1
        start = START + pd.Timedelta(days=day, hours=13 if live else 19)
        minutes = 36 if live else (60 + 60 * day // (DAYS - 2) if scaled else 120)
        end = start + pd.Timedelta(minutes=minutes)
        events.append(Event(f"t-{day}", "tournament", start, end, expected_lift=LIFT))
        t = np.asarray((index - start) / STEP, dtype=float)
        on = (index >= start) & (index < end)
        if scaled:
            quarter = np.minimum(t[on] // (min(minutes / 4, 30) / 4), 4).astype(int)
            factor[on] = LIFT ** np.array([0.3, 0.55, 0.8, 0.95, 1.0])[quarter]
        else:
            factor[on] = 1 + (LIFT - 1) * np.clip(t[on] / RAMP, 0, 1)
    series = pd.Series(base * factor * np.exp(rng.normal(0, 0.08, len(index))), index=index)
    return series, events, events[-1]


def plateau_median(model: Calendar, live: Event, events: list[Event]) -> float:
    """The median forecast over the live event's plateau (from its minute 12 to its end)."""
    fc = model.predict(60, events)
    on = (fc.index >= live.start + pd.Timedelta(minutes=12)) & (fc.index < live.end)
    return float(np.mean(fc.quantile(0.5)[on]))


def test_a_short_events_ramp_keeps_its_plateau() -> None:
    series, events, live = world()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Calendar().fit(series[series.index < live.start], events)
    before = plateau_median(model, live, events)
    lowest = before
    for stamp in series.index[(series.index >= live.start) & (series.index < live.start + pd.Timedelta(minutes=9))]:
        model.update(series[[stamp]])
        lowest = min(lowest, plateau_median(model, live, events))
    seen = series[(series.index >= live.start + pd.Timedelta(minutes=12)) & (series.index < live.end)]
    # Before the ramp the plateau is forecast at what it turns out to be...
    assert abs(before / float(seen.mean()) - 1) < 0.1
    # ... and the ramp, on time and as steep as every past one, must not revise it down.
    assert lowest > 0.9 * before, f"plateau revised from {before:.1f} down to {lowest:.1f} during the ramp"


def test_the_onset_profile_is_kept_only_where_it_beats_the_bins() -> None:
    series, events, live = world()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = Calendar().fit(series[series.index < live.start], events)
    assert model.fitted is not None
    onset = model.fitted.onset["tournament"]
    # The profile follows the real ramp: about a quarter of the plateau lift after 1 of 10 minutes ...
    plateau = float(np.log(LIFT))
    assert abs(onset.lift[1] / plateau - np.log(1 + (LIFT - 1) / RAMP) / plateau) < 0.1
    assert abs(onset.lift[RAMP + 5] / plateau - 1) < 0.1
    # ... while a kind whose ramps scale with their length, as the bins do, keeps its bins.
    series, events, live = world(scaled=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scaled = Calendar().fit(series[series.index < live.start], events)
    assert scaled.fitted is not None
    assert "tournament" not in scaled.fitted.onset
