"""Operator scenarios: the official client over HTTP against the strict emulator, on a fake clock.

Demand is replayed from a synthetic casino trace through TraceSource (the
loop's input; no Prometheus needed for these). Forecasts come from the real
``calendar`` model and decisions from the real ``decide``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.operator.clock import FakeClock
from controller.operator.resources import CONDITION_TYPES, ScalingPolicyStatus
from tests.controller.operator.harness import (
    EVENT_START,
    TraceDemand,
    make_operator,
    policy_spec,
    tournament_specs,
)
from tests.kube.emulator import StrictKubernetesEmulator
from tests.kube.fixtures import NAMESPACE, create, deployment, scaling_policy, traffic_event

SYNC = timedelta(seconds=15)
POLICIES = ("pitboss.dev/v1alpha1", "scalingpolicies")


def _setup(api: Any, mode: str = "Active", replicas: int = 4, **spec: Any) -> None:
    create(api, deployment("slots-api", replicas))
    create(api, scaling_policy("slots", policy_spec(mode=mode, **spec)))
    for name, event in tournament_specs():
        create(api, traffic_event(name, event, labels={"service": "slots"}))


def _replicas(emu: StrictKubernetesEmulator, name: str = "slots-api") -> int:
    obj = emu.get("apps/v1", "deployments", NAMESPACE, name)
    assert obj is not None
    return int(obj["spec"]["replicas"])


def _status(emu: StrictKubernetesEmulator, name: str = "slots") -> dict[str, Any]:
    obj = emu.get(*POLICIES, NAMESPACE, name)
    assert obj is not None
    return dict(obj.get("status") or {})


def _conditions(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["type"]: c for c in status.get("conditions", [])}


def _events(emu: StrictKubernetesEmulator) -> list[dict[str, Any]]:
    return emu.list("v1", "events", NAMESPACE)


def test_traffic_event_prescales_one_lead_time_before_it(kube: Any, api: Any) -> None:
    emu, url = kube
    _setup(api)
    clock = FakeClock(EVENT_START - timedelta(minutes=12))
    op = make_operator(url, clock, TraceDemand())
    seen: list[tuple[Any, int]] = []
    while clock.now() <= EVENT_START - timedelta(minutes=9):
        op.loop.step()
        seen.append((clock.now(), _replicas(emu)))
        clock.advance(SYNC)
    lead, first_cycle_seeing_it = timedelta(minutes=10), EVENT_START - timedelta(minutes=10) - SYNC
    before = [r for at, r in seen if at < first_cycle_seeing_it]
    after = [r for at, r in seen if at >= first_cycle_seeing_it]
    assert set(before) == {4}, seen
    # The 20:00 tournament needs ~1100 req/s at 100 req/s per replica.
    assert all(r >= 11 for r in after), seen
    assert first_cycle_seeing_it + SYNC + lead > EVENT_START - SYNC  # pre-scaled one lead time ahead

    status = _status(emu)
    ScalingPolicyStatus.model_validate(status)  # the status the loop writes fits the CRD's model
    assert status["observedGeneration"] == 1
    assert status["currentReplicas"] == after[-1] and status["desiredReplicas"] == after[-1]
    conds = _conditions(status)
    assert set(conds) == set(CONDITION_TYPES)
    assert all(c["observedGeneration"] == 1 for c in conds.values())
    assert conds["Ready"]["status"] == "True" and conds["InvalidSpec"]["status"] == "False"
    assert conds["MetricsAvailable"]["status"] == "True" and conds["ForecastReady"]["status"] == "True"
    assert status["nextPeak"]["replicas"] >= 11 and status["nextPeak"]["time"].startswith("2026-11-27T20:")

    scaled = [e for e in _events(emu) if e["reason"] == "ScaleUpForecast"]
    assert len(scaled) == 1
    expected = f"pre-scaled slots-api 4 -> {after[0]} for tournament friday-frenzy at 20:00, lead 10m"
    assert scaled[0]["message"] == expected
    assert scaled[0]["involvedObject"]["kind"] == "ScalingPolicy" and scaled[0]["type"] == "Normal"
    # Exactly one /scale patch, and it carried the resourceVersion it had read.
    patches = emu.requests("PATCH", r"/deployments/slots-api/scale$")
    assert len(patches) == 1 and patches[0].body["metadata"]["resourceVersion"]


def test_event_outside_the_selector_is_ignored(kube: Any, api: Any) -> None:
    emu, url = kube
    create(api, deployment("slots-api", 4))
    create(api, scaling_policy("slots", policy_spec(eventSelector={"matchLabels": {"service": "poker"}},
                                                     forecast={"model": "seasonal-naive", "step": "1m",
                                                               "history": "3d", "horizon": "1h"})))
    name, spec = tournament_specs()[-1]
    create(api, traffic_event(name, spec, labels={"service": "slots"}))
    clock = FakeClock(EVENT_START - timedelta(minutes=9))
    op = make_operator(url, clock, TraceDemand())
    op.loop.step()
    assert "0 event(s)" in _conditions(_status(emu))["ForecastReady"]["message"]


@pytest.mark.parametrize(
    ("mode", "reads_target", "ready_reason"),
    [("ForecastOnly", True, "ForecastOnly"), ("Paused", False, "Paused")],
)
def test_forecast_only_and_paused_touch_no_target(
    kube: Any, api: Any, mode: str, reads_target: bool, ready_reason: str
) -> None:
    emu, url = kube
    _setup(api, mode=mode)
    versions_before = len(emu.versions("apps/v1", "deployments", NAMESPACE, "slots-api"))
    clock = FakeClock(EVENT_START - timedelta(minutes=10))
    op = make_operator(url, clock, TraceDemand())
    for _ in range(4):  # across the moment Active mode would pre-scale
        op.loop.step()
        clock.advance(SYNC)
    assert _replicas(emu) == 4
    assert emu.requests("PATCH", "/scale") == [] and emu.requests("PUT", "/deployments") == []
    assert len(emu.versions("apps/v1", "deployments", NAMESPACE, "slots-api")) == versions_before
    assert bool(emu.requests("GET", "/deployments/slots-api/scale")) is reads_target
    status = _status(emu)
    assert status["mode"] == mode
    ready = _conditions(status)["Ready"]
    assert ready["reason"] == ready_reason
    if mode == "ForecastOnly":
        assert "would scale 4 -> " in status["lastDecision"]["message"]
        assert status["nextPeak"]["replicas"] >= 11
        assert any(e["reason"] == "ForecastOnly" for e in _events(emu))
    else:
        assert ready["status"] == "False" and "nextPeak" not in status


def test_metrics_outage_holds_replicas(kube: Any, api: Any) -> None:
    emu, url = kube
    _setup(api, replicas=12)
    demand = TraceDemand()
    clock = FakeClock(EVENT_START + timedelta(minutes=61))  # the tournament is over: demand is back to ~300/s
    op = make_operator(url, clock, demand)
    demand.default.down = True
    for _ in range(30):  # well past the 5 min stabilization window
        op.loop.step()
        clock.advance(SYNC)
    assert _replicas(emu) == 12
    assert emu.requests("PATCH", "/scale") == []
    conds = _conditions(_status(emu))
    assert conds["MetricsAvailable"]["status"] == "False"
    assert "connection refused" in conds["MetricsAvailable"]["message"]
    warnings = [e for e in _events(emu) if e["reason"] == "MetricsUnavailable"]
    assert len(warnings) == 1 and warnings[0]["type"] == "Warning"  # on the transition, not every cycle
    # Metrics back: the loop scales down again (after stabilization, in bounded steps).
    demand.default.down = False
    for _ in range(30):
        op.loop.step()
        clock.advance(SYNC)
    assert _replicas(emu) < 12
    assert _conditions(_status(emu))["MetricsAvailable"]["status"] == "True"


def test_bad_policies_get_conditions_and_the_others_go_on(kube: Any, api: Any) -> None:
    emu, url = kube
    _setup(api)
    create(api, deployment("poker-api", 2))
    create(api, scaling_policy("missing", policy_spec(targetRef={"kind": "Deployment", "name": "no-such-api"})))
    create(api, scaling_policy("forbidden", policy_spec(targetRef={"kind": "Deployment", "name": "poker-api"})))
    # A cross-field rule the CRD schema cannot express: the loop reports it, naming the field.
    create(api, scaling_policy("invalid", policy_spec(forecast={"step": "1h", "history": "1h"})))
    emu.deny("GET", r"/deployments/poker-api/scale$")
    clock = FakeClock(EVENT_START - timedelta(minutes=9))
    op = make_operator(url, clock, TraceDemand())
    report = op.loop.step()
    assert report is not None
    by_name = {o.name: o for o in report.outcomes}
    assert by_name["slots"].scaled and _replicas(emu) >= 11  # the good policy still pre-scaled

    missing = _conditions(_status(emu, "missing"))
    assert missing["AbleToScale"]["status"] == "False" and missing["AbleToScale"]["reason"] == "TargetNotFound"
    assert "no-such-api" in missing["AbleToScale"]["message"]
    forbidden = _conditions(_status(emu, "forbidden"))
    assert forbidden["AbleToScale"]["reason"] == "Forbidden" and "403" in forbidden["AbleToScale"]["message"]
    invalid = _conditions(_status(emu, "invalid"))
    assert invalid["InvalidSpec"]["status"] == "True"
    assert invalid["InvalidSpec"]["message"].startswith("spec.forecast.history:")
    assert invalid["Ready"]["status"] == "False"
    warnings = {e["involvedObject"]["name"]: e["reason"] for e in _events(emu) if e["type"] == "Warning"}
    assert warnings == {"missing": "TargetNotFound", "forbidden": "Forbidden", "invalid": "InvalidSpec"}
    # A second cycle does not repeat the warnings.
    clock.advance(SYNC)
    op.loop.step()
    assert len([e for e in _events(emu) if e["type"] == "Warning"]) == 3


def test_conflict_on_scale_is_reread_and_retried(kube: Any, api: Any) -> None:
    emu, url = kube
    _setup(api)
    emu.fail("PATCH", r"/deployments/slots-api/scale$", 409, times=1)
    clock = FakeClock(EVENT_START - timedelta(minutes=9))
    op = make_operator(url, clock, TraceDemand())
    op.loop.step()
    assert _replicas(emu) >= 11
    assert [r.status for r in emu.requests("PATCH", "/scale")] == [409, 200]
    assert len(emu.requests("GET", "/deployments/slots-api/scale$")) == 2  # read, re-read after the 409


def test_spec_change_bumps_generation_and_observed_generation_follows(kube: Any, api: Any) -> None:
    emu, url = kube
    _setup(api)
    clock = FakeClock(EVENT_START - timedelta(hours=1))
    op = make_operator(url, clock, TraceDemand())
    op.loop.step()
    assert _status(emu)["observedGeneration"] == 1
    from kubernetes import client

    client.CustomObjectsApi(op.api_client).patch_namespaced_custom_object(
        "pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies", "slots", {"spec": {"maxReplicas": 6}},
        _content_type="application/merge-patch+json",
    )
    clock.advance(SYNC)
    op.loop.step()
    status = _status(emu)
    assert status["observedGeneration"] == 2
    assert all(c["observedGeneration"] == 2 for c in status["conditions"])
