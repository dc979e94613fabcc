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
