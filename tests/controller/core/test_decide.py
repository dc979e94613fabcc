"""Scenario tables for decide(), in the style of the HPA's replica_calculator tests.

Each row is a whole situation (policy, forecast, observed state) and the
Decision expected of it: replicas, reason, flags, and the numbers the message
must quote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from controller.core.decide import decide, forecast_peak
from controller.core.decision import ObservedState, ReplicaLag
from controller.core.policy import Policy
from forecasting.base import Forecast

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)


def make_forecast(values: list[float], *, start: datetime = NOW, step_s: int = 60, spread: float = 0.1) -> Forecast:
    """A forecast whose p95 is ``values`` exactly (p50 below it, p99 above it)."""
    index = pd.date_range(start, periods=len(values), freq=f"{step_s}s")
    p95 = np.asarray(values, dtype=float)
    return Forecast(
        index=index,
        mean=p95 * (1 - spread),
        quantiles={0.5: p95 * (1 - spread), 0.9: p95 * (1 - spread / 2), 0.95: p95, 0.99: p95 * (1 + spread)},
        model="test",
    )


@dataclass
class Case:
    name: str
    forecast: list[float] | None
    observed: float | None
    current: int
    expected: int
    reason: str
    policy: dict[str, Any] = field(default_factory=dict)
    recommendations: list[tuple[int, int]] = field(default_factory=list)  # (seconds ago, replicas)
    flags: set[str] = field(default_factory=set)
    message_has: tuple[str, ...] = ()
    recommended: int | None = None
    forecast_start: datetime = NOW
    forecast_note: str | None = None  # the forecast port's note (a queued refit, or why there is none)


BASE = {"capacityPerReplica": 50, "minReplicas": 1, "maxReplicas": 100, "leadTime": "10m"}
FLAT_500 = [500.0] * 30  # 10 replicas of 50

CASES = [
    Case(
        "forecast peak where replicas added now are ready scales up at once",
        forecast=[500.0] * 10 + [1840.0] + [500.0] * 19,
        observed=400.0,
        current=12,
        expected=37,
        reason="ScaleUpForecast",
        message_has=("p95 peak 1840 req/s at 20:10", "needs 37 replicas (50 req/s each)", "lead 10m", "12 -> 37"),
        recommended=37,
    ),
    Case(
        "forecast peak inside the lead window, gone before replicas added now are ready: keep, do not add",
        forecast=[500.0] * 5 + [1840.0] + [500.0] * 24,
        observed=400.0,
        current=12,
        expected=12,
        reason="Hold",
        message_has=("p95 peak 1840 req/s at 20:05", "needs 37 replicas", "replicas added now are ready from 20:10,"
                     " when the forecast p95 peak is 500 req/s: adding only up to 12", "holding 12"),
        recommended=12,
    ),
    Case(
        "a peak inside the lead window still adds what the forecast needs when they are ready",
        forecast=[500.0] * 5 + [1840.0] + [500.0] * 4 + [800.0] * 20,
        observed=400.0,
        current=12,
        expected=16,
        reason="ScaleUpForecast",
        message_has=("adding only up to 16", "12 -> 16"),
        recommended=16,
    ),
    Case(
        "a peak inside the lead window never lowers the count it finds",
        forecast=[500.0] * 5 + [1840.0] + [300.0] * 24,
        observed=400.0,
        current=12,
        expected=12,
        reason="Hold",
        recommended=12,
    ),
    Case(
        "peak beyond lead + sync is ignored",
        forecast=[500.0] * 11 + [5000.0] + [500.0] * 18,
        observed=500.0,
        current=10,
        expected=10,
        reason="Hold",
        message_has=("holding 10",),
    ),
    Case(
        "peak at exactly lead + sync (10m15s) is a step that overlaps the window",
        forecast=[500.0] * 10 + [1000.0] + [500.0] * 19,
        observed=500.0,
        current=10,
        expected=20,
        reason="ScaleUpForecast",
    ),
    Case(
        "observed demand above forecast wins",
        forecast=FLAT_500,
        observed=1200.0,
        current=10,
        expected=24,
        reason="ScaleUpObserved",
        message_has=("observed 1200 req/s needs 24",),
    ),
    Case(
        "steady state holds",
        forecast=FLAT_500,
        observed=480.0,
        current=10,
        expected=10,
        reason="Hold",
    ),
    Case(
        "forecast wants more than max: clamped and flagged",
        forecast=[6000.0] * 30,
        observed=500.0,
        current=10,
        expected=100,
        reason="CapacityLimited",
        flags={"CapacityLimited"},
        message_has=("needs 120 but maxReplicas is 100",),
        recommended=100,
    ),
    Case(
        "already at max and still short: CapacityLimited hold",
        forecast=[6000.0] * 30,
        observed=5000.0,
        current=100,
        expected=100,
        reason="CapacityLimited",
        flags={"CapacityLimited"},
    ),
    Case(
        "minReplicas floor",
        forecast=[10.0] * 30,
        observed=10.0,
        current=3,
        expected=3,
        reason="Hold",
        policy={"minReplicas": 3},
    ),
    Case(
        "scale-down with no recent higher recommendation, within one step",
        forecast=[380.0] * 30,
        observed=370.0,
        current=10,
        expected=8,
        reason="ScaleDown",
    ),
    Case(
        "scale-down held by the stabilization window (the forecast stops short of lead + sync + window)",
        forecast=[400.0] * 12,
        observed=380.0,
        current=10,
        expected=10,
        reason="ScaleDownStabilized",
        recommendations=[(120, 10)],
        flags={"ScalingLimited"},
        message_has=("highest recommendation in the last 5m is 10",),
        recommended=8,
    ),
    Case(
        "stabilization window passed: scale down",
        forecast=[380.0] * 30,
        observed=370.0,
        current=10,
        expected=8,
        reason="ScaleDown",
        recommendations=[(301, 10)],
    ),
    Case(
        "stabilization lets part of the way down (the forecast stops short of lead + sync + window)",
        forecast=[200.0] * 12,
        observed=200.0,
        current=10,
        expected=7,
        reason="ScaleDownStabilized",
        recommendations=[(400, 10), (100, 7)],
        policy={"scaleDown": {"maxStepPercent": 100}},
    ),
    Case(
        "forecast low over lead + sync + window: scale down past the backward window",
        forecast=[380.0] * 30,
        observed=370.0,
        current=10,
        expected=8,
        reason="ScaleDownForecast",
        recommendations=[(120, 10)],
        message_has=("p95 peak over the next 15m15s is 380 req/s", "needs 8 with scaleDown.margin 0.25: not holding the"
                     " last 5m's 10",
                     "scaling 10 -> 8"),
        recommended=8,
    ),
    Case(
        "forecast rises again within the window: down only to what the forward peak needs",
        forecast=[200.0] * 12 + [430.0] + [200.0] * 17,
        observed=200.0,
        current=10,
        expected=9,
        reason="ScaleDownForecast",
        recommendations=[(100, 10)],
        policy={"scaleDown": {"maxStepPercent": 100}},
        flags={"ScalingLimited"},
        message_has=("peak over the next 15m15s is 430 req/s at 20:12", "stops at 9"),
        recommended=4,
    ),
    Case(
        "forward peak needs as much as the window held: stabilized as before",
        forecast=[200.0] * 12 + [500.0] + [200.0] * 17,
        observed=200.0,
        current=10,
        expected=10,
        reason="ScaleDownStabilized",
        recommendations=[(100, 10)],
        policy={"scaleDown": {"maxStepPercent": 100}},
        flags={"ScalingLimited"},
        message_has=("highest recommendation in the last 5m is 10",),
        recommended=4,
    ),
    Case(
        "forecast-led scale-down keeps the step bound",
        forecast=[100.0] * 30,
        observed=260.0,
        current=20,
        expected=10,
        reason="ScaleDownStep",
        recommendations=[(60, 20)],
        flags={"ScalingLimited"},
        message_has=("says demand falls below the observed", "scale-down stops at 3: not holding the last 5m's 20",
                     "limited to 50% of 20"),
        recommended=2,
    ),
    Case(
        "served demand, fresh forecast falling: size to the forecast, not the observed floor",
        forecast=[280.0] * 30,
        observed=480.0,
        current=10,
        expected=6,
        reason="ScaleDown",
        message_has=("observed 480 req/s needs 10", "the forecast (from 20:00) says demand falls below the observed",
                     "scaling 10 -> 6"),
        recommended=6,
    ),
    Case(
        "observed demand not served by the current replicas: the observed floor scales up",
        forecast=[300.0] * 30,
        observed=480.0,
        current=8,
        expected=10,
        reason="ScaleUpObserved",
        recommended=10,
    ),
    Case(
        "stale forecast (its first point is two steps back): the observed floor holds",
        forecast=[300.0] * 30,
        forecast_start=NOW - timedelta(minutes=2),
        observed=480.0,
        current=10,
        expected=10,
        reason="Hold",
        recommended=10,
    ),
    Case(
        "scale-down bounded by maxStepPercent",
        forecast=[100.0] * 30,
        observed=100.0,
        current=20,
        expected=15,
        reason="ScaleDownStep",
        policy={"scaleDown": {"maxStepPercent": 25}},
        flags={"ScalingLimited"},
        message_has=("limited to 25% of 20",),
    ),
    Case(
        "observed demand unavailable: scale up on forecast",
        forecast=[1000.0] * 30,
        observed=None,
        current=10,
        expected=20,
        reason="ScaleUpForecast",
        flags={"MetricsUnavailable", "ObservedUnavailable"},
    ),
    Case(
        "observed demand unavailable: never scale down",
        forecast=[100.0] * 30,
        observed=None,
        current=10,
        expected=10,
        reason="MetricsUnavailable",
        flags={"MetricsUnavailable", "ObservedUnavailable"},
        message_has=("observed demand unavailable", "not scaling down without metrics"),
    ),
    Case(
        "no forecast: never scale down",
        forecast=None,
        observed=100.0,
        current=10,
        expected=10,
        reason="MetricsUnavailable",
        flags={"MetricsUnavailable", "ForecastUnavailable"},
        message_has=("no forecast",),
    ),
    Case(
        "no forecast: still scale up on observed demand",
        forecast=None,
        observed=900.0,
        current=10,
        expected=18,
        reason="ScaleUpObserved",
        flags={"MetricsUnavailable", "ForecastUnavailable"},
    ),
    Case(
        "no forecast while a refit waits: the note says why",
        forecast=None,
        observed=100.0,
        current=10,
        expected=10,
        reason="MetricsUnavailable",
        flags={"MetricsUnavailable", "ForecastUnavailable"},
        forecast_note="previous forecast dropped (the demand metric changed)",
        message_has=("no forecast: previous forecast dropped (the demand metric changed)",),
    ),
    Case(
        "the previous forecast while its refit waits: it decides, and the message says so",
        forecast=[900.0] * 30,
        observed=500.0,
        current=10,
        expected=18,
        reason="ScaleUpForecast",
        flags={"ForecastStale"},
        forecast_note="deciding on the previous forecast: the event calendar changed",
        message_has=("needs 18 replicas (50 req/s each) within lead 10m; deciding on the previous forecast: the"
                     " event calendar changed; observed",),
    ),
    Case(
        "nothing at all: hold",
        forecast=None,
        observed=None,
        current=7,
        expected=7,
        reason="MetricsUnavailable",
        recommended=None,
    ),
    Case(
        "NaN observed counts as unavailable",
        forecast=[100.0] * 30,
        observed=float("nan"),
        current=10,
        expected=10,
        reason="MetricsUnavailable",
    ),
    Case(
        "paused: hold and say what Active would do",
        forecast=[1840.0] * 30,
        observed=400.0,
        current=12,
        expected=12,
        reason="Paused",
        policy={"mode": "Paused"},
        message_has=("would scale 12 -> 37",),
        recommended=37,
    ),
    Case(
        "forecast only: hold and say what Active would do",
        forecast=[100.0] * 30,
        observed=100.0,
        current=12,
        expected=12,
        reason="ForecastOnly",
        policy={"mode": "ForecastOnly"},
        message_has=("would scale 12 -> 6",),
    ),
    Case(
        "p99 headroom sizes higher than p95",
        forecast=[1000.0] * 30,
        observed=500.0,
        current=10,
        expected=22,
        reason="ScaleUpForecast",
        policy={"headroomQuantile": 0.99},
        message_has=("p99 peak 1100",),
    ),
    Case(
        "current above max is brought down to max",
        forecast=[100.0] * 30,
        observed=100.0,
        current=150,
        expected=100,
        reason="ScaleDownStep",
        policy={"scaleDown": {"maxStepPercent": 10}},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_decide_scenarios(case: Case) -> None:
    policy = Policy.model_validate({**BASE, **case.policy})
    forecast = None if case.forecast is None else make_forecast(case.forecast, start=case.forecast_start)
    state = ObservedState(
        now=NOW,
        current_replicas=case.current,
        ready_replicas=case.current,
        observed_demand=case.observed,
        recommendations=tuple((NOW - timedelta(seconds=ago), r) for ago, r in case.recommendations),
        forecast_note=case.forecast_note,
    )
    decision = decide(policy, forecast, state)
    assert decision.desired_replicas == case.expected, decision.message
    assert ("ForecastStale" in decision.flags) is (forecast is not None and case.forecast_note is not None)
    assert decision.reason == case.reason, decision.message
    assert case.flags <= decision.flags, decision.flags
    for text in case.message_has:
        assert text in decision.message, decision.message
    if case.recommended is not None or (case.forecast is None and case.observed is None):
        assert decision.recommended_replicas == case.recommended
    assert decision.reason[0].isupper() and " " not in decision.reason
    assert decision.message


@dataclass
class DbCase:
    name: str
    forecast: list[float] | None
    observed: float | None
    lags: list[float | None]
    expected: int
    flags: set[str] = field(default_factory=set)
    message_has: tuple[str, ...] = ()
    current: int | None = None


DB_POLICY = {
    **BASE,
    "databaseReplicas": {
        "capacityPerReplica": 400,
        "readShare": 0.5,
        "leadTime": "20m",
        "maxReplicas": 6,
        "maxLagSeconds": 30,
    },
}

DB_CASES = [
    DbCase(
        "sized from the forecast over its own, longer lead time",
        forecast=[500.0] * 18 + [4000.0] + [500.0] * 11,
        observed=500.0,
        lags=[1.0, 2.0],
        expected=5,
        message_has=("reads peak 2000 req/s", "need 5 read replicas", "lead 20m", "2 -> 5"),
    ),
    DbCase(
        "lagging replicas do not count: desired goes up to compensate",
        forecast=[1600.0] * 30,
        observed=1600.0,
        lags=[1.0, 45.0],
        expected=3,
        flags={"DatabaseLagging"},
        message_has=("1 replica(s) lagging",),
    ),
    DbCase(
        "unknown lag holds: not compensated, never down, flagged",
        forecast=[1600.0] * 30,
        observed=1600.0,
        lags=[1.0, None],
        expected=2,
        flags={"DatabaseMetricsUnavailable"},
        message_has=("replication lag unknown",),
    ),
    DbCase(
        "never down while the forecast over the lead time needs them",
        forecast=[400.0] * 15 + [3200.0] * 15,
        observed=400.0,
        lags=[1.0, 1.0, 1.0, 1.0],
        expected=4,
    ),
    DbCase(
        "down one replica at a time once the lead-time forecast is low",
        forecast=[400.0] * 30,
        observed=400.0,
        lags=[1.0, 1.0, 1.0, 1.0],
        expected=3,
    ),
    DbCase("no forecast: never down", forecast=None, observed=400.0, lags=[1.0] * 4, expected=4),
    DbCase(
        "capacity limited at databaseReplicas.maxReplicas",
        forecast=[8000.0] * 30,
        observed=500.0,
        lags=[1.0],
        expected=6,
        flags={"DatabaseCapacityLimited"},
    ),
    DbCase(
        "current count given without lag list: lag unknown, holds",
        forecast=[400.0] * 30,
        observed=400.0,
        lags=[],
        current=2,
        expected=2,
        flags={"DatabaseMetricsUnavailable"},
        message_has=("returned no series for 2 ready replica(s)",),
    ),
]


@pytest.mark.parametrize("case", DB_CASES, ids=[c.name for c in DB_CASES])
def test_database_scenarios(case: DbCase) -> None:
    policy = Policy.model_validate(DB_POLICY)
    state = ObservedState(
        now=NOW,
        current_replicas=10,
        ready_replicas=10,
        observed_demand=case.observed,
        database_replicas=tuple(ReplicaLag(f"r{i}", lag) for i, lag in enumerate(case.lags)),
        database_current_replicas=case.current,
    )
    forecast = None if case.forecast is None else make_forecast(case.forecast)
    decision = decide(policy, forecast, state)
    assert decision.database_desired_replicas == case.expected, decision.message
    assert case.flags <= decision.flags
    for text in case.message_has:
        assert text in decision.message, decision.message


def test_no_database_block_means_no_database_decision() -> None:
    decision = decide(
        Policy.model_validate(BASE),
        make_forecast(FLAT_500),
        ObservedState(now=NOW, current_replicas=10, ready_replicas=10, observed_demand=500.0),
    )
    assert decision.database_desired_replicas is None


def test_paused_holds_database_replicas() -> None:
    policy = Policy.model_validate({**DB_POLICY, "mode": "Paused"})
    state = ObservedState(
        now=NOW,
        current_replicas=10,
        ready_replicas=10,
        observed_demand=500.0,
        database_replicas=(ReplicaLag("a", 1.0),),
    )
    decision = decide(policy, make_forecast([8000.0] * 30), state)
    assert decision.database_desired_replicas == 1
    assert decision.desired_replicas == 10


def test_stale_forecast_is_unavailable() -> None:
    """A forecast that ended before now cannot justify a scale-down."""
    old = make_forecast([10.0] * 30, start=NOW - timedelta(hours=2))
    state = ObservedState(now=NOW, current_replicas=10, ready_replicas=10, observed_demand=10.0)
    decision = decide(Policy.model_validate(BASE), old, state)
    assert decision.desired_replicas == 10
    assert decision.reason == "MetricsUnavailable"
    assert "ForecastUnavailable" in decision.flags


def test_naive_now_is_read_as_utc() -> None:
    state = ObservedState(now=NOW.replace(tzinfo=None), current_replicas=10, ready_replicas=10, observed_demand=500.0)
    decision = decide(Policy.model_validate(BASE), make_forecast([500.0] * 5 + [1840.0] * 25), state)
    assert decision.desired_replicas == 37


def test_forecast_peak_window_and_nan() -> None:
    values = [1.0, 2.0, float("nan"), 9.0, 3.0]
    fc = make_forecast(values)
    peak = forecast_peak(fc, 0.95, NOW, NOW + timedelta(minutes=2))
    assert peak is not None and peak.value == 2.0
    peak = forecast_peak(fc, 0.95, NOW + timedelta(seconds=30), NOW + timedelta(minutes=10))
    assert peak is not None and peak.value == 9.0 and peak.at == pd.Timestamp(NOW + timedelta(minutes=3))
    all_nan = make_forecast([float("nan")] * 3)
    assert forecast_peak(all_nan, 0.95, NOW, NOW + timedelta(minutes=5)) is None


@pytest.mark.parametrize(
    ("field_name", "state_kwargs"),
    [
        ("observedDemand", {"observed_demand": -1.0}),
        ("observedDemand", {"observed_demand": float("inf")}),
        ("currentReplicas", {"current_replicas": -1}),
    ],
)
def test_bad_state_names_field(field_name: str, state_kwargs: dict[str, Any]) -> None:
    base: dict[str, Any] = {"now": NOW, "current_replicas": 10, "ready_replicas": 10, "observed_demand": 500.0}
    with pytest.raises(ValueError, match=field_name):
        decide(Policy.model_validate(BASE), make_forecast(FLAT_500), ObservedState(**{**base, **state_kwargs}))
