"""The operator fits while its cycle stays within half the sync period (``CycleDeadline``), not a fixed budget.

``ForecastCache`` with a deadline on a made-up clock: each fit of a tiny forecaster (``Flat``) takes
one second of it, each policy's other work a tenth, so what is tested is when the cache fits. Then the
production wiring: ``build_operator`` puts a deadline of half the sync period in the cache unless
``fit_budget`` (``--fit-budget``) asks for a fixed budget.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Self

import pandas as pd

from controller.cycle.deadline import CycleDeadline, FitBudget
from controller.operator.app import build_operator
from controller.operator.forecasts import ForecastCache
from controller.operator.resources import parse_policy_spec
from forecasting.base import Event
from tests.controller.cycle.flat_model import STEP, T0, Flat
from tests.controller.operator.harness import policy_spec
from tests.kube.fixtures import api_client_for

SPEC = parse_policy_spec(policy_spec())


class Clock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


CLOCK = Clock()


class Slow(Flat):
    """``Flat``, whose fit takes one second of ``CLOCK``."""

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        CLOCK.t += 1.0
        return super().fit(history, events)


def _history() -> pd.Series:
    return pd.Series(1.0, index=pd.date_range(T0 - 99 * STEP, T0, freq=STEP))


def _cycle(cache: ForecastCache, uids: Sequence[str], other: float) -> int:
    """One cycle over ``uids``: each policy's forecast, then ``other`` seconds of its other work. Its fits."""
    cache.start_cycle(len(uids))
    fits = cache.fits
    for uid in uids:
        cache.next_policy()
        cache.get(uid, 1, SPEC, _history(), [])
        CLOCK.t += other
    cache.end_cycle()
    return cache.fits - fits


def test_fits_fill_what_the_rest_of_the_cycle_leaves_of_the_deadline() -> None:
    cache = ForecastCache(lambda _name: Slow(), deadline=CycleDeadline(7.5), timer=CLOCK)
    uids = [f"p{i}" for i in range(20)]
    # 20 policies x 0.1 s of other work = 2 s of rest. The first cycle, its rest unknown, fits the floor's
    # worth (one fit: 1 s > 0.75 s); then 5 one-second fits fit in 7.5 s (elapsed + next fit + rest <= 7.5).
    per_cycle = [_cycle(cache, uids, 0.1) for _ in range(4)]
    assert per_cycle == [1, 5, 5, 5], per_cycle
    assert cache.deferred > 0


def test_the_floor_fits_a_tenth_of_the_deadline_when_the_rest_alone_overruns_it() -> None:
    cache = ForecastCache(lambda _name: Slow(), deadline=CycleDeadline(10.0), timer=CLOCK)
    uids = [f"p{i}" for i in range(40)]
    # 40 x 0.5 s = 20 s of other work, twice the 10 s deadline: fits still run while this cycle fitted
    # under a tenth of it (1 s): one one-second fit per cycle, so every policy is fitted in time.
    assert [_cycle(cache, uids, 0.5) for _ in range(3)] == [1, 1, 1]


def test_the_operator_wires_a_deadline_of_half_the_sync_period_unless_a_fit_budget_is_given() -> None:
    def build(**kwargs: Any) -> Any:
        return build_operator(api_client_for("http://127.0.0.1:9"), namespace=None,
                              demand=lambda _p, _s: None,  # type: ignore[arg-type,return-value]
                              sync_period=timedelta(seconds=15), leader_election=False, **kwargs)

    op = build()
    try:
        rule = op.reconciler.forecasts.rule
        assert isinstance(rule, CycleDeadline) and rule.limit == 7.5 and rule.floor == 0.75
    finally:
        op.close()
    op = build(fit_budget=timedelta(seconds=2))
    try:
        rule = op.reconciler.forecasts.rule
        assert isinstance(rule, FitBudget) and rule.seconds == 2.0
    finally:
        op.close()
