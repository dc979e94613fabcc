"""The incident rules: table-driven scenarios over plain data (no clock, no I/O)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from controller.core.decision import Decision, ObservedState, ReplicaLag
from controller.core.policy import Policy
from controller.incidents.model import Severity, fingerprint
from controller.incidents.rules import (
    ALL_WINDOWS,
    SLO,
    CycleInput,
    RuleSettings,
    burn_rate,
    evaluate,
)
from forecasting.base import Event

NOW = datetime(2026, 3, 1, 20, 0, tzinfo=UTC)
POLICY = Policy(capacity_per_replica=100, min_replicas=2, max_replicas=10,
                database_replicas={"capacity_per_replica": 500, "max_lag_seconds": 30})
AVAIL = SLO(name="availability", objective=0.999)
H, M, D = timedelta(hours=1), timedelta(minutes=1), timedelta(days=1)


def ratios(r5m: float | None, r30m: float | None, r1h: float | None, r6h: float | None,
           r3d: float | None) -> dict[timedelta, float | None]:
    return {5 * M: r5m, 30 * M: r30m, H: r1h, 6 * H: r6h, 3 * D: r3d}


# name: (ratios, expected (severity, long_window) set)
BURN = {
    "healthy": (ratios(0.0005, 0.0005, 0.0005, 0.0005, 0.0005), set()),
    "fast burn pages": (ratios(0.02, 0.001, 0.02, 0.001, 0.0005), {("page", "1h")}),
    "fast burn already over (5m recovered)": (ratios(0.001, 0.02, 0.02, 0.02, 0.0005), {("page", "6h")}),
    "slow burn pages at 6x": (ratios(0.007, 0.007, 0.007, 0.007, 0.0005), {("page", "6h")}),
    "ticket at 1x over 3d and 6h": (ratios(0.0015, 0.0015, 0.0015, 0.0015, 0.0015), {("ticket", "3d")}),
    "everything": (ratios(0.5, 0.5, 0.5, 0.5, 0.5), {("page", "1h"), ("page", "6h"), ("ticket", "3d")}),
    "exactly at the threshold does not fire": (ratios(0.0144, 0.0, 0.0144, 0.0, 0.0), set()),
    "no traffic (None) never fires": (ratios(None, None, 0.5, 0.5, 0.5), {("ticket", "3d")}),
}


@pytest.mark.parametrize("name", list(BURN))
def test_burn_rate(name: str) -> None:
    given, expected = BURN[name]
    signals = burn_rate(AVAIL, given, {"policy": "casino"})
    assert {(str(s.severity), s.labels["long_window"]) for s in signals} == expected
    for s in signals:
        assert s.alertname == "ErrorBudgetBurn" and s.runbook == "error-budget-burn"
        assert "availability" in s.summary and "objective 99.9%" in s.description


def test_all_windows_cover_the_workbook() -> None:
    assert ALL_WINDOWS == (5 * M, 30 * M, H, 6 * H, 3 * D)


def state(**kw: object) -> ObservedState:
    base: dict[str, object] = {"now": NOW, "current_replicas": 4, "ready_replicas": 4, "observed_demand": 350.0}
    base.update(kw)
    return ObservedState(**base)  # type: ignore[arg-type]


def decision(**kw: object) -> Decision:
    base: dict[str, object] = {"desired_replicas": 4, "reason": "Hold", "message": "steady"}
    base.update(kw)
    return Decision(**base)  # type: ignore[arg-type]


EVENT = Event(name="friday-jackpot", kind="tournament", start=pd.Timestamp(NOW + timedelta(minutes=1)),
              end=pd.Timestamp(NOW + timedelta(hours=2)))
OVER = Event(name="lunch-promo", kind="promotion", start=pd.Timestamp(NOW - timedelta(hours=2)),
             end=pd.Timestamp(NOW))
RUNNING = Event(name="evening-slots", kind="promotion", start=pd.Timestamp(NOW - timedelta(minutes=30)),
                end=pd.Timestamp(NOW + timedelta(minutes=30)))
FAR = Event(name="late-night", kind="promotion", start=pd.Timestamp(NOW + timedelta(minutes=2, seconds=1)),
            end=pd.Timestamp(NOW + timedelta(hours=1)))
LATER = Event(name="sunday-promo", kind="promotion", start=pd.Timestamp(NOW + timedelta(days=2)),
              end=pd.Timestamp(NOW + timedelta(days=2, hours=1)))

# name: (CycleInput kwargs, expected alertnames)
CYCLES: dict[str, tuple[dict[str, object], list[str]]] = {
    "all quiet": ({}, []),
    "capacity not ready a minute before the event": (
        {"state": state(ready_replicas=5), "decision": decision(desired_replicas=8), "events": [EVENT]},
        ["CapacityNotReady"]),
    "short of capacity but no event near": (
        {"state": state(ready_replicas=5), "decision": decision(desired_replicas=8), "events": [LATER]}, []),
    "event over at now: no longer checked": (
        {"state": state(ready_replicas=5), "decision": decision(desired_replicas=8), "events": [OVER]}, []),
    "event running": (
        {"state": state(ready_replicas=5), "decision": decision(desired_replicas=8), "events": [RUNNING]},
        ["CapacityNotReady"]),
    "event just beyond the 2 min margin": (
        {"state": state(ready_replicas=5), "decision": decision(desired_replicas=8), "events": [FAR]}, []),
    "ready for the event": (
        {"state": state(ready_replicas=8), "decision": decision(desired_replicas=8), "events": [EVENT]}, []),
    "capacity ceiling": ({"decision": decision(desired_replicas=10, capacity_limited=True, forecast_peak=1500.0)},
                         ["CapacityCeiling"]),
    "forecast miss 3 steps in a row": ({"forecast_checks": [(90.0, 100.0), (120.0, 100.0), (130.0, 110.0),
                                                            (140.0, 120.0)]}, ["ForecastMiss"]),
    "forecast miss broken by one step": ({"forecast_checks": [(120.0, 100.0), (90.0, 100.0), (130.0, 110.0)]}, []),
    "forecast miss with an unknown step": ({"forecast_checks": [(120.0, 100.0), (None, 100.0), (130.0, 110.0)]},
                                           []),
    "metrics unavailable": ({"state": state(observed_demand=None), "decision": decision(metrics_available=False),
                             "metrics_error": "prometheus query: cannot connect"}, ["MetricsUnavailable"]),
    "database lag unknown: MetricsUnavailable for the database, app decision untouched": (
        {"decision": decision(database_metrics_available=False, database_reason="MetricsUnavailable",
                              database_message="replication lag unknown (lag query failed: timeout)")},
        ["MetricsUnavailable"]),
    "scaling failing": ({"scale_failures": 3, "last_scale_error": "409 conflict"}, ["ScalingFailing"]),
    "two scale failures are not yet an incident": ({"scale_failures": 2}, []),
    "replica lag": ({"state": state(database_replicas=(ReplicaLag("db-r1", 45.0), ReplicaLag("db-r2", 3.0),
                                                       ReplicaLag("db-r3", None)))}, ["DatabaseReplicaLag"]),
    "slo burn": ({"error_ratios": {"availability": ratios(0.02, 0.02, 0.02, 0.02, 0.02)}},
                 ["ErrorBudgetBurn", "ErrorBudgetBurn", "ErrorBudgetBurn"]),
}


@pytest.mark.parametrize("name", list(CYCLES))
def test_cycle_rules(name: str) -> None:
    kwargs, expected = CYCLES[name]
    base: dict[str, object] = {"policy_name": "casino", "policy": POLICY, "state": state(), "decision": decision(),
                               "namespace": "prod"}
    base.update(kwargs)
    signals = evaluate(CycleInput(**base))  # type: ignore[arg-type]
    assert sorted(s.alertname for s in signals) == sorted(expected)
    for s in signals:
        assert s.labels["policy"] == "casino" and s.labels["namespace"] == "prod"
        assert s.summary and s.description and s.runbook
        assert isinstance(s.severity, Severity)


def test_messages_say_what_and_why() -> None:
    c = CycleInput(policy_name="casino", policy=POLICY, state=state(ready_replicas=5),
                   decision=decision(desired_replicas=8, reason="ScaleUpForecast", message="peak 780/s at 20:01"),
                   events=[EVENT])
    (sig,) = evaluate(c)
    assert sig.summary == "5 of 8 replicas ready for friday-jackpot"
    assert "ScaleUpForecast: peak 780/s at 20:01" in sig.description and "starts at" in sig.description
    lag = evaluate(CycleInput(policy_name="casino", policy=POLICY, decision=decision(),
                              state=state(database_replicas=(ReplicaLag("db-r1", 45.0),))))[0]
    assert lag.labels["replica"] == "db-r1" and "maxLagSeconds=30" in lag.description


def test_database_lag_unknown_is_its_own_incident() -> None:
    (sig,) = evaluate(CycleInput(policy_name="casino", policy=POLICY, state=state(database_current_replicas=3),
                                 decision=decision(database_metrics_available=False,
                                                   database_message="replication lag unknown (no series)")))
    assert sig.alertname == "MetricsUnavailable" and sig.labels["target"] == "database"
    assert sig.runbook == "database-lag-unknown" and "keeps 3 read replicas" in sig.description
    assert "no series" in sig.description


def test_settings_tune_the_rules() -> None:
    settings = RuleSettings(forecast_miss_steps=1, scale_failure_threshold=1, ready_tolerance=3)
    c = CycleInput(policy_name="casino", policy=POLICY, state=state(ready_replicas=5),
                   decision=decision(desired_replicas=8), events=[EVENT], forecast_checks=[(2.0, 1.0)],
                   scale_failures=1)
    assert sorted(s.alertname for s in evaluate(c, settings)) == ["ForecastMiss", "ScalingFailing"]


def test_settings_validate() -> None:
    with pytest.raises(ValueError, match="forecast_miss_steps"):
        RuleSettings(forecast_miss_steps=0)
    with pytest.raises(ValueError, match="objective"):
        SLO(name="availability", objective=1.5)


def test_fingerprint_is_stable_and_ignores_order_and_numbers() -> None:
    a = burn_rate(AVAIL, ratios(0.5, 0.5, 0.5, 0.5, 0.5), {"policy": "casino", "namespace": "prod"})
    b = burn_rate(AVAIL, ratios(0.9, 0.9, 0.9, 0.9, 0.9), {"namespace": "prod", "policy": "casino"})
    assert [s.fingerprint() for s in a] == [s.fingerprint() for s in b]
    assert len({s.fingerprint() for s in a}) == 3
    assert fingerprint("X", {"a": "1"}) == "2b58b104de6a4b74"  # pinned: ids must survive upgrades
    assert fingerprint("X", {"a": "1"}) != fingerprint("X", {"a": "2"})
    assert len(fingerprint("X", {})) == 16


def test_every_runbook_anchor_exists() -> None:
    """Each rule's runbook anchor has a section in docs/runbooks.md (and the shipped rules' links too)."""
    import re
    from pathlib import Path

    repo = Path(__file__).resolve().parents[3]
    anchors = set(re.findall(r'<a id="([a-z-]+)"></a>', (repo / "docs" / "runbooks.md").read_text()))
    used = {"error-budget-burn", "capacity-not-ready", "capacity-ceiling", "forecast-miss",
            "metrics-unavailable", "scaling-failing", "database-replica-lag"}
    all_cycles = [CYCLES[name][0] for name in CYCLES]
    for kwargs in all_cycles:
        base: dict[str, object] = {"policy_name": "casino", "policy": POLICY, "state": state(),
                                   "decision": decision()}
        base.update(kwargs)
        used |= {s.runbook for s in evaluate(CycleInput(**base))}  # type: ignore[arg-type]
    shipped = set(re.findall(r"runbooks\.md#([a-z-]+)", (repo / "manifests" / "prometheus" / "casino-rules.yaml")
                             .read_text()))
    assert used | shipped <= anchors, (used | shipped) - anchors
