"""Partial pooling of event kinds: a kind seen rarely is shrunk toward no lift, up or down.

One occurrence of a kind says little about the next one: the calendar model
keeps only the fraction n tau^2 / (n tau^2 + sigma^2) of its learned log lift
(``calendar_stats.pool_kinds``), so a rare kind moves the forecast part of
the way and a frequent one all of it; lifts below 1 shrink toward 1 too.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting.base import Event
from forecasting.models.calendar import Calendar

START = pd.Timestamp("2026-02-02T00:00:00Z")
STEP = pd.Timedelta(minutes=10)


def world(lift: float, rare_days: tuple[int, ...], days: int = 22) -> tuple[pd.Series, list[Event]]:
    """Daily sine with 3 % noise; kind "weekly" every other day at 20:00 and kind "rare" on ``rare_days``
    at 14:00 (plus one more of each on the last day), both with ``lift``."""
    rng = np.random.default_rng(0)
    index = pd.date_range(START, periods=days * 144, freq=STEP)
    hours = index.hour + index.minute / 60
    values = np.asarray(100 * (1.6 + np.sin(2 * np.pi * (hours - 15) / 24)) * np.exp(rng.normal(0, 0.03, len(index))))
    events = []
    for day in (*range(1, days - 1, 2), days - 1):
        events.append(Event(f"w{day}", "weekly", START + pd.Timedelta(days=day, hours=20),
                            START + pd.Timedelta(days=day, hours=22)))
    for day in (*rare_days, days - 1):
        events.append(Event(f"r{day}", "rare", START + pd.Timedelta(days=day, hours=14),
                            START + pd.Timedelta(days=day, hours=16)))
    for event in events:
        values[(index >= event.start) & (index < event.end)] *= lift
    return pd.Series(values, index=index), events


def learned_lift(lift: float, rare_days: tuple[int, ...], kind: str) -> float:
    series, events = world(lift, rare_days)
    cut = (len(series) // 144 - 1) * 144  # fit up to the last day, forecast it
    fc = Calendar().fit(series.iloc[:cut], events).predict(144, events)
    event = next(e for e in events if e.kind == kind and e.start >= series.index[cut])
    inside = np.asarray((fc.index >= event.start + pd.Timedelta(minutes=40)) & (fc.index < event.end))
    hours = fc.index.hour + fc.index.minute / 60
    base = np.asarray(100 * (1.6 + np.sin(2 * np.pi * (hours - 15) / 24)))
    return float(np.median(fc.quantile(0.5)[inside] / base[inside]))


@pytest.mark.parametrize("lift", [2.0, 0.5])
def test_a_kind_seen_once_moves_part_of_the_way_a_frequent_one_all_of_it(lift: float) -> None:
    frequent = learned_lift(lift, (3,), "weekly")
    once = learned_lift(lift, (3,), "rare")
    often = learned_lift(lift, (3, 6, 9, 12, 15, 18), "rare")
    assert frequent == pytest.approx(lift, rel=0.1)
    assert often == pytest.approx(lift, rel=0.1)
    # Shrunk toward no lift: strictly between 1 and the learned lift, from above or below.
    assert abs(np.log(once)) < abs(np.log(often)) - 0.02
    assert np.sign(np.log(once)) == np.sign(np.log(lift))
