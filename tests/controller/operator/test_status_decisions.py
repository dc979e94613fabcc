"""status.decisions: the bounded history `pitboss explain` reads (appended on change only, with its numbers)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from controller.core.decision import Decision, ObservedState
from controller.operator import status as st
from controller.operator.resources import ScalingPolicyStatus, parse_policy_spec
from forecasting.base import Event

T0 = datetime(2026, 11, 27, 19, 50, tzinfo=UTC)
EVENT = Event("friday-frenzy", "tournament", pd.Timestamp("2026-11-27T20:00Z"), pd.Timestamp("2026-11-27T21:00Z"))


def spec(**extra: Any) -> Any:
    return parse_policy_spec({"targetRef": {"kind": "Deployment", "name": "slots-api"}, "metric": {"promql": "x"},
                              "capacityPerReplica": 100, "maxReplicas": 40, "leadTime": "10m", **extra})


def step(old: dict[str, Any] | None, at: datetime, decision: Decision, current: int, after: int,
         policy: Any = None) -> dict[str, Any]:
    b = st.StatusBuilder(old, 1, at)
    state = ObservedState(now=at, current_replicas=current, ready_replicas=current, observed_demand=297.4)
    b.remember(decision, state, after=after, spec=policy or spec(), events=[EVENT])
    return b.build()


UP = Decision(desired_replicas=11, reason="ScaleUpForecast", message="forecast p95 peak 1610 req/s ...",
              forecast_peak=1610.0, forecast_peak_at=datetime(2026, 11, 27, 20, 5, tzinfo=UTC),
              recommended_replicas=11)
HOLD = Decision(desired_replicas=11, reason="Hold", message="holding 11", forecast_peak=1600.0,
                recommended_replicas=11)


def test_a_prescale_is_recorded_with_its_numbers_and_event() -> None:
    status = step(None, T0, UP, 4, 11)
    (entry,) = status["decisions"]
    assert entry == {"time": "2026-11-27T19:50:00Z", "reason": "ScaleUpForecast", "fromReplicas": 4,
                     "toReplicas": 11, "headroomQuantile": 0.95, "message": UP.message, "observedDemand": 297.4,
                     "forecastPeak": 1610.0, "forecastPeakAt": "2026-11-27T20:05:00Z",
                     "event": "tournament friday-frenzy", "eventStart": "2026-11-27T20:00:00Z"}
    ScalingPolicyStatus.model_validate(status)  # fits the CRD's model


def test_steady_cycles_append_nothing_and_the_history_is_bounded() -> None:
    status = step(None, T0, UP, 4, 11)
    status = step(status, T0 + timedelta(seconds=15), HOLD, 11, 11)
    again = step(status, T0 + timedelta(seconds=30), HOLD, 11, 11)
    assert again == status and [d["reason"] for d in status["decisions"]] == ["ScaleUpForecast", "Hold"]
    assert "event" not in status["decisions"][-1]  # only scale-ups name the event that drove them
    at = T0
    for i in range(st.MAX_DECISIONS + 5):
        at += timedelta(seconds=15)
        n = 11 + i
        status = step(status, at, Decision(desired_replicas=n + 1, reason="ScaleUpObserved", message="m",
                                           recommended_replicas=n + 1), n, n + 1)
    assert len(status["decisions"]) == st.MAX_DECISIONS
    assert status["decisions"][-1]["toReplicas"] == 11 + st.MAX_DECISIONS + 5


def test_forecast_only_records_what_active_mode_would_do() -> None:
    would = Decision(desired_replicas=4, reason="ForecastOnly", message="ForecastOnly: would scale 4 -> 11",
                     recommended_replicas=11, forecast_peak=1610.0)
    status = step(None, T0, would, 4, 4, spec(mode="ForecastOnly"))
    (entry,) = status["decisions"]
    assert (entry["fromReplicas"], entry["toReplicas"], entry["event"]) == (4, 11, "tournament friday-frenzy")
