"""Capacity accounting for the dashboards: the reactive counterfactual, replica-seconds, unserved demand,
lead time per event, and the metrics ``OperatorMetrics.observe_policy`` / ``observe_incidents`` export."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from controller.incidents.model import Incident, Severity
from controller.telemetry.accounting import CycleFacts, PolicyAccounting
from controller.telemetry.metrics import OperatorMetrics
from forecasting.base import Event

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
S = timedelta(seconds=15)
EVENT = Event("cup", "tournament", T0 + 4 * S, T0 + 10 * S)


def facts(i: int, *, observed: float | None, current: int, ready: int, desired: int | None = None) -> CycleFacts:
    return CycleFacts(namespace="ns", policy="p", now=T0 + i * S, wall_now=1_000_000.0 + i * 15,
                      capacity_per_replica=10, min_replicas=1, max_replicas=5, headroom_quantile=0.95,
                      current=current, ready=ready, desired=current if desired is None else desired,
                      observed=observed, forecast_median=20.0, forecast_headroom=30.0, events=[EVENT])


def test_reactive_follows_demand_up_at_once_and_down_after_five_minutes() -> None:
    acc = PolicyAccounting()
    assert acc.reactive(facts(0, observed=35, current=1, ready=1)) == 4
    assert acc.reactive(facts(1, observed=5, current=1, ready=1)) == 4  # stabilized
    assert acc.reactive(facts(1 + 20, observed=5, current=1, ready=1)) == 1  # 5 minutes later
    assert acc.reactive(facts(22, observed=900, current=1, ready=1)) == 5  # clamped to max
    assert acc.reactive(facts(23, observed=None, current=1, ready=1)) == 5  # unknown demand: holds


def test_replica_seconds_unserved_demand_and_the_gap_cap() -> None:
    acc = PolicyAccounting()
    first = acc.step(facts(0, observed=35, current=2, ready=2))
    assert (first.pitboss_replica_seconds, first.reactive_replica_seconds, first.unserved_demand) == (0, 0, 15)
    second = acc.step(facts(1, observed=10, current=3, ready=3))
    assert second.pitboss_replica_seconds == 2 * 15 and second.reactive_replica_seconds == 4 * 15
    assert second.unserved_requests == 15 * 15 and second.unserved_demand == 0
    late = acc.step(facts(100, observed=10, current=3, ready=3))  # the loop stalled 25 minutes
    assert late.pitboss_replica_seconds == 3 * 300


def test_lead_time_before_after_and_never() -> None:
    early = PolicyAccounting()
    for i, ready in enumerate([1, 3, 3, 3, 3]):
        step = early.step(facts(i, observed=10, current=3, ready=ready, desired=3))
    assert step.leads == {"cup": 45.0}  # ready at T0+15 s, the event at T0+60 s
    late = PolicyAccounting()
    for i, ready in enumerate([1, 1, 1, 1, 1, 1, 3]):
        step = late.step(facts(i, observed=10, current=3, ready=ready, desired=3))
    assert late.leads == {"cup": -30.0} and step.leads == {"cup": -30.0}
    never = PolicyAccounting()
    for i in range(12):
        never.step(facts(i, observed=10, current=3, ready=1, desired=3))
    assert never.leads == {"cup": -90.0}
    assert "cup" in step.events and step.events["cup"][1] == 1_000_000.0 + 90 - 30  # wall start


def test_observe_policy_exports_and_forgets() -> None:
    m = OperatorMetrics()
    m.observe_policy(facts(0, observed=35, current=2, ready=2))
    m.observe_policy(facts(1, observed=None, current=2, ready=2))
    text = m.exposition().decode()
    assert 'pitboss_operator_replica_seconds_total{autoscaler="pitboss",namespace="ns",policy="p"} 30.0' in text
    assert 'pitboss_operator_forecast_demand{namespace="ns",policy="p",quantile="0.95"} 30.0' in text
    assert 'pitboss_operator_reconcile_errors_total{namespace="ns",policy="p",reason="ScaleFailed"} 0.0' in text
    assert "pitboss_operator_observed_demand{" not in text  # unknown now: a gap, not a zero
    assert 'pitboss_operator_traffic_event_start_timestamp_seconds{event="cup"' in text
    m.forget_except({("ns", "p")})
    assert "pitboss_operator_forecast_demand{" in m.exposition().decode()
    m.forget_except(set())  # the policy is gone: its gauges go with it
    text = m.exposition().decode()
    for gauge in ("forecast_demand", "ready_replicas", "traffic_event_start_timestamp_seconds", "unserved_demand"):
        assert f"pitboss_operator_{gauge}{{" not in text, gauge


def test_a_dropped_or_forgotten_series_comes_back_when_known_again() -> None:
    """observe_policy caches each policy's children; a removed child is never written through a stale handle."""
    m = OperatorMetrics()
    m.observe_policy(facts(0, observed=35, current=2, ready=2))
    m.observe_policy(facts(1, observed=None, current=2, ready=2))  # dropped: a gap
    m.observe_policy(facts(2, observed=41, current=3, ready=3))
    assert 'pitboss_operator_observed_demand{namespace="ns",policy="p"} 41.0' in m.exposition().decode()
    m.observe_decision("ns", "p", "ScaleUp", 4, 3)
    m.forget_except(set())
    m.observe_policy(facts(3, observed=12, current=1, ready=1))  # the same name again (re-created)
    m.observe_decision("ns", "p", "Steady", 1, 1)
    text = m.exposition().decode()
    assert 'pitboss_operator_observed_demand{namespace="ns",policy="p"} 12.0' in text
    assert 'pitboss_operator_ready_replicas{namespace="ns",policy="p"} 1.0' in text
    assert 'pitboss_operator_desired_replicas{namespace="ns",policy="p"} 1.0' in text


def test_observe_incidents_counts_by_alert_and_times_resolution() -> None:
    m = OperatorMetrics()
    inc = Incident(id="a1", alertname="CapacityCeiling", severity=Severity("ticket"),
                   labels={"namespace": "ns", "policy": "p"}, summary="", description="", runbook_url="",
                   state="firing", starts_at=T0, updated_at=T0)
    m.observe_incidents([inc, replace(inc, id="a2")], T0)
    text = m.exposition().decode()
    assert 'pitboss_operator_incident_firing{alertname="CapacityCeiling",namespace="ns",policy="p",' \
           'severity="ticket"} 2.0' in text
    m.observe_incidents([], T0 + timedelta(minutes=10))
    text = m.exposition().decode()
    assert 'severity="ticket"} 0.0' in text
    assert 'pitboss_operator_incident_resolve_duration_seconds_count{alertname="CapacityCeiling"} 2.0' in text
    assert 'pitboss_operator_incident_resolve_duration_seconds_bucket{alertname="CapacityCeiling",le="600.0"} 2.0' \
        in text
