"""Money in the simulator: SimCosts, the newsvendor quantile through Predictive, and the baseline policies."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from controller.simulate.costs import SimCosts
from controller.simulate.engine import SimConfig, make_context, run_policy
from controller.simulate.policies import BASELINE_POLICIES, PolicySettings, build, parse_policies
from controller.simulate.predictive import Predictive
from forecasting import registry
from forecasting.base import Forecast

START = pd.Timestamp("2026-01-05", tz="UTC")
STEP = timedelta(minutes=1)
CFG = SimConfig(capacity_per_replica=10, lead_time=timedelta(minutes=3), max_replicas=500, test_days=120 / 1440)


class Spread:
    """A fake forecaster: flat 100, quantile q = 100 * (1 + q) (distinct, monotone levels)."""

    name: ClassVar[str] = "fake-spread"

    def fit(self, history: pd.Series, events: object = ()) -> Spread:
        self._last = history.index[-1]
        return self

    def predict(self, horizon: int, events: object = ()) -> Forecast:
        index = pd.date_range(self._last + pd.Timedelta(STEP), periods=horizon, freq=STEP)
        levels = (0.5, 0.9, 0.95, 0.99)
        return Forecast(index, np.full(horizon, 150.0), {q: np.full(horizon, 100 * (1 + q)) for q in levels})


@pytest.fixture(autouse=True)
def fake_model(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(registry.MODELS, Spread.name, Spread)
    yield


def flat() -> pd.Series:
    return pd.Series(np.full(300, 100.0), index=pd.date_range(START, periods=300, freq=STEP), name="flat")


@pytest.mark.parametrize("q", [0.5, 0.6, 0.9, 0.97, 0.99])
def test_for_quantile_round_trips(q: float) -> None:
    costs = SimCosts.for_quantile(q, capacity_per_step=10.0, step=STEP, replica_hour=2.5)
    assert costs.ratio(10.0, STEP) == pytest.approx(q)


@pytest.mark.parametrize(("unserved", "replica_hour", "flag"), [(0, 1, "cost-unserved"), (1, -1, "cost-replica-hour"),
                                                               (float("nan"), 1, "cost-unserved")])
def test_bad_costs_name_the_flag(unserved: float, replica_hour: float, flag: str) -> None:
    with pytest.raises(ValueError, match=flag):
        SimCosts(unserved, replica_hour)


def test_bill_prices_unserved_units_and_replica_hours() -> None:
    costs = SimCosts(unserved=0.5, replica_hour=3.0)
    demand = np.array([10.0, 30.0, np.nan, 5.0])
    ready = np.array([2, 2, 2, 0])  # capacity 10: 0 + 10 + gap + 5 unserved
    asked = np.array([2, 3, 3, 1])  # 9 replica-minutes
    unserved, replicas = costs.bill(demand, ready, asked, 10.0, STEP)
    assert unserved == pytest.approx(15 * 0.5)
    assert replicas == pytest.approx(9 / 60 * 3.0)


@pytest.mark.parametrize(("q", "replicas"), [(0.5, 15), (0.9, 19), (0.97, 20), (0.99, 20)])
def test_predictive_sizes_at_the_newsvendor_quantile(q: float, replicas: int) -> None:
    """decide() sees the costs rescaled to its per-second capacity: the simulated ratio is the quantile used."""
    costs = SimCosts.for_quantile(q, capacity_per_step=10.0, step=STEP)
    scaler = Predictive("pitboss", Spread.name, use_events=False, costs=costs)
    run = run_policy(make_context(flat(), [], CFG), scaler)
    assert int(run.asked[-1]) == replicas  # ceil(100 * (1 + q) / 10)
    assert any("sized at newsvendor" in n for n in scaler.notes)


def test_a_stored_quantile_through_costs_equals_the_fixed_headroom() -> None:
    ctx = make_context(flat(), [], CFG)
    fixed = run_policy(ctx, Predictive("pitboss", Spread.name, use_events=False, headroom_quantile=0.9))
    costs = run_policy(ctx, Predictive("pitboss", Spread.name, use_events=False,
                                       costs=SimCosts.for_quantile(0.9, 10.0, STEP)))
    assert (fixed.asked == costs.asked).all()


def test_baseline_policies_parse_and_build() -> None:
    assert parse_policies("hpa,mstl,gbm") == ["hpa", "mstl", "gbm"]
    pytest.importorskip("lightgbm")
    scaler = build("gbm", PolicySettings(baseline_refit_every=timedelta(hours=6), baseline_max_history=500))
    assert isinstance(scaler, Predictive) and scaler.use_events is BASELINE_POLICIES["gbm"] is True
    assert scaler.refit_every == timedelta(hours=6) and scaler.max_history == 500


def test_baseline_policy_with_a_missing_library_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    from forecasting.models import baselines

    monkeypatch.setattr(baselines, "missing", lambda: {"prophet": "prophet"})
    with pytest.raises(ValueError, match=r"^policies: 'prophet' needs the 'prophet' package"):
        build("prophet")


def test_only_the_event_aware_baselines_read_the_calendar() -> None:
    assert {k for k, v in BASELINE_POLICIES.items() if v} == {"prophet", "gbm"}
