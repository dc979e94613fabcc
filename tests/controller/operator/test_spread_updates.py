"""The operator's ForecastCache spreads each step's forecast updates over the step's cycles.

With ``spread`` (the sync period; ``pitboss operator run`` sets it unless ``--no-spread-updates``)
each policy takes its new point in its phase of the k = step / sync period cycles of a step, or in
the first cycle after when its phase's was missed; one more than a step behind, it updates at once.
40 policies, a 1-minute step, 15 s cycles: 10 updates a cycle, not 40 in one and none in three. A
tiny forecaster stands in for a model (``tests/controller/cycle/flat_model.py``), except in the
last test: the production wiring (``build_operator``) on the strict emulator with the calendar model.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd
import pytest
from kubernetes import client

from controller.cycle.feed import value_at
from controller.operator.app import build_operator
from controller.operator.clock import FakeClock
from controller.operator.forecasts import ForecastCache, Phases, slot_of
from controller.operator.resources import parse_policy_spec
from tests.controller.cycle.flat_model import STEP, T0, Flat
from tests.controller.operator.harness import EVENT_START, TraceDemand, policy_spec
from tests.kube.fixtures import NAMESPACE, api_client_for, create, deployment, scaling_policy

SPEC = parse_policy_spec(policy_spec())
SYNC = timedelta(seconds=15)
UIDS = [f"p{i:02d}" for i in range(40)]


def _history(minute: int) -> pd.Series:
    """The history a cycle in the step after ``minute`` reads: its last point is that minute's."""
    end = T0 + minute * STEP
    return pd.Series(1.0 + minute, index=pd.date_range(end - 99 * STEP, end, freq=STEP))


def _cycle(cache: ForecastCache, minute: int, second: int, uids: Sequence[str] = UIDS) -> set[str]:
    """One cycle ``second`` s into the step after ``minute`` (its history ends at ``minute``): who updated.

    Every policy decides on a forecast covering now plus its lead time and sync period (the window
    ``decide`` reads), an updated one or, held, the one it had."""
    cache.start_cycle()
    now = (T0 + (minute + 1) * STEP + pd.Timedelta(seconds=second)).to_pydatetime()
    updated = set()
    for uid in uids:
        before = cache.updates
        forecast, note = cache.get(uid, 1, SPEC, _history(minute), [], now)
        assert forecast is not None and note is None, (uid, note)
        assert value_at(forecast, 0.9, now + SPEC.lead_time + SPEC.sync_period) is not None, uid
        if cache.updates > before:
            updated.add(uid)
    return updated


def _fitted(spread: timedelta | None = SYNC) -> ForecastCache:
    cache = ForecastCache(lambda _name: Flat(), spread=spread)
    _cycle(cache, 0, 0)
    assert cache.fits == len(UIDS) and cache.updates == 0
    return cache


def test_each_cycle_of_a_step_updates_a_quarter_of_the_policies_and_each_policy_once_a_step() -> None:
    cache = _fitted()
    for minute in range(1, 6):
        waves = [_cycle(cache, minute, second) for second in (0, 15, 30, 45)]
        assert [len(w) for w in waves] == [10, 10, 10, 10], (minute, [len(w) for w in waves])
        assert set().union(*waves) == set(UIDS)  # no policy waits more than a step for its point
        assert sum(len(w) for w in waves) == len(UIDS)  # and none updates twice in a step
    assert cache.updates == 5 * len(UIDS) and cache.fits == len(UIDS)


def test_without_spread_every_policy_updates_in_the_first_cycle_of_a_step() -> None:
    cache = _fitted(spread=None)
    assert [len(_cycle(cache, 1, second)) for second in (0, 15, 30, 45)] == [40, 0, 0, 0]


def test_a_policy_whose_phase_was_missed_updates_in_the_next_cycle_of_the_step() -> None:
    cache = _fitted()
    first = _cycle(cache, 1, 0)
    assert len(first) == 10
    late = _cycle(cache, 1, 50)  # the 15 s and 30 s cycles were missed: every phase up to the last's is due
    assert late == set(UIDS) - first
    assert _cycle(cache, 1, 55) == set()  # nothing new until the next step


def test_a_policy_more_than_one_step_behind_updates_at_once() -> None:
    cache = _fitted()
    assert len(_cycle(cache, 1, 0)) == 10  # the other 30 are still at minute 0 when the cycles stop
    assert _cycle(cache, 3, 0) == set(UIDS)  # minute 3's history: two or three steps behind, all at once
    assert len(_cycle(cache, 4, 0)) == 10  # one step behind again: back to their phases


def test_phases_stay_even_as_policies_come_and_go() -> None:
    phases = Phases()
    assert [phases.phase(u, 4) for u in UIDS[:6]] == [0, 1, 2, 3, 0, 1]
    assert phases.phase(UIDS[0], 4) == 0  # stable while the policy stays
    phases.forget(UIDS[1])
    phases.forget(UIDS[5])
    assert phases.phase("new", 4) == 1  # the least-loaded phase
    assert phases.phase(UIDS[2], 2) == 0  # another k (another step or sync period): a phase among its k


@pytest.mark.parametrize(("second", "step", "expected"), [
    (0, STEP, (0, 4)), (14.9, STEP, (0, 4)), (15, STEP, (1, 4)), (59.9, STEP, (3, 4)),
    (40, pd.Timedelta(seconds=40), (0, 3)), (35, pd.Timedelta(seconds=40), (2, 3)),  # 40 s: 3 cycles, last short
    (5, pd.Timedelta(seconds=10), (0, 1)),  # a step within a sync period: every cycle is its own
])
def test_slot_of_a_cycle_in_its_step(second: float, step: pd.Timedelta, expected: tuple[int, int]) -> None:
    now = datetime(2026, 2, 2, tzinfo=UTC) + timedelta(seconds=second)  # a whole number of 40 s steps
    assert slot_of(now, step.to_pytimedelta(), SYNC) == expected


@pytest.mark.parametrize(("spread", "expected"), [(True, SYNC), (False, None)])
def test_the_operator_spreads_updates_unless_told_not_to(spread: bool, expected: timedelta | None) -> None:
    op = build_operator(client.ApiClient(), namespace=None,
                        demand=lambda _spec: None,  # type: ignore[arg-type,return-value]
                        sync_period=SYNC, leader_election=False, spread_updates=spread)
    try:
        assert op.reconciler.forecasts.spread == expected
    finally:
        op.close()


@pytest.mark.parametrize(("spread", "expected"), [(True, [2, 2, 2, 2]), (False, [8, 0, 0, 0])])
def test_the_operator_updates_a_quarter_of_its_policies_in_each_cycle_of_a_step(
        kube: Any, api: Any, spread: bool, expected: list[int]) -> None:
    """8 policies, every one fitted in the first cycle: over the next step's four cycles the operator
    updates 2 models a cycle (8 in the first without the spread), every policy decided in every cycle."""
    _emu, url = kube
    names = [f"slots-{i}" for i in range(8)]
    for name in names:
        create(api, deployment(f"{name}-api", 4))
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-api"}
        create(api, scaling_policy(name, policy_spec(targetRef=target)))
    clock = FakeClock(EVENT_START - timedelta(hours=2))  # on a whole minute: the step's first cycle
    op = build_operator(api_client_for(url), namespace=NAMESPACE, demand=TraceDemand(), clock=clock,
                        sync_period=SYNC, leader_election=False, fit_budget=timedelta(minutes=10),
                        spread_updates=spread)
    try:
        per_cycle = []
        for _ in range(8):
            report = op.loop.step()
            assert report is not None and len(report.outcomes) == len(names)
            assert not [o.error for o in report.outcomes if o.error]
            per_cycle.append((report.fits, report.updates))
            clock.advance(SYNC)
    finally:
        op.close()
    assert per_cycle[:4] == [(8, 0), (0, 0), (0, 0), (0, 0)]  # the first fits, then nothing new in the step
    assert [updates for _, updates in per_cycle[4:]] == expected, per_cycle
