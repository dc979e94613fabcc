"""Incidents from the reconcile loop: the official client over HTTP against the strict emulator, fake clock.

The operator is wired as ``pitboss operator run`` wires it (``build_incidents``): the real SQLite
incident log, Kubernetes Events written through the official client, delivery on the background
thread. Demand is replayed from the synthetic casino trace (``Outage`` takes it down), forecasts come
from the real ``calendar`` model and decisions from the real ``decide``. Delivery is asynchronous, so
what reaches the emulator is polled with a deadline. The ``world`` fixture holds what every test
sets up (emulator, demand, fake clock, log path) and closes the operators it built; ``outage`` is
``world`` with the demand source down from the start.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

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
POLICY = ("pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies")  # group, version, namespace, plural


@dataclass
class World:
    """One test's emulator, demand, fake clock and log path, and the operators built on them."""

    emu: StrictKubernetesEmulator
    url: str
    api: Any
    db: Path
    demand: TraceDemand = field(default_factory=TraceDemand)
    clock: FakeClock = field(default_factory=lambda: FakeClock(EVENT_START - timedelta(hours=2)))
    ops: list[Operator] = field(default_factory=list)

    def policy(self, replicas: int = 4, name: str = "slots", target: str = "slots-api", **spec: Any) -> None:
        """A Deployment and a ScalingPolicy on it."""
        create(self.api, deployment(target, replicas))
        create(self.api, scaling_policy(name, policy_spec(targetRef={"kind": "Deployment", "name": target}, **spec)))

    def tournament(self) -> None:
        """The casino's tournament TrafficEvents (the 20:00 one needs ~11 replicas)."""
        for name, event in tournament_specs():
            create(self.api, traffic_event(name, event, labels={"service": "slots"}))

    def operator(self, db: Path | None = None, **kwargs: Any) -> Operator:
        """An operator wired as ``pitboss operator run`` wires it (``make_incident_operator``), closed after."""
        op = make_incident_operator(self.url, self.clock, self.demand, db or self.db, **kwargs)
        self.ops.append(op)
        return op

    def close(self, op: Operator) -> None:
        """Close ``op`` now (a restart), not again after the test."""
        self.ops.remove(op)
        op.close()


@pytest.fixture
def world(kube: Any, api: Any, tmp_path: Path) -> Iterator[World]:
    emu, url = kube
    w = World(emu, url, api, tmp_path / "incidents.db")
    try:
        yield w
    finally:
        for op in reversed(w.ops):
            op.close()


@pytest.fixture
def outage(world: World) -> World:
    world.demand.default.down = True
    return world


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


def _custom(op: Operator) -> Any:
    from kubernetes import client

    return client.CustomObjectsApi(op.api_client)


def _run(op: Operator, clock: FakeClock, cycles: int) -> None:
    for _ in range(cycles):
        report = op.loop.step()
        assert report is not None and not [o for o in report.outcomes if o.error and o.reason == "InternalError"]
        clock.advance(SYNC)


def test_metrics_outage_fires_and_resolves_metrics_unavailable(world: World) -> None:
    emu, clock, db = world.emu, world.clock, world.db
    world.policy(replicas=4)
    world.tournament()
    clock.set(EVENT_START - timedelta(minutes=9))
    op = world.operator()
    _run(op, clock, 2)  # pre-scaled for the 20:00 tournament
    prescaled = _replicas(emu)
    assert prescaled >= 11 and _incidents(db, "MetricsUnavailable") == []
    patches = len(emu.requests("PATCH", "/scale"))
    world.demand.default.down = True  # Prometheus stops mid-run
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

    world.demand.default.down = False  # metrics return
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


def test_forecast_above_max_replicas_raises_capacity_ceiling(world: World) -> None:
    emu, clock, db = world.emu, world.clock, world.db
    world.policy(replicas=4, maxReplicas=6)
    world.tournament()
    clock.set(EVENT_START - timedelta(minutes=9))  # the 20:00 tournament needs ~11 replicas
    op = world.operator()
    _run(op, clock, 2)
    assert _replicas(emu) == 6
    assert _condition(emu, "CapacityLimited")["status"] == "True"
    (incident,) = _incidents(db, "CapacityCeiling")
    assert incident.firing and incident.severity == "ticket"
    assert "above maxReplicas 6" in incident.summary
    event = wait_until(lambda: _k8s_events(emu, "CapacityCeiling"), timeout=10, what="the CapacityCeiling Event")
    assert event[0]["type"] == "Warning" and "[ticket]" in event[0]["message"]

    _custom(op).patch_namespaced_custom_object(*POLICY, "slots", {"spec": {"maxReplicas": 40}},
                                               _content_type="application/merge-patch+json")
    _run(op, clock, 1)
    (done,) = _incidents(db, "CapacityCeiling")
    assert done.state == "resolved"
    assert _replicas(emu) >= 11


def test_failing_scale_calls_raise_scaling_failing(world: World) -> None:
    emu, clock, db = world.emu, world.clock, world.db
    world.policy(replicas=4)
    world.tournament()
    emu.fail("PATCH", r"/deployments/slots-api/scale$", 503, times=3)
    clock.set(EVENT_START - timedelta(minutes=9))
    op = world.operator()
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


def test_paused_and_deleted_policies_resolve_their_incidents(outage: World) -> None:
    outage.policy(name="paused", target="a-api")
    outage.policy(name="deleted", target="b-api")
    op = outage.operator()
    _run(op, outage.clock, 1)
    assert all(_incidents(outage.db, "MetricsUnavailable", p)[0].firing for p in ("paused", "deleted"))
    custom = _custom(op)
    custom.patch_namespaced_custom_object(*POLICY, "paused", {"spec": {"mode": "Paused"}},
                                          _content_type="application/merge-patch+json")
    custom.delete_namespaced_custom_object(*POLICY, "deleted")
    _run(op, outage.clock, 1)
    assert [i.state for p in ("paused", "deleted") for i in _incidents(outage.db, "MetricsUnavailable", p)] == \
        ["resolved", "resolved"]


def test_a_policy_of_another_shard_is_handed_off_not_resolved(outage: World) -> None:
    """The reconciler's ``owns`` (a sharded replica's filter) stops accepting a policy that still exists.

    Its incidents leave without a resolve (no ``...Resolved`` Event; the log says handed_off),
    including those a restarted replica reloads from its log for a policy it no longer owns,
    while a deleted policy's still resolve.
    """
    emu, clock, db = outage.emu, outage.clock, outage.db
    for name in ("moved", "reloaded", "deleted"):
        outage.policy(name=name, target=f"{name}-api")
    op = outage.operator()
    _run(op, clock, 1)
    assert all(_incidents(db, "MetricsUnavailable", p)[0].firing for p in ("moved", "reloaded", "deleted"))
    outage.close(op)
    op = outage.operator()  # restarted: "reloaded" comes back from its log only
    op.reconciler.owns = lambda p: p.name != "reloaded"
    _run(op, clock, 1)
    assert [i.state for i in _incidents(db, "MetricsUnavailable", "reloaded")] == ["handed_off"]
    _custom(op).delete_namespaced_custom_object(*POLICY, "deleted")
    op.reconciler.owns = lambda p: p.name not in ("moved", "reloaded")  # "moved"'s shard moves too
    _run(op, clock, 1)
    names = ("moved", "reloaded", "deleted")
    states = {p: [i.state for i in _incidents(db, "MetricsUnavailable", p)] for p in names}
    assert states == {"moved": ["handed_off"], "reloaded": ["handed_off"], "deleted": ["resolved"]}
    assert op.incidents is not None and op.incidents.engine.active == {}
    wait_until(lambda: _k8s_events(emu, "MetricsUnavailableResolved", "deleted"), timeout=10,
               what="the deleted policy's Resolved Event")
    assert [p for p in ("moved", "reloaded") if _k8s_events(emu, "MetricsUnavailableResolved", p)] == []


def test_a_policy_new_here_adopts_what_its_former_owner_announced(outage: World) -> None:
    """The former owner's incident (as Alertmanager holds it: ``announced``) is carried on, not re-announced.

    (``announced`` is a list here; the real Alertmanager read is in test_shards_incidents.py.)
    """
    emu, clock, db = outage.emu, outage.clock, outage.db
    outage.policy()
    op = outage.operator(db=db.with_name("former.db"), identity="op-old")
    _run(op, clock, 1)  # the former owner fires and announces
    wait_until(lambda: _k8s_events(emu, "MetricsUnavailable"), timeout=10, what="the former owner's Warning")
    assert op.incidents is not None
    (announced,) = op.incidents.engine.active.values()
    outage.close(op)

    new = outage.operator(identity="op-new")
    assert new.incidents is not None
    new.incidents.announced = lambda: [announced]
    _run(new, clock, 2)
    (carried,) = _incidents(db, "MetricsUnavailable")
    assert carried.firing and carried.id == announced.id and carried.starts_at == announced.starts_at
    outage.demand.default.down = False  # metrics return: the new owner resolves it, and says so
    _run(new, clock, 1)
    wait_until(lambda: _k8s_events(emu, "MetricsUnavailableResolved"), timeout=10, what="the Resolved Event")
    assert [e["reportingInstance"] for e in _k8s_events(emu, "MetricsUnavailable")] == ["op-old"]  # one Warning
    assert [e["reportingInstance"] for e in _k8s_events(emu, "MetricsUnavailableResolved")] == ["op-new"]
    assert new.incidents.adopted == 1


def test_only_the_leader_evaluates_and_sends(outage: World, tmp_path: Path) -> None:
    outage.policy()
    leader = outage.operator(db=tmp_path / "a.db", identity="op-a", leader_election=True)
    follower = outage.operator(db=tmp_path / "b.db", identity="op-b", leader_election=True)
    assert leader.loop.step() is not None
    assert follower.loop.step() is None
    assert len(_incidents(tmp_path / "a.db", "MetricsUnavailable")) == 1
    assert _incidents(tmp_path / "b.db", "MetricsUnavailable") == []
    wait_until(lambda: _k8s_events(outage.emu, "MetricsUnavailable"), timeout=10, what="the leader's Event")
    assert {e["reportingInstance"] for e in outage.emu.list("v1", "events", NAMESPACE)} == {"op-a"}


def test_a_sink_that_hangs_does_not_hold_up_the_cycle(world: World) -> None:
    """A sink stuck in ``send`` (a fake: a threading.Event it waits on) while cycles go on."""
    import threading

    from controller.incidents.fakes import FakeSink
    from controller.incidents.queue import DeliveryQueue

    class Stuck(FakeSink):
        def __init__(self) -> None:
            super().__init__("stuck", resend=True)
            self.release = threading.Event()
            self.entered = threading.Event()

        def send(self, incidents: Any, now: Any) -> None:
            self.entered.set()
            self.release.wait(30)
            super().send(incidents, now)

    world.policy(replicas=12)
    world.clock.set(EVENT_START + timedelta(minutes=61))
    op = world.operator()
    assert op.incidents is not None
    stuck = Stuck()
    op.incidents.engine.queues.append(DeliveryQueue(stuck))
    try:
        world.demand.default.down = True
        _run(op, world.clock, 1)
        assert stuck.entered.wait(10)  # the delivery thread is now stuck inside the sink
        _run(op, world.clock, 3)  # ... and the loop keeps reconciling
        assert op.loop.cycles == 4 and _replicas(world.emu) == 12
        assert _incidents(world.db, "MetricsUnavailable")[0].firing  # the local log has it regardless
        stuck.release.set()
        wait_until(lambda: stuck.received(), timeout=10, what="delivery once the sink is unstuck")
        assert stuck.received()[0].alertname == "MetricsUnavailable"
    finally:
        stuck.release.set()


def test_incidents_of_a_policy_deleted_while_the_operator_was_down_resolve(world: World) -> None:
    from controller.incidents.engine import IncidentEngine
    from controller.incidents.model import Severity, Signal

    log = IncidentLog(world.db)  # a previous run left these firing
    gone = {"namespace": NAMESPACE, "policy": "gone"}
    elsewhere = {"namespace": "other-team", "policy": "theirs"}
    for scope in (gone, elsewhere):
        IncidentEngine(log=log).process(world.clock.now(),
                                        [Signal("ScalingFailing", Severity.PAGE, scope, "s", "d", "r")], scope)
    log.close()
    world.policy()
    op = world.operator(namespace=NAMESPACE)
    _run(op, world.clock, 1)
    assert _incidents(world.db, "ScalingFailing", "gone")[0].state == "resolved"
    assert _incidents(world.db, "ScalingFailing", "theirs")[0].firing  # not in the namespace this operator watches


def test_incident_events_need_nothing_beyond_the_manifests_rbac(outage: World) -> None:
    from tests.controller.operator.test_rbac import TOKEN, _roles

    outage.policy()
    outage.emu.enforce_rbac(TOKEN, _roles())
    op = outage.operator(token=TOKEN, leader_election=True)
    _run(op, outage.clock, 1)
    wait_until(lambda: _k8s_events(outage.emu, "MetricsUnavailable"), timeout=10, what="the incident's Event")
    assert [r for r in outage.emu.log if r.status == 403] == []


def test_a_cycle_that_cannot_read_the_target_keeps_open_incidents(outage: World) -> None:
    emu, clock, db = outage.emu, outage.clock, outage.db
    outage.policy()
    op = outage.operator()
    _run(op, clock, 1)
    (incident,) = _incidents(db, "MetricsUnavailable")
    emu.fail("GET", r"/deployments/slots-api/scale$", 503, times=2)
    _run(op, clock, 2)  # no decision in these cycles: nothing resolves, nothing new fires
    assert _condition(emu, "Ready")["reason"] == "APIUnavailable"
    assert _incidents(db, "MetricsUnavailable")[0].firing
    assert _incidents(db, "ScalingFailing") == []  # two failed reads: below the threshold
    _run(op, clock, 1)
    assert _incidents(db, "MetricsUnavailable")[0].starts_at == incident.starts_at  # the same incident


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
