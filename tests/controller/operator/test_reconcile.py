"""The Reconciler against in-memory fakes (no HTTP): the fakes beside each adapter, held to the same paths.

Store, target and recorder are the in-memory fakes; demand is
``controller.sources.fakes.FakeDemandSource`` (the loop's input); forecasts
and decisions are real.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.incidents.events import RecordingEventRecorder
from controller.operator.clock import FakeClock
from controller.operator.fakes import InMemoryPolicyStore
from controller.operator.kube import PolicyObject
from controller.operator.reconcile import Reconciler
from controller.operator.resources import ScalingPolicySpec
from controller.sources.base import DemandSource
from controller.sources.fakes import FakeDemandSource
from controller.targets.base import ScaleState, TargetKey
from controller.targets.fake import InMemoryScaleTarget
from controller.telemetry.metrics import OperatorMetrics, serve
from tests.controller.operator.harness import EVENT_START, casino_trace, policy_spec, tournament_specs

NS = "casino"
SLOTS = TargetKey(NS, "Deployment", "slots-api")


class BumpOnce(InMemoryScaleTarget):
    """Someone else writes the workload between our read and our write, once."""

    bumped = False

    def set_replicas(self, key: TargetKey, replicas: int, resource_version: str | None = None) -> ScaleState:
        if not self.bumped:
            self.bumped = True
            self.bump(key)
        return super().set_replicas(key, replicas, resource_version)


def _world(target: InMemoryScaleTarget | None = None, **spec: Any) -> tuple[Reconciler, InMemoryPolicyStore,
                                                                              InMemoryScaleTarget,
                                                                              RecordingEventRecorder, FakeClock]:
    store = InMemoryPolicyStore()
    store.add_policy(NS, "slots", policy_spec(**spec))
    for name, event in tournament_specs():
        store.add_event(NS, name, event, {"service": "slots"})
    target = target or InMemoryScaleTarget()
    target.add(SLOTS, 4)
    recorder = RecordingEventRecorder()
    clock = FakeClock(EVENT_START - timedelta(minutes=9))
    source = FakeDemandSource(series=casino_trace())

    def demand(policy: PolicyObject, spec: ScalingPolicySpec) -> DemandSource:
        if policy.name == "explodes":
            raise RuntimeError("boom")
        return source

    reconciler = Reconciler(store=store, targets=target, recorder=recorder, demand=demand, clock=clock)
    return reconciler, store, target, recorder, clock


def test_active_prescale_with_fakes() -> None:
    reconciler, store, target, recorder, _ = _world()
    report = reconciler.reconcile_all()
    assert report.outcomes[0].scaled and target.get_scale(SLOTS).replicas >= 11
    assert recorder.events[0].message.startswith("pre-scaled slots-api 4 -> ")
    assert store.status_writes and store.status_writes[-1][2]["currentReplicas"] == target.get_scale(SLOTS).replicas
    assert report.seconds >= report.api_seconds >= 0 and report.pitboss_seconds >= 0


def test_conflict_rereads_and_retries() -> None:
    reconciler, _, target, _, _ = _world(BumpOnce())
    reconciler.reconcile_all()
    assert target.writes and target.get_scale(SLOTS).replicas >= 11


def test_one_exploding_policy_does_not_stop_the_others() -> None:
    reconciler, store, _, _, _ = _world()
    store.add_policy(NS, "explodes", policy_spec())
    report = reconciler.reconcile_all()
    outcomes = {o.name: o for o in report.outcomes}
    assert outcomes["explodes"].reason == "InternalError" and "boom" in (outcomes["explodes"].error or "")
    assert outcomes["slots"].scaled


def test_steady_state_does_not_rewrite_status() -> None:
    reconciler, store, _, _, clock = _world()
    clock.set(EVENT_START - timedelta(hours=3))
    reconciler.reconcile_all()
    writes = len(store.status_writes)
    clock.advance(timedelta(seconds=15))  # same forecast step, same decision
    reconciler.reconcile_all()
    assert len(store.status_writes) == writes


@pytest.mark.parametrize("mode", ["ForecastOnly", "Paused"])
def test_modes_leave_the_fake_target_alone(mode: str) -> None:
    reconciler, _, target, _, _ = _world(mode=mode)
    reconciler.reconcile_all()
    assert target.writes == [] and target.get_scale(SLOTS).replicas == 4


def test_metrics_are_exposed_over_http() -> None:
    import httpx

    metrics = OperatorMetrics()
    reconciler, _, _, _, _ = _world()
    reconciler.metrics = metrics
    reconciler.reconcile_all()
    server = serve(metrics, 0, host="127.0.0.1")
    try:
        port = server.server_address[1]
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    finally:
        server.shutdown()
    for name in ("pitboss_operator_reconcile_duration_seconds_bucket", 'pitboss_operator_decisions_total{',
                 'pitboss_operator_desired_replicas{namespace="casino",policy="slots"}',
                 'pitboss_operator_current_replicas{namespace="casino",policy="slots"}',
                 "pitboss_operator_forecast_error_ratio{", "pitboss_operator_scale_writes_total"):
        assert name in text, name


def test_incident_sink_writes_events_through_the_operator_recorder(kube: Any) -> None:
    """controller.incidents' KubernetesEventSink + this operator's recorder -> core/v1 Events on the emulator."""
    from datetime import UTC, datetime

    from controller.incidents.events import KubernetesEventSink
    from controller.incidents.model import Incident, Severity
    from controller.operator.app import incident_event_recorder
    from tests.kube.fixtures import api_client_for

    emu, url = kube
    at = datetime(2026, 11, 27, 19, 50, tzinfo=UTC)
    incident = Incident(id="abc123", alertname="CapacityNotReadyByEvent", severity=Severity.PAGE,
                        labels={"namespace": NS, "policy": "slots"}, summary="capacity will not be ready by 20:00",
                        description="needs 14, max 10", runbook_url="docs/runbooks.md#capacity", state="firing",
                        starts_at=at, updated_at=at)
    KubernetesEventSink(incident_event_recorder(api_client_for(url), "op-a")).send([incident], at)
    events = emu.list("v1", "events", NS)
    assert len(events) == 1
    assert events[0]["type"] == "Warning" and events[0]["reason"] == "CapacityNotReadyByEvent"
    assert events[0]["involvedObject"] == {"apiVersion": "pitboss.dev/v1alpha1", "kind": "ScalingPolicy",
                                           "name": "slots", "namespace": NS}
    assert "capacity will not be ready" in events[0]["message"] and events[0]["reportingInstance"] == "op-a"


def test_a_failing_incident_reporter_never_fails_the_policy(caplog: pytest.LogCaptureFixture) -> None:
    from controller.incidents.engine import IncidentEngine
    from controller.operator.incidents import IncidentReporter

    class Broken(IncidentReporter):
        def observe(self, *args: Any, **kwargs: Any) -> Any:
            raise RuntimeError("rules: broken on purpose")

    reconciler, _, target, _, _ = _world()
    reconciler.incidents = Broken(IncidentEngine())
    with caplog.at_level("ERROR", logger="controller.operator.reconcile"):
        report = reconciler.reconcile_all()
    assert report.outcomes[0].scaled and report.outcomes[0].error is None
    assert target.get_scale(SLOTS).replicas >= 11
    assert any("incidents: observe failed" in r.getMessage() for r in caplog.records)
