"""Incidents from the reconcile loop: the official client over HTTP against the strict emulator, fake clock.

The operator is wired as ``pitboss operator run`` wires it (``build_incidents``): the real SQLite
incident log, Kubernetes Events written through the official client, delivery on the background
thread. Demand is replayed from the synthetic casino trace (``Outage`` takes it down), forecasts come
from the real ``calendar`` model and decisions from the real ``decide``. Delivery is asynchronous, so
what reaches the emulator is polled with a deadline.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from controller.incidents.model import Incident
from controller.incidents.store import IncidentLog
from controller.operator.app import Operator
from controller.operator.clock import FakeClock
from tests.controller.operator.harness import (
    EVENT_START,
    TraceDemand,
    make_incident_operator,
    policy_spec,
    tournament_specs,
)
from tests.harness import wait_until
from tests.kube.emulator import StrictKubernetesEmulator
from tests.kube.fixtures import NAMESPACE, create, deployment, scaling_policy, traffic_event

SYNC = timedelta(seconds=15)
POLICIES = ("pitboss.dev/v1alpha1", "scalingpolicies")


def _setup(api: Any, replicas: int = 4, name: str = "slots", target: str = "slots-api", **spec: Any) -> None:
    create(api, deployment(target, replicas))
    create(api, scaling_policy(name, policy_spec(targetRef={"kind": "Deployment", "name": target}, **spec)))


def _events_setup(api: Any) -> None:
    for name, event in tournament_specs():
        create(api, traffic_event(name, event, labels={"service": "slots"}))


def _replicas(emu: StrictKubernetesEmulator, name: str = "slots-api") -> int:
    obj = emu.get("apps/v1", "deployments", NAMESPACE, name)
    assert obj is not None
    return int(obj["spec"]["replicas"])


def _condition(emu: StrictKubernetesEmulator, ctype: str, name: str = "slots") -> dict[str, Any]:
    status = (emu.get(*POLICIES, NAMESPACE, name) or {}).get("status") or {}
    return {c["type"]: c for c in status.get("conditions", [])}[ctype]


def _k8s_events(emu: StrictKubernetesEmulator, reason: str, name: str = "slots") -> list[dict[str, Any]]:
    return [e for e in emu.list("v1", "events", NAMESPACE)
            if e["reason"] == reason and e["involvedObject"]["name"] == name]


def _incidents(db: Path, alertname: str, policy: str = "slots") -> list[Incident]:
    log = IncidentLog(db)
    try:
        return [i for i in log.incidents() if i.alertname == alertname and i.labels.get("policy") == policy]
    finally:
        log.close()


def _run(op: Operator, clock: FakeClock, cycles: int) -> None:
    for _ in range(cycles):
        report = op.loop.step()
        assert report is not None and not [o for o in report.outcomes if o.error and o.reason == "InternalError"]
        clock.advance(SYNC)


def test_metrics_outage_fires_and_resolves_metrics_unavailable(kube: Any, api: Any, tmp_path: Path) -> None:
    emu, url = kube
    _setup(api, replicas=4)
    _events_setup(api)
    demand = TraceDemand()
    db = tmp_path / "incidents.db"
    clock = FakeClock(EVENT_START - timedelta(minutes=9))
    op = make_incident_operator(url, clock, demand, db)
    try:
        _run(op, clock, 2)  # pre-scaled for the 20:00 tournament
        prescaled = _replicas(emu)
        assert prescaled >= 11 and _incidents(db, "MetricsUnavailable") == []
        patches = len(emu.requests("PATCH", "/scale"))
        demand.default.down = True  # Prometheus stops mid-run
        outage_start = clock.now()
        _run(op, clock, 1)
        clock.set(EVENT_START + timedelta(minutes=61))  # a long outage: the tournament is over, demand is low
        _run(op, clock, 24)  # 6 minutes: past the 5 min scale-down stabilization window
        assert _replicas(emu) == prescaled  # held: never scale down without metrics
        assert len(emu.requests("PATCH", "/scale")) == patches
        cond = _condition(emu, "MetricsAvailable")
        assert cond["status"] == "False" and "connection refused" in cond["message"]

        (incident,) = _incidents(db, "MetricsUnavailable")
        assert incident.firing and incident.starts_at == outage_start
        assert incident.severity == "page" and incident.labels == {"namespace": NAMESPACE, "policy": "slots"}
        assert "connection refused" in incident.description
        assert f"holds the current {prescaled} replicas" in incident.description
        assert incident.runbook_url.endswith("#metrics-unavailable")
        firing = wait_until(lambda: _k8s_events(emu, "MetricsUnavailable"), timeout=10, what="the Warning Event")
        assert len(firing) == 1  # one Event for the incident (the loop does not repeat its own), not one per cycle
        assert firing[0]["type"] == "Warning" and f"id={incident.id}" in firing[0]["message"]
        assert "connection refused" in firing[0]["message"]  # the Event says why
        assert firing[0]["involvedObject"]["kind"] == "ScalingPolicy"

        demand.default.down = False  # metrics return
        back = clock.now()
        _run(op, clock, 1)
        (resolved,) = _incidents(db, "MetricsUnavailable")
        assert resolved.state == "resolved" and resolved.ends_at == back and resolved.id == incident.id
        assert _condition(emu, "MetricsAvailable")["status"] == "True"
        normal = wait_until(lambda: _k8s_events(emu, "MetricsUnavailableResolved"), timeout=10,
                            what="the Normal resolve Event")
        assert normal[0]["type"] == "Normal" and incident.id in normal[0]["message"]
        worker = op.incidents.worker if op.incidents is not None else None
        assert worker is not None
        assert wait_until(lambda: worker.pending() == 0 or None, timeout=10, what="empty queues") is True
        wait_until(lambda: "pitboss_operator_incidents_firing 0.0" in op.metrics.exposition().decode(), timeout=10,
                   what="the firing gauge back to 0")
        assert 'pitboss_operator_incident_queue{sink="kubernetes-events"} 0.0' in op.metrics.exposition().decode()
    finally:
        op.close()


def test_forecast_above_max_replicas_raises_capacity_ceiling(kube: Any, api: Any, tmp_path: Path) -> None:
    emu, url = kube
    _setup(api, replicas=4, maxReplicas=6)
    _events_setup(api)
    db = tmp_path / "incidents.db"
    clock = FakeClock(EVENT_START - timedelta(minutes=9))  # the 20:00 tournament needs ~11 replicas
    op = make_incident_operator(url, clock, TraceDemand(), db)
    try:
        _run(op, clock, 2)
        assert _replicas(emu) == 6
        assert _condition(emu, "CapacityLimited")["status"] == "True"
        (incident,) = _incidents(db, "CapacityCeiling")
        assert incident.firing and incident.severity == "ticket"
        assert "above maxReplicas 6" in incident.summary
        event = wait_until(lambda: _k8s_events(emu, "CapacityCeiling"), timeout=10, what="the CapacityCeiling Event")
        assert event[0]["type"] == "Warning" and "[ticket]" in event[0]["message"]

        from kubernetes import client

        client.CustomObjectsApi(op.api_client).patch_namespaced_custom_object(
            "pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies", "slots", {"spec": {"maxReplicas": 40}},
            _content_type="application/merge-patch+json",
        )
        _run(op, clock, 1)
        (done,) = _incidents(db, "CapacityCeiling")
        assert done.state == "resolved"
        assert _replicas(emu) >= 11
    finally:
        op.close()


def test_failing_scale_calls_raise_scaling_failing(kube: Any, api: Any, tmp_path: Path) -> None:
    emu, url = kube
    _setup(api, replicas=4)
    _events_setup(api)
    emu.fail("PATCH", r"/deployments/slots-api/scale$", 503, times=3)
    db = tmp_path / "incidents.db"
    clock = FakeClock(EVENT_START - timedelta(minutes=9))
    op = make_incident_operator(url, clock, TraceDemand(), db)
    try:
        _run(op, clock, 2)
        assert _incidents(db, "ScalingFailing") == []  # two failures: below the threshold of three
        _run(op, clock, 1)
        (incident,) = _incidents(db, "ScalingFailing")
        assert incident.firing and "3 scaling calls failed" in incident.summary
        assert "503" in incident.description or "ServiceUnavailable" in incident.description
        assert _condition(emu, "AbleToScale")["reason"] == "ScaleFailed"
        _run(op, clock, 1)  # the API answers again: the patch lands and the incident resolves
        assert _replicas(emu) >= 11
        assert _incidents(db, "ScalingFailing")[0].state == "resolved"
    finally:
        op.close()


def test_paused_and_deleted_policies_resolve_their_incidents(kube: Any, api: Any, tmp_path: Path) -> None:
    _, url = kube
    _setup(api, name="paused", target="a-api")
    _setup(api, name="deleted", target="b-api")
    demand = TraceDemand()
    demand.default.down = True
    db = tmp_path / "incidents.db"
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = make_incident_operator(url, clock, demand, db)
    try:
        _run(op, clock, 1)
        assert all(_incidents(db, "MetricsUnavailable", p)[0].firing for p in ("paused", "deleted"))
        from kubernetes import client

        custom = client.CustomObjectsApi(op.api_client)
        custom.patch_namespaced_custom_object("pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies", "paused",
                                              {"spec": {"mode": "Paused"}},
                                              _content_type="application/merge-patch+json")
        custom.delete_namespaced_custom_object("pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies", "deleted")
        _run(op, clock, 1)
        assert [i.state for p in ("paused", "deleted") for i in _incidents(db, "MetricsUnavailable", p)] == \
            ["resolved", "resolved"]
    finally:
        op.close()


def test_a_policy_of_another_shard_is_handed_off_not_resolved(kube: Any, api: Any, tmp_path: Path) -> None:
    """The reconciler's ``owns`` (a sharded replica's filter) stops accepting a policy that still exists.

    Its incidents leave without a resolve (no ``...Resolved`` Event; the log says handed_off),
    including those a restarted replica reloads from its log for a policy it no longer owns,
    while a deleted policy's still resolve.
    """
    emu, url = kube
    for name in ("moved", "reloaded", "deleted"):
        _setup(api, name=name, target=f"{name}-api")
    demand = TraceDemand()
    demand.default.down = True
    db = tmp_path / "incidents.db"
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = make_incident_operator(url, clock, demand, db)
    try:
        _run(op, clock, 1)
        assert all(_incidents(db, "MetricsUnavailable", p)[0].firing for p in ("moved", "reloaded", "deleted"))
    finally:
        op.close()
    op = make_incident_operator(url, clock, demand, db)  # restarted: "reloaded" comes back from its log only
    try:
        op.reconciler.owns = lambda p: p.name != "reloaded"
        _run(op, clock, 1)
        assert [i.state for i in _incidents(db, "MetricsUnavailable", "reloaded")] == ["handed_off"]
        from kubernetes import client

        client.CustomObjectsApi(op.api_client).delete_namespaced_custom_object(
            "pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies", "deleted")
        op.reconciler.owns = lambda p: p.name not in ("moved", "reloaded")  # "moved"'s shard moves too
        _run(op, clock, 1)
        names = ("moved", "reloaded", "deleted")
        states = {p: [i.state for i in _incidents(db, "MetricsUnavailable", p)] for p in names}
        assert states == {"moved": ["handed_off"], "reloaded": ["handed_off"], "deleted": ["resolved"]}
        assert op.incidents is not None and op.incidents.engine.active == {}
        wait_until(lambda: _k8s_events(emu, "MetricsUnavailableResolved", "deleted"), timeout=10,
                   what="the deleted policy's Resolved Event")
        assert [p for p in ("moved", "reloaded") if _k8s_events(emu, "MetricsUnavailableResolved", p)] == []
    finally:
        op.close()


def test_only_the_leader_evaluates_and_sends(kube: Any, api: Any, tmp_path: Path) -> None:
    emu, url = kube
    _setup(api)
    demand = TraceDemand()
    demand.default.down = True
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    leader = make_incident_operator(url, clock, demand, tmp_path / "a.db", identity="op-a", leader_election=True)
    follower = make_incident_operator(url, clock, demand, tmp_path / "b.db", identity="op-b", leader_election=True)
    try:
        assert leader.loop.step() is not None
        assert follower.loop.step() is None
        assert len(_incidents(tmp_path / "a.db", "MetricsUnavailable")) == 1
        assert _incidents(tmp_path / "b.db", "MetricsUnavailable") == []
        wait_until(lambda: _k8s_events(emu, "MetricsUnavailable"), timeout=10, what="the leader's Event")
        assert {e["reportingInstance"] for e in emu.list("v1", "events", NAMESPACE)} == {"op-a"}
    finally:
        leader.close()
        follower.close()


def test_a_sink_that_hangs_does_not_hold_up_the_cycle(kube: Any, api: Any, tmp_path: Path) -> None:
    """A sink stuck in ``send`` (a fake: a threading.Event it waits on) while cycles go on."""
    import threading

    from controller.incidents.fakes import FakeSink

    class Stuck(FakeSink):
        def __init__(self) -> None:
            super().__init__("stuck", resend=True)
            self.release = threading.Event()
            self.entered = threading.Event()

        def send(self, incidents: Any, now: Any) -> None:
            self.entered.set()
            self.release.wait(30)
            super().send(incidents, now)

    emu, url = kube
    _setup(api, replicas=12)
    demand = TraceDemand()
    db = tmp_path / "incidents.db"
    clock = FakeClock(EVENT_START + timedelta(minutes=61))
    op = make_incident_operator(url, clock, demand, db)
    assert op.incidents is not None
    stuck = Stuck()
    from controller.incidents.queue import DeliveryQueue

    op.incidents.engine.queues.append(DeliveryQueue(stuck))
    try:
        demand.default.down = True
        _run(op, clock, 1)
        assert stuck.entered.wait(10)  # the delivery thread is now stuck inside the sink
        _run(op, clock, 3)  # ... and the loop keeps reconciling
        assert op.loop.cycles == 4 and _replicas(emu) == 12
        assert _incidents(db, "MetricsUnavailable")[0].firing  # the local log has it regardless
        stuck.release.set()
        wait_until(lambda: stuck.received(), timeout=10, what="delivery once the sink is unstuck")
        assert stuck.received()[0].alertname == "MetricsUnavailable"
    finally:
        stuck.release.set()
        op.close()


def test_incidents_of_a_policy_deleted_while_the_operator_was_down_resolve(kube: Any, api: Any,
                                                                          tmp_path: Path) -> None:
    from controller.incidents.engine import IncidentEngine
    from controller.incidents.model import Severity, Signal

    db = tmp_path / "incidents.db"
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    log = IncidentLog(db)  # a previous run left these firing
    gone = {"namespace": NAMESPACE, "policy": "gone"}
    elsewhere = {"namespace": "other-team", "policy": "theirs"}
    for scope in (gone, elsewhere):
        IncidentEngine(log=log).process(clock.now(), [Signal("ScalingFailing", Severity.PAGE, scope, "s", "d", "r")],
                                        scope)
    log.close()
    _setup(api)
    op = make_incident_operator(kube[1], clock, TraceDemand(), db, namespace=NAMESPACE)
    try:
        _run(op, clock, 1)
        assert _incidents(db, "ScalingFailing", "gone")[0].state == "resolved"
        assert _incidents(db, "ScalingFailing", "theirs")[0].firing  # not in the namespace this operator watches
    finally:
        op.close()


def test_incident_events_need_nothing_beyond_the_manifests_rbac(kube: Any, api: Any, tmp_path: Path) -> None:
    from tests.controller.operator.test_rbac import TOKEN, _roles

    emu, url = kube
    _setup(api)
    emu.enforce_rbac(TOKEN, _roles())
    demand = TraceDemand()
    demand.default.down = True
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = make_incident_operator(url, clock, demand, tmp_path / "incidents.db", token=TOKEN, leader_election=True)
    try:
        _run(op, clock, 1)
        wait_until(lambda: _k8s_events(emu, "MetricsUnavailable"), timeout=10, what="the incident's Event")
        assert [r for r in emu.log if r.status == 403] == []
    finally:
        op.close()


def test_a_cycle_that_cannot_read_the_target_keeps_open_incidents(kube: Any, api: Any, tmp_path: Path) -> None:
    emu, url = kube
    _setup(api)
    demand = TraceDemand()
    demand.default.down = True
    db = tmp_path / "incidents.db"
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = make_incident_operator(url, clock, demand, db)
    try:
        _run(op, clock, 1)
        (incident,) = _incidents(db, "MetricsUnavailable")
        emu.fail("GET", r"/deployments/slots-api/scale$", 503, times=2)
        _run(op, clock, 2)  # no decision in these cycles: nothing resolves, nothing new fires
        assert _condition(emu, "Ready")["reason"] == "APIUnavailable"
        assert _incidents(db, "MetricsUnavailable")[0].firing
        assert _incidents(db, "ScalingFailing") == []  # two failed reads: below the threshold
        _run(op, clock, 1)
        assert _incidents(db, "MetricsUnavailable")[0].starts_at == incident.starts_at  # the same incident
    finally:
        op.close()


def test_the_engine_evaluates_and_delivers_on_two_threads_without_loss(tmp_path: Path) -> None:
    """Engine-level: ``process(deliver=False)`` on one thread, ``flush`` on another (FakeSink: in-memory)."""
    import threading
    from datetime import UTC, datetime

    from controller.incidents.engine import IncidentEngine
    from controller.incidents.fakes import FakeSink
    from controller.incidents.model import Severity, Signal

    log = IncidentLog(tmp_path / "incidents.db")
    sink = FakeSink("am", resend=True)
    engine = IncidentEngine([sink], log=log, resend_interval=timedelta(seconds=1))
    t0 = datetime(2026, 11, 27, 20, 0, tzinfo=UTC)
    stop = threading.Event()

    def deliver() -> None:
        while not stop.is_set():
            engine.flush(t0 + timedelta(minutes=5), force=True)

    thread = threading.Thread(target=deliver)
    thread.start()
    try:
        for i in range(200):
            scope = {"namespace": "ns", "policy": f"p{i % 20}"}
            signals = [Signal("ScalingFailing", Severity.PAGE, scope, "s", "d", "r")] if (i // 20) % 2 == 0 else []
            engine.process(t0 + timedelta(seconds=i), signals, scope, deliver=False)
    finally:
        stop.set()
        thread.join(10)
    engine.flush(t0 + timedelta(minutes=5), force=True)
    latest = sink.latest()
    assert engine.queues[0].pending() == 0 and len(latest) == 20
    assert {i.id: i.state for i in latest.values()} == {i.id: i.state for i in log.incidents()}  # none lost
    log.close()
