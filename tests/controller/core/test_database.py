"""Table tests of the database read-replica rule through ``decide`` (controller.core.database).

Each row is a situation of the read replicas (asked for, ready, the lag
series, recent scale-ups and recommendations) and what the rule must decide:
capacity on the way never buys more, really lagging replicas are compensated,
unknown lag holds and says MetricsUnavailable, scale-down waits for its own
window and goes one replica per decision. ``test_runaway_replayed_over_five_cycles``
replays the reported runaway (4 needed grew to 8 in five 15 s cycles).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from controller.core.database import lag_census
from controller.core.decide import decide
from controller.core.decision import ObservedState, ReplicaLag
from controller.core.policy import Policy
from forecasting.base import Forecast

NOW = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
NAN = math.nan
POLICY = {
    "capacityPerReplica": 100, "minReplicas": 1, "maxReplicas": 100, "leadTime": "2m",
    "databaseReplicas": {"capacityPerReplica": 400, "readShare": 0.5, "leadTime": "20m", "maxReplicas": 8,
                         "maxLagSeconds": 30},
}
NEED_4 = 3200.0  # reads 1600/s at 400 per replica


def forecast(value: float, minutes: int = 40) -> Forecast:
    index = pd.date_range(NOW, periods=minutes, freq="60s")
    values = np.full(minutes, value)
    return Forecast(index=index, mean=values, quantiles={q: values for q in (0.5, 0.9, 0.95, 0.99)}, model="test")


def ago(minutes: float) -> datetime:
    return NOW - timedelta(minutes=minutes)


@dataclass
class Row:
    name: str
    asked: int
    lags: list[float | None]
    expected: int
    reason: str
    ready: int | None = None
    demand: float | None = NEED_4  # forecast and observed demand (None: no forecast)
    observed: float | None = NEED_4
    scale_ups: list[tuple[float, int]] = field(default_factory=list)  # (minutes ago, replicas added)
    recommendations: list[tuple[float, int]] = field(default_factory=list)  # (minutes ago, replicas)
    measured: bool = True
    error: str | None = None
    flags: set[str] = field(default_factory=set)
    not_flags: set[str] = field(default_factory=set)
    message_has: tuple[str, ...] = ()
    lag_known: bool = True


ROWS = [
    Row("healthy replicas at the need hold", 4, [1, 1, 1, 1], 4, "Hold"),
    Row("a replica asked for but not ready yet is on the way", 4, [1, 1, 1], 4, "ReplicasCatchingUp", ready=3,
        scale_ups=[(0.25, 1)], message_has=("1 of 4 read replica(s) asked for are not ready yet",)),
    Row("a starting replica whose series is NaN is on the way, not unknown", 4, [1, 1, 1, NAN], 4,
        "ReplicasCatchingUp", ready=3, scale_ups=[(0.25, 1)], not_flags={"DatabaseMetricsUnavailable"}),
    Row("a new replica catching up after a scale-up is on the way", 4, [1, 1, 1, 600], 4, "ReplicasCatchingUp",
        scale_ups=[(1, 1)], not_flags={"DatabaseLagging"}, message_has=("1 new replica(s) catching up",)),
    Row("a starting replica that already reports lag is on the way", 4, [1, 1, 1, 600], 4, "ReplicasCatchingUp",
        ready=3, scale_ups=[(0.25, 1)]),
    Row("an old replica that lags is compensated", 4, [1, 1, 1, 600], 5, "ScaleUpLagging",
        flags={"DatabaseLagging"}, message_has=("1 replica(s) lagging over 30s",)),
    Row("still lagging a lead time after it was added: lagging", 4, [1, 1, 1, 600], 5, "ScaleUpLagging",
        scale_ups=[(25, 1)], flags={"DatabaseLagging"}),
    Row("catch-up excuses only as many replicas as were added", 4, [1, 1, 600, 600], 5, "ScaleUpLagging",
        scale_ups=[(1, 1)], flags={"DatabaseLagging"}),
    Row("unknown lag: the lag query failed -> hold, MetricsUnavailable", 4, [], 4, "MetricsUnavailable",
        demand=400.0, observed=400.0, error="prometheus: connection refused", lag_known=False,
        flags={"DatabaseMetricsUnavailable"}, message_has=("lag query failed: prometheus: connection refused",)),
    Row("unknown lag: an empty result -> hold", 4, [], 4, "MetricsUnavailable", demand=400.0, observed=400.0,
        lag_known=False, flags={"DatabaseMetricsUnavailable"}, message_has=("returned no series",)),
    Row("unknown lag: fewer series than ready replicas -> hold", 4, [1, 1, 1], 4, "MetricsUnavailable",
        demand=400.0, observed=400.0, lag_known=False, message_has=("returned 3 series for 4 ready",)),
    Row("unknown lag: NaN for a ready replica -> hold", 4, [1, 1, 1, NAN], 4, "MetricsUnavailable",
        demand=400.0, observed=400.0, lag_known=False, message_has=("NaN or unknown for 1 of 4",)),
    Row("unknown lag: +Inf is NaN-like, not a huge lag", 4, [1, 1, 1, math.inf], 4, "MetricsUnavailable",
        demand=400.0, observed=400.0, lag_known=False),
    Row("unknown lag still scales up for the forecast (never down)", 4, [], 6, "MetricsUnavailable",
        demand=4800.0, observed=4800.0, error="timeout", lag_known=False),
    Row("no lag query: the guard is off by choice, not unknown", 4, [], 4, "Hold", measured=False,
        not_flags={"DatabaseMetricsUnavailable"}),
    Row("scale-down waits for the database's own window", 4, [1] * 4, 4, "ScaleDownStabilized", demand=400.0,
        observed=400.0, recommendations=[(10, 4)], message_has=("highest database recommendation in the last 30m",)),
    Row("after the window: one replica per decision", 4, [1] * 4, 3, "ScaleDownStep", demand=400.0,
        observed=400.0, recommendations=[(40, 4)]),
    Row("down to the window's highest recommendation", 4, [1] * 4, 3, "ScaleDownStabilized", demand=400.0,
        observed=400.0, recommendations=[(10, 3)]),
    Row("one below the current, no history: plain scale-down", 4, [1] * 4, 3, "ScaleDown", demand=2400.0,
        observed=2400.0),
    Row("never down without observed demand", 4, [1] * 4, 4, "MetricsUnavailable", demand=400.0, observed=None),
    Row("never down without a forecast", 4, [1] * 4, 4, "MetricsUnavailable", demand=None, observed=400.0),
    Row("capacity limited at databaseReplicas.maxReplicas", 4, [1] * 4, 8, "CapacityLimited", demand=8000.0,
        observed=8000.0, flags={"DatabaseCapacityLimited"}),
]


@pytest.mark.parametrize("row", ROWS, ids=[r.name for r in ROWS])
def test_database_rule(row: Row) -> None:
    state = ObservedState(
        now=NOW, current_replicas=40, ready_replicas=40, observed_demand=row.observed,
        database_replicas=tuple(ReplicaLag(f"pg-{i}", lag) for i, lag in enumerate(row.lags)),
        database_current_replicas=row.asked, database_ready_replicas=row.ready,
        database_lag_measured=row.measured, database_lag_error=row.error,
        database_scale_ups=tuple((ago(m), n) for m, n in row.scale_ups),
        database_recommendations=tuple((ago(m), n) for m, n in row.recommendations),
    )
    decision = decide(Policy.model_validate(POLICY), None if row.demand is None else forecast(row.demand), state)
    assert decision.database_desired_replicas == row.expected, decision.database_message
    assert decision.database_reason == row.reason, decision.database_message
    assert decision.database_metrics_available is row.lag_known
    assert row.flags <= decision.flags and not (row.not_flags & decision.flags), decision.flags
    assert decision.database_message and decision.database_message in decision.message
    for text in row.message_has:
        assert text in decision.database_message, decision.database_message


def test_unknown_lag_holds_the_database_while_the_app_scales() -> None:
    """Lag unknown: the database says MetricsUnavailable; the app side still decides from its own metrics."""
    state = ObservedState(now=NOW, current_replicas=10, ready_replicas=10, observed_demand=NEED_4,
                          database_current_replicas=4, database_lag_error="query timed out")
    decision = decide(Policy.model_validate(POLICY), forecast(NEED_4), state)
    assert decision.metrics_available and decision.reason == "ScaleUpForecast" and decision.desired_replicas == 32
    assert decision.database_reason == "MetricsUnavailable" and decision.database_desired_replicas == 4
    assert "DatabaseMetricsUnavailable" in decision.flags and "MetricsUnavailable" not in decision.flags
    assert decision.database_recommended_replicas == 4  # the window remembers the held count


def test_census_counts_and_explains() -> None:
    lags = [ReplicaLag("a", 0.5), ReplicaLag("b", 31.0), ReplicaLag("c", 30.0)]
    census = lag_census(lags, 3, 30.0)
    assert (census.healthy, census.lagging, census.unknown) == (2, 1, None)
    assert lag_census([], 0, 30.0).unknown is None  # nothing ready, nothing to measure
    assert lag_census(lags, 3, 30.0, measured=False).lagging == 0
    assert "failed" in (lag_census(lags, 3, 30.0, error="boom").unknown or "")


@dataclass
class Cluster:
    """A toy read-replica StatefulSet: a new pod is ready one cycle after it is asked for and then lags
    600 s for 20 minutes while it copies the primary's WAL; until ready its exporter reports NaN."""

    asked: int
    added: list[datetime] = field(default_factory=list)  # when each replica beyond the first ones was added

    def observe(self, now: datetime, base: int) -> tuple[int, tuple[ReplicaLag, ...]]:
        ready = base + sum(1 for at in self.added if now - at >= timedelta(seconds=15))
        lags = [ReplicaLag(f"pg-{i}", 1.0) for i in range(base)]
        for i, at in enumerate(self.added):
            age = now - at
            lag = NAN if age < timedelta(seconds=15) else 600.0 if age < timedelta(minutes=20) else 1.0
            lags.append(ReplicaLag(f"pg-{base + i}", lag))
        return ready, tuple(lags)


def test_runaway_replayed_over_five_cycles() -> None:
    """The report: 4 read replicas needed, 3 healthy; each new replica lagged while catching up and bought
    another, 4 -> 8 (= max) in five 15 s cycles. Now the new replica is capacity on the way: 4 stays 4."""
    policy = Policy.model_validate(POLICY)
    cluster, base = Cluster(asked=3), 3
    scale_ups: list[tuple[datetime, int]] = []
    recommendations: list[tuple[datetime, int]] = []
    asked_seen = []
    for cycle in range(5):
        now = NOW + timedelta(seconds=15 * cycle)
        ready, lags = cluster.observe(now, base)
        state = ObservedState(
            now=now, current_replicas=40, ready_replicas=40, observed_demand=NEED_4, database_replicas=lags,
            database_current_replicas=cluster.asked, database_ready_replicas=ready,
            database_scale_ups=tuple(scale_ups), database_recommendations=tuple(recommendations),
        )
        decision = decide(policy, forecast(NEED_4), state)
        desired = decision.database_desired_replicas
        assert desired is not None
        if desired > cluster.asked:  # what the loop does after a successful /scale write
            scale_ups.append((now, desired - cluster.asked))
            cluster.added += [now] * (desired - cluster.asked)
        cluster.asked = desired
        if decision.database_recommended_replicas is not None:
            recommendations.append((now, decision.database_recommended_replicas))
        asked_seen.append(cluster.asked)
        assert "DatabaseLagging" not in decision.flags, decision.database_message
    assert asked_seen == [4, 4, 4, 4, 4], asked_seen
