"""The simulator's loop, readiness model and metrics, on traces small enough to work out by hand."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd
import pytest

from controller.simulate.engine import (
    SimConfig,
    SimContext,
    StepView,
    lead_steps_for,
    make_context,
    ready_from_asked,
    run_policy,
    simulate,
)
from controller.simulate.metrics import compute_metrics
from controller.simulate.predictive import Oracle


def trace(values: list[float] | np.ndarray, step: str = "1min") -> pd.Series:
    index = pd.date_range("2026-01-05", periods=len(values), freq=step, tz="UTC")
    return pd.Series(np.asarray(values, dtype=float), index=index, name="t")


class Fixed:
    """Always asks for the same replicas, and records what it was shown."""

    def __init__(self, replicas: int, name: str = "fixed") -> None:
        self.replicas = replicas
        self.name = name
        self.views: list[StepView] = []

    def reset(self, ctx: SimContext) -> None:
        self.views = []

    def desired(self, view: StepView) -> int:
        self.views.append(view)
        return self.replicas


@pytest.mark.parametrize(
    ("asked", "initial", "lead", "ready"),
    [
        ([5, 10, 10, 3, 8], 5, 2, [5, 5, 5, 3, 3]),  # scale-up waits `lead`, scale-down is at once
        ([5, 10, 10, 3, 8], 5, 0, [5, 10, 10, 3, 8]),
        ([1, 9, 2, 9, 9, 9], 1, 1, [1, 1, 2, 2, 9, 9]),  # a pod removed while warming never becomes ready
        ([20, 20, 20], 10, 5, [10, 10, 10]),
    ],
)
def test_ready_from_asked(asked: list[int], initial: int, lead: int, ready: list[int]) -> None:
    assert ready_from_asked(np.array(asked), initial, lead).tolist() == ready


@pytest.mark.parametrize(
    ("lead", "step", "steps"),
    [
        (timedelta(minutes=10), timedelta(minutes=1), 10),
        (timedelta(minutes=10), timedelta(hours=1), 1),  # rounded up to the next step boundary
        (timedelta(minutes=90), timedelta(hours=1), 2),
        (timedelta(0), timedelta(minutes=1), 0),
        (timedelta(seconds=30), timedelta(seconds=15), 2),
    ],
)
def test_lead_steps(lead: timedelta, step: timedelta, steps: int) -> None:
    assert lead_steps_for(lead, step) == steps


def test_metrics_by_hand() -> None:
    demand = np.array([100.0, 300.0, np.nan, 50.0])
    asked = np.array([3, 3, 5, 1])
    ready = np.array([2, 3, 5, 1])
    m = compute_metrics(demand, asked, ready, 100.0, timedelta(minutes=30))
    assert m.unserved_fraction == pytest.approx(0 / 450)  # 200 >= 100, 300 >= 300, gap, 100 >= 50
    m = compute_metrics(demand, asked, np.array([0, 2, 5, 0]), 100.0, timedelta(minutes=30))
    assert m.unserved_fraction == pytest.approx((100 + 100 + 50) / 450)
    assert m.underprovisioned_steps == 3
    # The gap's 5 replicas count neither way: nobody can tell what that step needed (the oracle would ask 1).
    assert m.replica_hours == pytest.approx((3 + 3 + 1) * 0.5)
    assert m.peak_replicas == 5
    assert m.scale_changes == 2


def test_policy_sees_only_the_last_complete_step() -> None:
    series = trace([float(v) for v in range(1, 101)])
    cfg = SimConfig(capacity_per_replica=10, lead_time=timedelta(minutes=3), test_days=50 / 1440)
    ctx = make_context(series, [], cfg)
    scaler = Fixed(5)
    run_policy(ctx, scaler)
    assert len(scaler.views) == 50
    for view in scaler.views:
        assert view.observed_demand == series.iloc[ctx.start + view.t - 1]
        assert view.now == series.index[ctx.start + view.t]


def test_gaps_are_unavailable_metrics() -> None:
    values = [100.0] * 100
    values[60] = np.nan
    cfg = SimConfig(capacity_per_replica=10, lead_time=timedelta(minutes=2), test_days=50 / 1440)
    scaler = Fixed(10)
    run_policy(make_context(trace(values), [], cfg), scaler)
    assert scaler.views[11].observed_demand is None
    assert scaler.views[10].observed_demand == 100.0


def test_fixed_policy_unserved_is_exact() -> None:
    values = [100.0] * 60 + [250.0] * 50
    cfg = SimConfig(capacity_per_replica=10, lead_time=timedelta(minutes=3), test_days=100 / 1440, max_replicas=50)
    # Starts at 10 replicas (enough for the first steps), asks for 20: ready from step 3 on.
    run = run_policy(make_context(trace(values), [], cfg), Fixed(20))
    assert run.ready.tolist()[:4] == [10, 10, 10, 20]
    assert run.metrics.unserved_fraction == pytest.approx(50 * 50 / (50 * 100 + 50 * 250))
    assert run.metrics.underprovisioned_steps == 50
    assert run.metrics.replica_hours == pytest.approx(100 * 20 / 60)


def test_oracle_is_exact_lower_bound() -> None:
    values = [100.0] * 300 + [1000.0] * 30 + [100.0] * 70
    cfg = SimConfig(capacity_per_replica=10, lead_time=timedelta(minutes=3), test_days=200 / 1440)
    run = run_policy(make_context(trace(values), [], cfg), Oracle())
    assert run.metrics.unserved_fraction == 0.0
    # 10 replicas, 100 from 3 steps before the spike to its end: 170 + 33 * ... steps.
    assert run.metrics.replica_hours == pytest.approx((200 * 10 + 33 * 90) / 60)
    assert run.metrics.peak_replicas == 100
    assert run.metrics.scale_changes == 2


def test_simulate_reports_cost_vs_oracle_and_json() -> None:
    values = [100.0] * 300 + [1000.0] * 30 + [100.0] * 70
    cfg = SimConfig(capacity_per_replica=10, lead_time=timedelta(minutes=3), test_days=200 / 1440)
    result = simulate(trace(values), [], cfg, [Fixed(100, "big"), Oracle()], reference=Oracle())
    oracle_hours = result.runs["oracle"].metrics.replica_hours
    assert result.runs["big"].metrics.cost_vs_oracle == pytest.approx(200 * 100 / 60 / oracle_hours)
    out = result.to_json()
    assert out["series"] == "t" and out["steps"] == 200
    policies = out["policies"]
    assert isinstance(policies, dict) and set(policies) == {"big", "oracle"}
    assert set(policies["big"]) == {
        "unserved_fraction",
        "underprovisioned_steps",
        "replica_hours",
        "peak_replicas",
        "scale_changes",
        "cost_vs_oracle",
    }


def test_reference_runs_even_when_not_reported() -> None:
    values = [100.0] * 300
    cfg = SimConfig(capacity_per_replica=10, lead_time=timedelta(minutes=3), test_days=100 / 1440)
    result = simulate(trace(values), [], cfg, [Fixed(20)], reference=Oracle())
    assert set(result.runs) == {"fixed"}
    assert result.runs["fixed"].metrics.cost_vs_oracle == pytest.approx(2.0)
    assert simulate(trace(values), [], cfg, [Fixed(20)]).runs["fixed"].metrics.cost_vs_oracle is None


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"capacity_per_replica": 0, "lead_time": timedelta(minutes=1)}, "capacity-per-replica"),
        ({"capacity_per_replica": 1, "lead_time": timedelta(minutes=-1)}, "lead-time"),
        ({"capacity_per_replica": 1, "lead_time": timedelta(0), "min_replicas": -1}, "min"),
        ({"capacity_per_replica": 1, "lead_time": timedelta(0), "min_replicas": 5, "max_replicas": 2}, "max"),
        ({"capacity_per_replica": 1, "lead_time": timedelta(0), "test_days": 0}, "test-days"),
    ],
)
def test_bad_config_names_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=field):
        SimConfig(**kwargs)  # type: ignore[arg-type]


def test_test_window_longer_than_series_names_flag() -> None:
    cfg = SimConfig(capacity_per_replica=10, lead_time=timedelta(minutes=3), test_days=7)
    with pytest.raises(ValueError, match="test-days"):
        make_context(trace([1.0] * 100), [], cfg)


def test_all_gap_window_is_rejected() -> None:
    cfg = SimConfig(capacity_per_replica=10, lead_time=timedelta(minutes=3), test_days=10 / 1440)
    with pytest.raises(ValueError, match="series"):
        make_context(trace([1.0] * 50 + [np.nan] * 10), [], cfg)


def test_duplicate_policy_rejected() -> None:
    cfg = SimConfig(capacity_per_replica=10, lead_time=timedelta(minutes=3), test_days=10 / 1440)
    with pytest.raises(ValueError, match="policies"):
        simulate(trace([1.0] * 50), [], cfg, [Fixed(1), Fixed(2)])
