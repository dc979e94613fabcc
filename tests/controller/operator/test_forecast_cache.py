"""The operator's ForecastCache: its fit budget is a hard cap, also when updates fail.

Once a cycle has spent its budget (here one microsecond: the first fit of a cycle always runs, the
next ones are over budget), no other fit runs in that cycle: not a refit due by age, not a first fit,
and not the refit a failed update would call for. A tiny forecaster stands in for a model (what is
tested is when the cache fits, not forecasting); the rules are ``controller.cycle.feed``'s.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import ClassVar, Self

import pandas as pd

from controller.operator.forecasts import ForecastCache
from controller.operator.resources import parse_policy_spec
from forecasting.base import Event
from tests.controller.cycle.flat_model import STEP, T0, Flat
from tests.controller.operator.harness import policy_spec

SPEC = parse_policy_spec(policy_spec())


class Flaky(Flat):
    """``Flat``, whose update raises while ``Flaky.failing``."""

    name: ClassVar[str] = "flaky"
    failing: ClassVar[bool] = False

    def update(self, new_points: pd.Series) -> Self:
        if Flaky.failing:
            raise ValueError("new_points: broken on purpose")
        return super().update(new_points)


def _history(minute: int) -> pd.Series:
    end = T0 + minute * STEP
    return pd.Series(1.0 + minute, index=pd.date_range(end - 99 * STEP, end, freq=STEP))


def _cycle(cache: ForecastCache, minute: int, uids: Sequence[str]) -> tuple[int, int]:
    """One cycle over the policies: (fits, policies with a forecast)."""
    cache.start_cycle()
    fits = cache.fits
    got = [cache.get(uid, 1, SPEC, _history(minute), [])[0] for uid in uids]
    return cache.fits - fits, sum(f is not None for f in got)


def test_the_fit_budget_is_a_hard_cap_when_updates_fail() -> None:
    Flaky.failing = False
    cache = ForecastCache(lambda _name: Flaky(), fit_budget=timedelta(microseconds=1))
    uids = ("a", "b", "c")
    assert [_cycle(cache, 0, uids) for _ in range(3)] == [(1, 1), (1, 2), (1, 3)]  # one first fit per cycle
    try:
        Flaky.failing = True
        # A new step: every update fails. The first policy refits (a cycle's first fit always runs);
        # the others keep the forecast they have, and their refits wait for later cycles.
        assert _cycle(cache, 1, uids) == (1, 3)
        assert _cycle(cache, 1, uids) == (1, 3)
        assert _cycle(cache, 1, uids) == (1, 3)
    finally:
        Flaky.failing = False
    assert _cycle(cache, 1, uids) == (0, 3)  # every refit done, nothing new: reuse


def test_many_keys_changing_in_one_cycle_queue_their_refits_within_the_budget() -> None:
    """A new event for every policy: one refit a cycle (the budget), every policy keeps a forecast, the
    others' notes say they decide on the previous one, and the queue drains one policy a cycle."""
    cache = ForecastCache(lambda _name: Flat(), fit_budget=timedelta(microseconds=1))
    uids = [f"p{i}" for i in range(10)]
    for _ in uids:
        _cycle(cache, 0, uids)
    event = Event("saturday", "tournament", T0 + 3 * STEP, T0 + 9 * STEP, 4.0)
    drained = []
    for _ in range(len(uids) + 1):
        cache.start_cycle()
        fits = cache.fits
        got = [cache.get(uid, 1, SPEC, _history(0), [event]) for uid in uids]
        assert all(forecast is not None for forecast, _ in got)  # every policy decides on a forecast
        notes = [note for _, note in got if note is not None]
        assert all("previous forecast" in n and "the event calendar changed" in n for n in notes), notes
        drained.append((cache.fits - fits, len(notes)))
    assert drained == [(1, 9 - i) for i in range(10)] + [(0, 0)]


def test_a_changed_metric_over_budget_drops_the_previous_forecast() -> None:
    cache = ForecastCache(lambda _name: Flat(), fit_budget=timedelta(microseconds=1))
    uids = ("a", "b")
    _cycle(cache, 0, uids)
    _cycle(cache, 0, uids)
    other = parse_policy_spec(policy_spec(metric={"promql": "sum(rate(other_total[1m]))"}))
    cache.start_cycle()
    got = [cache.get(uid, 2, other, _history(0), []) for uid in uids]
    assert got[0][0] is not None and got[0][1] is None  # the cycle's first fit
    assert got[1][0] is None and got[1][1] is not None and "the demand metric changed" in got[1][1]
    assert "fit budget" in got[1][1]
