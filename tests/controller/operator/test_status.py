"""Status building: conditions keep their transition times, recommendations survive as run-length entries."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from controller.core.decision import Decision
from controller.cycle.memory import PolicyMemory, RecommendationWindow
from controller.operator import status as st
from controller.operator.resources import ScalingPolicyStatus, parse_policy_spec
from forecasting.base import Forecast

T0 = datetime(2026, 11, 27, 19, 0, tzinfo=UTC)


def test_condition_transition_time_moves_only_on_flips() -> None:
    b = st.StatusBuilder(None, 1, T0)
    b.ok(st.READY, True, "Hold", "ok")
    first = b.build()
    b2 = st.StatusBuilder(first, 2, T0 + timedelta(minutes=1))
    b2.ok(st.READY, True, "ScaleUpForecast", "changed message")
    same = {c["type"]: c for c in b2.build()["conditions"]}[st.READY]
    assert same["lastTransitionTime"] == st.iso(T0) and same["observedGeneration"] == 2
    b3 = st.StatusBuilder(b2.build(), 2, T0 + timedelta(minutes=2))
    b3.ok(st.READY, False, "Holding", "no metrics")
    flipped = {c["type"]: c for c in b3.build()["conditions"]}[st.READY]
    assert flipped["lastTransitionTime"] == st.iso(T0 + timedelta(minutes=2))


POLICY = parse_policy_spec({"targetRef": {"kind": "Deployment", "name": "a"}, "metric": {"promql": "x"},
                            "capacityPerReplica": 100, "maxReplicas": 10,
                            "scaleDown": {"stabilizationWindow": "5m"}}).to_policy()


def _cycle(status: dict[str, Any] | None, at: datetime, recommended: int,
           decision: Decision | None = None) -> dict[str, Any]:
    """One cycle's status as the reconcile writes it: the memory loaded from status, changed, dumped back."""
    memory = PolicyMemory.load({"namespace": "casino", "policy": "a"}, status, steps=10, step=timedelta(minutes=1))
    memory.recommendations.add(recommended, at)
    memory.recommendations.forget_before(at, POLICY.scale_down.stabilization_window)
    b = st.StatusBuilder(status, 1, at)
    if decision is not None:
        b.decision(decision, at)
    b.set(**memory.dump(POLICY, at, timedelta(minutes=1)))
    return b.build()


def test_steady_decisions_keep_the_status_identical() -> None:
    decision = Decision(desired_replicas=4, reason="Hold", message="holding 4", recommended_replicas=4)
    first = _cycle(None, T0, 4, decision)
    assert _cycle(first, T0 + timedelta(seconds=15), 4, decision) == first
    ScalingPolicyStatus.model_validate(first)


def test_recommendations_are_run_length_encoded_and_windowed() -> None:
    window = POLICY.scale_down.stabilization_window
    status: dict[str, Any] | None = None
    for minute, replicas in [(0, 10), (1, 10), (2, 6), (8, 4)]:
        status = _cycle(status, T0 + timedelta(minutes=minute), replicas)
    assert status is not None
    items = status["recommendations"]
    assert [i["replicas"] for i in items] == [6, 4]  # 10 fell out of the window; 6 held until minute 8
    seen = RecommendationWindow.load(items).view(T0 + timedelta(minutes=9), window)
    assert seen[0] == (T0 + timedelta(minutes=4), 6) and seen[-1][1] == 4


def test_next_peak() -> None:
    spec = parse_policy_spec({"targetRef": {"kind": "Deployment", "name": "a"}, "metric": {"promql": "x"},
                              "capacityPerReplica": 100, "maxReplicas": 10,
                              "forecast": {"horizon": "1h", "step": "1m"}})
    index = pd.date_range(T0, periods=120, freq="1min", tz="UTC")
    values = np.full(120, 200.0)
    values[30] = 850.0
    values[90] = 5000.0  # beyond the 1h horizon
    q = {level: values for level in (0.5, 0.9, 0.95, 0.99)}
    peak = st.next_peak(Forecast(index, values, q), spec, T0)
    assert peak == {"time": "2026-11-27T19:30:00Z", "demand": 850.0, "replicas": 9,
                    "summary": "850/s -> 9 at 11-27 19:30Z"}
    assert st.next_peak(None, spec, T0) is None
