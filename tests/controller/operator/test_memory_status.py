"""The policy's memory lives in status: a restarted operator or a new owner continues where the last left off.

The official client over HTTP against the strict emulator (whose CRD schema validates the new status
fields), the real SQLite incident log and Kubernetes Events, the fake clock; demand from the synthetic
casino trace, forecasts from the real model. Each "restart" is a new ``Operator`` (a new Reconciler
and IncidentReporter, nothing in memory) on the same emulator. The last tests drive the Reconciler on
the in-memory fakes: a failed status write keeps the memory and loses no Event, a failed Event write
loses neither status nor metrics, and a new owner (a new Reconciler on the same store) does not repeat
the loop's own Warning Event (read from the status' conditions: a guard, it passed before the memory
moved into status too).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

from controller.cycle.memory import iso
from controller.errors import RetryableError
from controller.operator.app import Operator
from controller.operator.clock import FakeClock
from controller.operator.kube import PolicyObject
from controller.operator.reconcile import Reconciler
from controller.sources.fakes import FakeDemandSource
from tests.controller.operator.harness import (
    EVENT_START,
    TraceDemand,
    casino_trace,
    make_incident_operator,
    policy_spec,
    tournament_specs,
)
from tests.controller.operator.test_incidents import POLICIES, _incidents, _k8s_events, _run
from tests.controller.operator.test_reconcile import SLOTS, _world
from tests.harness import wait_until
from tests.kube.fixtures import NAMESPACE, create, deployment, scaling_policy, traffic_event


def _status(emu: Any) -> dict[str, Any]:
    return (emu.get(*POLICIES, NAMESPACE, "slots") or {}).get("status") or {}


def _failing_scale(kube: Any, api: Any, times: int) -> tuple[Any, str, FakeClock]:
    """The casino policy whose next ``times`` /scale patches the API server answers with 503."""
    emu, url = kube
    create(api, deployment("slots-api", 4))
    create(api, scaling_policy("slots", policy_spec(targetRef={"kind": "Deployment", "name": "slots-api"})))
    for name, event in tournament_specs():
        create(api, traffic_event(name, event, labels={"service": "slots"}))
    emu.fail("PATCH", r"/deployments/slots-api/scale$", 503, times=times)
    return emu, url, FakeClock(EVENT_START - timedelta(minutes=9))


@contextmanager
def _operator(url: str, clock: FakeClock, db: Path, identity: str = "op-a") -> Iterator[Operator]:
    """A new operator process (nothing in memory), closed on leaving."""
    op = make_incident_operator(url, clock, TraceDemand(), db, identity=identity)
    try:
        yield op
    finally:
        op.close()


def test_a_restarted_operator_continues_the_scale_failure_count(kube: Any, api: Any, tmp_path: Path) -> None:
    emu, url, clock = _failing_scale(kube, api, times=3)
    with _operator(url, clock, tmp_path / "a.db") as first:
        _run(first, clock, 2)
    assert _status(emu)["scaleFailures"]["count"] == 2 and "503" in _status(emu)["scaleFailures"]["lastError"]
    assert _incidents(tmp_path / "a.db", "ScalingFailing") == []
    with _operator(url, clock, tmp_path / "b.db", identity="op-b") as second:
        _run(second, clock, 1)  # the third failure in a row, whoever made the first two
        (incident,) = _incidents(tmp_path / "b.db", "ScalingFailing")
        assert incident.firing and "3 scaling calls failed" in incident.summary
        _run(second, clock, 1)  # the API answers again: the count is gone from status
        assert "scaleFailures" not in _status(emu)


def test_a_restarted_operator_does_not_repeat_the_warning_event(kube: Any, api: Any, tmp_path: Path) -> None:
    emu, url, clock = _failing_scale(kube, api, times=5)
    db = tmp_path / "incidents.db"
    with _operator(url, clock, db) as first:
        _run(first, clock, 3)
        (incident,) = _incidents(db, "ScalingFailing")
        wait_until(lambda: _k8s_events(emu, "ScalingFailing"), timeout=10, what="the Warning Event")
    with _operator(url, clock, db) as again:  # a new process, the same incident log
        _run(again, clock, 2)  # still failing: counts 4 and 5, read back from status
        (still,) = _incidents(db, "ScalingFailing")
        assert still.id == incident.id and still.firing  # neither resolved nor fired anew
        worker = again.incidents.worker if again.incidents is not None else None
        assert worker is not None
        wait_until(lambda: worker.pending() == 0 or None, timeout=10, what="empty queues")
        warnings = sorted((e for e in _k8s_events(emu, "ScalingFailing") if e["type"] == "Warning"),
                          key=lambda e: e["firstTimestamp"])
        # One incident whose Events carry the count on (the engine re-sends a changed summary); a reset
        # count would resolve it and fire "3 scaling calls failed" a second time, later.
        assert [int(e["message"].split("] ")[1].split(" ")[0]) for e in warnings] == [3, 4, 5]
        assert all(f"id={incident.id}" in e["message"] for e in warnings)
        assert _k8s_events(emu, "ScalingFailingResolved") == []


def test_a_failed_status_write_keeps_the_memory_and_the_event() -> None:
    reconciler, store, _, recorder, clock = _world()
    refused: list[str] = []
    write = store.write_status

    def flaky(policy: PolicyObject, status: dict[str, Any]) -> None:
        if not refused:
            refused.append(policy.name)
            raise RetryableError("status: 503")
        write(policy, status)

    store.write_status = flaky  # type: ignore[method-assign]
    reconciler.reconcile_all()  # scales up; its status write fails
    assert refused and not store.status_writes
    assert recorder.events and recorder.events[0].message.startswith("pre-scaled slots-api 4 -> ")  # not lost
    clock.advance(timedelta(seconds=15))
    reconciler.reconcile_all()  # the next status carries the memory the failed write held
    status = store.status_writes[-1][2]
    assert status["lastScaleTime"] == iso(EVENT_START - timedelta(minutes=9))


def test_a_failed_event_write_loses_neither_the_status_nor_the_metrics() -> None:
    reconciler, store, target, recorder, _ = _world()

    def refuse(**_: Any) -> None:
        raise RetryableError("events: 503")

    recorder.record = refuse  # type: ignore[method-assign]
    (outcome,) = reconciler.reconcile_all().outcomes
    assert outcome.scaled and store.status_writes  # the status after the failed Event
    assert store.status_writes[-1][2]["currentReplicas"] == target.get_scale(SLOTS).replicas
    exposition = reconciler.metrics.exposition().decode()
    assert f'pitboss_operator_desired_replicas{{namespace="casino",policy="slots"}} {outcome.desired}.0' \
        in exposition


def test_a_new_owner_does_not_repeat_the_loops_warning_event() -> None:
    _, store, target, recorder, clock = _world()
    source = FakeDemandSource(series=casino_trace())
    source.fail_retryable("prometheus: connection refused")

    def owner() -> Reconciler:  # a new Reconciler each cycle: nothing carried in memory, only in status
        return Reconciler(store=store, targets=target, recorder=recorder, demand=lambda p, s: source, clock=clock)

    for _ in range(3):
        (outcome,) = owner().reconcile_all().outcomes
        clock.advance(timedelta(seconds=15))
    warnings = [e for e in recorder.events if e.reason == "MetricsUnavailable"]
    assert len(warnings) == 1 and warnings[0].event_type == "Warning" and "connection refused" in warnings[0].message
    assert outcome.current == 4 and not outcome.scaled  # held without metrics


def test_a_new_operator_without_alertmanager_adopts_the_open_incident_from_status(
        kube: Any, api: Any, tmp_path: Path) -> None:
    """Without Alertmanager to read what was announced, the open incidents in status are: an operator with
    nothing in memory and a fresh incident log (a new pod, a new shard owner) carries the open incident on
    (one Warning Event, the first owner's, and its startsAt) and resolves it when it clears."""
    emu, url = kube
    create(api, deployment("slots-api", 4))
    create(api, scaling_policy("slots", policy_spec(targetRef={"kind": "Deployment", "name": "slots-api"})))
    for name, event in tournament_specs():
        create(api, traffic_event(name, event, labels={"service": "slots"}))
    clock = FakeClock(EVENT_START - timedelta(minutes=9))
    demand = TraceDemand()
    demand.default.down = True  # Prometheus is down: MetricsUnavailable fires
    first = make_incident_operator(url, clock, demand, tmp_path / "a.db")
    try:
        _run(first, clock, 2)
        (incident,) = _incidents(tmp_path / "a.db", "MetricsUnavailable")
        wait_until(lambda: _k8s_events(emu, "MetricsUnavailable"), timeout=10, what="the Warning Event")
    finally:
        first.close()
    (entry,) = _status(emu)["openIncidents"]
    assert entry["id"] == incident.id and entry["alertname"] == "MetricsUnavailable"
    second = make_incident_operator(url, clock, demand, tmp_path / "b.db", identity="op-b")
    try:
        _run(second, clock, 3)
        worker = second.incidents.worker if second.incidents is not None else None
        assert worker is not None
        wait_until(lambda: worker.pending() == 0 or None, timeout=10, what="empty queues")
        warnings = [e for e in _k8s_events(emu, "MetricsUnavailable") if e["type"] == "Warning"]
        assert [e["reportingInstance"] for e in warnings] == ["op-a"], warnings
        (carried,) = _incidents(tmp_path / "b.db", "MetricsUnavailable")
        assert carried.id == incident.id and carried.firing and carried.starts_at == incident.starts_at
        assert second.incidents is not None and second.incidents.adopted == 1
        demand.default.down = False  # metrics return: the new owner resolves what the first announced
        _run(second, clock, 1)
        resolved = wait_until(lambda: _k8s_events(emu, "MetricsUnavailableResolved"), timeout=10,
                              what="the resolve Event")
        assert len(resolved) == 1 and incident.id in resolved[0]["message"]
        assert "openIncidents" not in _status(emu)
    finally:
        second.close()
