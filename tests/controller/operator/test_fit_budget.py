"""Fits spread over cycles: once a cycle has spent its fit budget, the other policies decide without waiting.

The production wiring (``build_operator``, what ``pitboss operator run`` builds) over the official client
against the strict emulator, on a fake clock, with the real ``calendar`` model. The budget here is one
microsecond, so each cycle fits exactly one policy (the first fit of a cycle always runs).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from kubernetes import client

from controller.operator.app import build_operator
from controller.operator.clock import FakeClock
from tests.controller.operator.harness import EVENT_START, TraceDemand, policy_spec, tournament_specs
from tests.kube.fixtures import (
    NAMESPACE,
    SYSTEM_NAMESPACE,
    api_client_for,
    create,
    deployment,
    scaling_policy,
    traffic_event,
)

SYNC = timedelta(seconds=15)
NAMES = ("slots-a", "slots-b", "slots-c")


def _forecast_ready(emu: Any, name: str) -> dict[str, Any]:
    obj = emu.get("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, name)
    return next(c for c in obj["status"]["conditions"] if c["type"] == "ForecastReady")


def _cluster(kube: Any, api: Any) -> tuple[Any, Any, FakeClock]:
    """Three policies on one tournament calendar and the production operator, two hours before the event."""
    emu, url = kube
    for name in NAMES:
        create(api, deployment(f"{name}-api", 4))
        target = {"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-api"}
        create(api, scaling_policy(name, policy_spec(targetRef=target)))
    for name, event in tournament_specs():
        create(api, traffic_event(name, event, labels={"service": "slots"}))
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = build_operator(api_client_for(url), namespace=None, demand=TraceDemand(), clock=clock,
                        leader_election=False, lease_namespace=SYSTEM_NAMESPACE,
                        fit_budget=timedelta(microseconds=1))
    return emu, op, clock


def test_fits_wait_for_later_cycles_and_no_policy_waits_for_a_fit(kube: Any, api: Any) -> None:
    emu, op, clock = _cluster(kube, api)
    seen = []
    for _ in range(4):
        report = op.loop.step()
        assert report is not None and len(report.outcomes) == 3  # every policy decided in every cycle
        assert not any(o.error for o in report.outcomes), report.outcomes
        ready = {n: _forecast_ready(emu, n) for n in NAMES}
        seen.append((report.fits, report.deferred_fits, sum(c["status"] == "True" for c in ready.values())))
        waiting = [c for c in ready.values() if c["status"] == "False"]
        assert all("fit budget" in c["message"] for c in waiting), waiting
        clock.advance(SYNC)
    assert seen == [(1, 2, 1), (1, 1, 2), (1, 0, 3), (0, 0, 3)]

    # An hour on, every refit is due by age in the same cycle: one refits, the others keep (and update)
    # the forecast they have, so none of them is without a forecast.
    clock.advance(timedelta(hours=1))
    report = op.loop.step()
    assert report is not None and (report.fits, report.deferred_fits) == (1, 2) and report.updates == 2
    assert all(_forecast_ready(emu, n)["status"] == "True" for n in NAMES)
    clock.advance(timedelta(minutes=1))  # the next step: the next of them refits
    report = op.loop.step()
    assert report is not None and (report.fits, report.deferred_fits) == (1, 1)


G, V, P = "pitboss.dev", "v1alpha1", "scalingpolicies"
MERGE = "application/merge-patch+json"


def _fitted(kube: Any, api: Any) -> tuple[Any, Any, FakeClock]:
    """Three policies, each fitted (one per cycle within the one-microsecond budget)."""
    emu, op, clock = _cluster(kube, api)
    for _ in range(3):
        op.loop.step()
        clock.advance(SYNC)
    assert all(_forecast_ready(emu, n)["status"] == "True" for n in NAMES)
    return emu, op, clock


def _last_decision(emu: Any, name: str) -> str:
    return str(emu.get(G + "/" + V, P, NAMESPACE, name)["status"]["lastDecision"]["message"])


def test_a_changed_event_calendar_queues_its_refits_within_the_budget(kube: Any, api: Any) -> None:
    """A new TrafficEvent changes every policy's key in one cycle: one refit a cycle, as for any refit, and
    the others decide on the forecast they had (their decision says so) until their refit's turn."""
    emu, op, clock = _fitted(kube, api)
    start = EVENT_START + timedelta(days=1)
    create(api, traffic_event("saturday-spins", {
        "kind": "tournament", "start": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": (start + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ"), "expectedLift": 4.0},
        labels={"service": "slots"}))
    seen = []
    for _ in range(4):
        report = op.loop.step()
        assert report is not None and len(report.outcomes) == 3  # every policy decided in every cycle
        assert not any(o.error for o in report.outcomes), report.outcomes
        assert all(_forecast_ready(emu, n)["status"] == "True" for n in NAMES)  # none without a forecast
        stale = [n for n in NAMES if "previous forecast" in _last_decision(emu, n)]
        assert all("refit waits" in _forecast_ready(emu, n)["message"] for n in stale)
        seen.append((report.fits, report.deferred_fits, len(stale)))
        clock.advance(SYNC)
    assert seen == [(1, 2, 2), (1, 1, 1), (1, 0, 0), (0, 0, 0)]


def test_a_changed_demand_metric_over_budget_decides_on_observed_demand_until_refitted(kube: Any, api: Any) -> None:
    """A forecast of another series (metric, target or step changed) means nothing: over budget the policy
    decides without one (on observed demand, never scaling down) and its decision says why."""
    emu, op, _clock = _fitted(kube, api)
    custom = client.CustomObjectsApi(api)
    for name in NAMES:
        custom.patch_namespaced_custom_object(G, V, NAMESPACE, P, name, {"spec": {"metric": {
            "promql": f'sum(rate(http_requests_total{{service="{name}-api"}}[1m]))'}}}, _content_type=MERGE)
    report = op.loop.step()
    assert report is not None and len(report.outcomes) == 3 and (report.fits, report.deferred_fits) == (1, 2)
    waiting = [n for n in NAMES if _forecast_ready(emu, n)["status"] == "False"]
    assert len(waiting) == 2, [_forecast_ready(emu, n) for n in NAMES]
    for name in waiting:
        assert "fit budget" in _forecast_ready(emu, name)["message"]
        message = _last_decision(emu, name)
        assert "no forecast" in message and "demand metric" in message, message
