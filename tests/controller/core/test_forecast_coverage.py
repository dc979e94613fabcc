"""decide() and forecast stamps: any resolution works; a forecast that misses now is flagged with both times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from controller.core.decide import FORECAST_NOT_COVERING, decide, forecast_peak
from controller.core.decision import ObservedState
from controller.core.policy import Policy
from forecasting.base import REQUIRED_QUANTILES, Forecast

NOW = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
POLICY = Policy(capacity_per_replica=100, min_replicas=1, max_replicas=50, lead_time=timedelta(minutes=10))


def forecast(start: datetime, values: list[float]) -> Forecast:
    index = pd.date_range(pd.Timestamp(start), periods=len(values), freq="1min")
    arr = np.asarray(values, dtype=float)
    return Forecast(index=index, mean=arr, quantiles={q: arr for q in REQUIRED_QUANTILES}, model="test")


@pytest.mark.parametrize("unit", ["s", "ms", "us"])
def test_forecast_peak_reads_an_index_of_any_resolution(unit: str) -> None:
    fc = forecast(NOW, [100.0] * 5 + [900.0] + [100.0] * 20)
    object.__setattr__(fc, "index", fc.index.as_unit(unit))  # bypass the boundary: the kernel alone
    peak = forecast_peak(fc, 0.95, NOW, NOW + timedelta(minutes=10))
    assert peak is not None and peak.value == 900.0 and peak.at == pd.Timestamp(NOW) + pd.Timedelta(minutes=5)


def test_a_forecast_that_does_not_cover_now_is_flagged_with_both_times() -> None:
    old = forecast(NOW - timedelta(days=1), [100.0] * 30)
    state = ObservedState(now=NOW, current_replicas=9, ready_replicas=9, observed_demand=100.0)
    decision = decide(POLICY, old, state)
    assert FORECAST_NOT_COVERING in decision.flags and "ForecastUnavailable" in decision.flags
    assert decision.desired_replicas == 9 and decision.reason == "MetricsUnavailable"  # no scale-down
    assert pd.Timestamp(NOW).isoformat() in decision.message
    assert old.index[0].isoformat() in decision.message and old.index[-1].isoformat() in decision.message


def test_no_forecast_at_all_is_not_a_coverage_bug() -> None:
    state = ObservedState(now=NOW, current_replicas=9, ready_replicas=9, observed_demand=100.0)
    decision = decide(POLICY, None, state)
    assert "ForecastUnavailable" in decision.flags and FORECAST_NOT_COVERING not in decision.flags
    covered = decide(POLICY, forecast(NOW, [100.0] * 30), state)
    assert FORECAST_NOT_COVERING not in covered.flags and "ForecastUnavailable" not in covered.flags
