"""Invariants of decide() over random situations (hypothesis): bounds, floors, no blind scale-down."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from controller.core.decide import decide
from controller.core.decision import ObservedState
from controller.core.limits import replicas_for
from controller.core.policy import Policy
from forecasting.base import Forecast

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)


@st.composite
def situations(draw: st.DrawFn) -> tuple[Policy, Forecast | None, ObservedState]:
    lo = draw(st.integers(0, 5))
    hi = draw(st.integers(max(lo, 1), 60))
    policy = Policy.model_validate(
        {
            "capacityPerReplica": draw(st.floats(1, 100)),
            "minReplicas": lo,
            "maxReplicas": hi,
            "leadTime": f"{draw(st.integers(0, 20))}m",
            "headroomQuantile": draw(st.sampled_from([0.5, 0.9, 0.95, 0.99])),
            "scaleDown": {"maxStepPercent": draw(st.integers(1, 100))},
            "mode": draw(st.sampled_from(["Active", "Active", "ForecastOnly", "Paused"])),
        }
    )
    forecast = None
    if draw(st.booleans()):
        values = np.array(draw(st.lists(st.floats(0, 5000), min_size=30, max_size=30)))
        index = pd.date_range(NOW, periods=30, freq="1min")
        forecast = Forecast(index, values, {q: values * (0.8 + q / 4) for q in (0.5, 0.9, 0.95, 0.99)})
    observed = draw(st.one_of(st.none(), st.floats(0, 5000)))
    recs = tuple(
        (NOW - timedelta(seconds=draw(st.integers(1, 600))), draw(st.integers(0, 80)))
        for _ in range(draw(st.integers(0, 4)))
    )
    current = draw(st.integers(0, 80))
    state = ObservedState(NOW, current, current, observed, recommendations=tuple(sorted(recs)))
    return policy, forecast, state


@settings(max_examples=300, deadline=None)
@given(situations())
def test_invariants(case: tuple[Policy, Forecast | None, ObservedState]) -> None:
    policy, forecast, state = case
    d = decide(policy, forecast, state)
    assert d.reason and d.message
    if policy.mode != "Active":
        assert d.desired_replicas == state.current_replicas
        return
    assert policy.min_replicas <= d.desired_replicas <= policy.max_replicas
    if state.observed_demand is not None:
        need = replicas_for(state.observed_demand, policy.capacity_per_replica)
        assert d.desired_replicas >= min(need, policy.max_replicas)
    if not d.metrics_available:
        assert d.desired_replicas >= min(state.current_replicas, policy.max_replicas)
    if d.recommended_replicas is not None:  # scale up at once; limits only ever hold replicas back
        assert d.desired_replicas >= d.recommended_replicas
    if d.capacity_limited:
        assert d.desired_replicas == policy.max_replicas
