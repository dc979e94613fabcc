"""Incidents from the reconcile loop to a real Alertmanager, with demand from a real Prometheus.

Debian's prometheus and prometheus-alertmanager binaries, started by tests/harness.py on loopback
ports of their own and stopped by PID. Kubernetes is the strict emulator driven by the official
client. The operator is wired as ``pitboss operator run`` wires it (``build_incidents``: SQLite
log, Kubernetes Events, Alertmanager API v2; delivery on the background thread).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.incidents.alertmanager import AlertmanagerClient
from controller.incidents.store import IncidentLog
from controller.operator.app import Operator, SourceFactory
from controller.operator.clock import FakeClock, SystemClock
from controller.sources.trace import TraceSource
from tests.controller.operator.harness import Outage, TraceDemand, casino_trace, make_incident_operator, policy_spec
from tests.harness import wait_until
from tests.kube.emulator import StrictKubernetesEmulator
from tests.kube.fixtures import NAMESPACE, create, deployment, scaling_policy

POLICIES = ("pitboss.dev/v1alpha1", "scalingpolicies")


def _metrics_available(emu: StrictKubernetesEmulator, name: str) -> str | None:
    status = (emu.get(*POLICIES, NAMESPACE, name) or {}).get("status") or {}
    return {c["type"]: c["status"] for c in status.get("conditions", [])}.get("MetricsAvailable")


def _replicas(emu: StrictKubernetesEmulator, name: str) -> int:
    obj = emu.get("apps/v1", "deployments", NAMESPACE, name)
    assert obj is not None
    return int(obj["spec"]["replicas"])


def _am_alerts(am: AlertmanagerClient, policy: str, alertname: str = "MetricsUnavailable") -> list[dict[str, Any]]:
    return am.alerts(filters=[f'policy="{policy}"', f'alertname="{alertname}"'])


def _step_until(op: Operator, check: Any, *, timeout: float, what: str, pause: float = 0.5) -> Any:
    """Run a cycle, then check; repeat (the pause only paces cycles against Prometheus' 1 s scrapes)."""
    def cycle() -> Any:
        op.loop.step()
        result = check()
        if not result:
            time.sleep(pause)
        return result
    return wait_until(cycle, timeout=timeout, interval=0, what=what)


@pytest.mark.prometheus
@pytest.mark.alertmanager
def test_prometheus_stopped_mid_run_holds_and_pages_through_alertmanager(
    kube: Any, api: Any, tmp_path: Path, exporter_factory: Any, prometheus_factory: Any, alertmanager: Any,
) -> None:
    emu, url = kube
    name = "casino-e2e-incidents"  # the Alertmanager is shared by the session: a label value of our own
    exporter = exporter_factory(rate=240.0)
    prometheus = prometheus_factory(targets=[exporter.target])
    create(api, deployment("casino-api", 1))
    create(api, scaling_policy(name, {
        "targetRef": {"kind": "Deployment", "name": "casino-api"},
        "metric": {"promql": "sum(rate(casino_http_requests_total[5s]))"},
        "capacityPerReplica": 100, "minReplicas": 1, "maxReplicas": 10, "leadTime": "10s",
        "forecast": {"model": "seasonal-naive", "step": "2s", "history": "1m", "horizon": "1m"},
    }))
    sources = SourceFactory(prometheus.url)
    db = tmp_path / "incidents.db"
    op = make_incident_operator(url, SystemClock(), sources, db, alertmanager_url=alertmanager.url,
                                sli=sources.sli, lag=sources.lag, namespace=NAMESPACE)
    am = AlertmanagerClient(alertmanager.url)
    try:
        _step_until(op, lambda: _metrics_available(emu, name) == "True" and _replicas(emu, "casino-api") == 3,
                    timeout=40, what="demand from Prometheus and 3 replicas (240 req/s / 100)")
        # Before Prometheus had two points the loop held and paged too (a fresh install): that resolves.
        wait_until(lambda: _am_alerts(am, name) == [], timeout=15, what="no MetricsUnavailable alert while healthy")

        prometheus.stop()  # Prometheus goes away mid-run
        _step_until(op, lambda: _metrics_available(emu, name) == "False", timeout=20, what="MetricsAvailable=False")
        for _ in range(2):
            op.loop.step()
        assert _replicas(emu, "casino-api") == 3  # held
        log = IncidentLog(db)
        (incident,) = [i for i in log.active() if i.alertname == "MetricsUnavailable"]
        log.close()
        (alert,) = wait_until(lambda: _am_alerts(am, name), timeout=15, what="the alert in Alertmanager")
        assert alert["labels"]["pitboss_id"] == incident.id and alert["labels"]["severity"] == "page"
        assert alert["labels"]["namespace"] == NAMESPACE and alert["status"]["state"] == "active"
        assert "demand source failed" in alert["annotations"]["description"]
        assert alert["annotations"]["runbook_url"].endswith("#metrics-unavailable")

        prometheus.start()  # back on the same port with the same TSDB
        _step_until(op, lambda: _metrics_available(emu, name) == "True", timeout=30, what="metrics back")
        wait_until(lambda: _am_alerts(am, name) == [], timeout=15, what="the alert resolved in Alertmanager")
        log = IncidentLog(db)
        assert log.get(incident.id).state == "resolved"  # type: ignore[union-attr]
        log.close()
    finally:
        am.close()
        op.close()


@pytest.mark.alertmanager
def test_alertmanager_down_during_the_incident_gets_it_when_back(
    kube: Any, api: Any, tmp_path: Path, alertmanager_factory: Any,
) -> None:
    _, url = kube
    server = alertmanager_factory()
    now = datetime.now(UTC).replace(second=0, microsecond=0)  # the trace grid is on whole minutes
    demand = TraceDemand()
    demand.default = Outage(TraceSource(casino_trace(end=now + timedelta(hours=3), spikes=())))
    create(api, deployment("slots-api", 4))
    create(api, scaling_policy("slots", policy_spec(forecast={"model": "seasonal-naive", "step": "1m",
                                                              "history": "3d", "horizon": "1h"})))
    # Alertmanager judges endsAt by its own clock: the fake clock starts 2 min behind the real one and
    # stays behind (6 cycles of 15 s), so a firing alert (endsAt = now + 4 min) is live and a resolve ends it.
    clock = FakeClock(now - timedelta(minutes=2))
    db = tmp_path / "incidents.db"
    op = make_incident_operator(url, clock, demand, db, alertmanager_url=server.url)
    am = AlertmanagerClient(server.url)
    sync = timedelta(seconds=15)

    def cycle(n: int = 1) -> None:
        for _ in range(n):
            assert op.loop.step() is not None
            clock.advance(sync)

    try:
        cycle()
        assert op.incidents is not None and not op.incidents.engine.active  # healthy to begin with
        server.stop()  # Alertmanager goes away; then the metrics do
        demand.default.down = True
        cycle(3)
        assert op.loop.cycles == 4  # the cycles ran regardless
        log = IncidentLog(db)
        (incident,) = [i for i in log.active() if i.alertname == "MetricsUnavailable"]
        queue = next(q for q in op.incidents.engine.queues if q.name == "alertmanager")
        wait_until(lambda: queue.stats.failures >= 1, timeout=10, what="a failed delivery attempt")
        assert queue.pending() == 1  # changed and undelivered: the next flush sends the state of that moment
        assert "alertmanager" in (queue.stats.last_error or "")

        server.start()  # back on the same port
        cycle()  # moves the fake clock past the backoff (2 s at most) and kicks the delivery thread
        (alert,) = wait_until(lambda: _am_alerts(am, "slots"), timeout=15, what="the queued alert delivered")
        assert alert["labels"]["pitboss_id"] == incident.id
        wait_until(lambda: queue.pending() == 0, timeout=10, what="nothing left undelivered")

        demand.default.down = False
        cycle()
        resolved = log.get(incident.id)
        assert resolved is not None and resolved.state == "resolved" and resolved.ends_at is not None
        wait_until(lambda: _am_alerts(am, "slots") == [], timeout=15, what="the resolve delivered to Alertmanager")
        log.close()
    finally:
        am.close()
        op.close()


@pytest.mark.alertmanager
def test_a_new_leader_carries_the_alert_and_alertmanager_never_sees_it_resolved(
    kube: Any, api: Any, tmp_path: Path, alertmanager_factory: Any,
) -> None:
    """Two leader-elected operators, a real Alertmanager, the real clock (Alertmanager expires by its own).

    b leads first while Alertmanager is unreachable: it fires and resolves the alert without
    delivering either. a takes over and fires the alert for real. a dies; b leads again and its
    first cycle cannot evaluate the policy (its /scale read fails). Nothing b's earlier term left
    undelivered may reach Alertmanager (the stale resolve would end a live alert), and a's last
    re-send (endsAt four resend intervals ahead) must cover the gap until b re-raises it.
    """
    import contextlib
    import threading

    from tests.harness import free_port

    emu, url = kube
    port = free_port()
    am_url = f"http://127.0.0.1:{port}"
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    demand = TraceDemand()
    demand.default = Outage(TraceSource(casino_trace(end=now + timedelta(hours=3), spikes=())))
    create(api, deployment("slots-api", 4))
    create(api, scaling_policy("slots", policy_spec(forecast={"model": "seasonal-naive", "step": "1m",
                                                              "history": "3d", "horizon": "1h"})))
    lease, resend = timedelta(seconds=3), timedelta(seconds=3)

    def operator(name: str) -> Operator:
        return make_incident_operator(url, SystemClock(), demand, tmp_path / f"{name}.db", identity=name,
                                      leader_election=True, alertmanager_url=am_url, lease_duration=lease,
                                      resend_interval=resend)

    a, b = operator("op-a"), operator("op-b")
    seen: list[tuple[float, bool]] = []
    stop = threading.Event()
    am = AlertmanagerClient(am_url, timeout=timedelta(seconds=1))

    def poll() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a failed poll is not an observation
                seen.append((time.monotonic(), bool(_am_alerts(am, "slots"))))
            stop.wait(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    try:
        demand.default.down = True
        assert b.loop.step() is not None  # b leads; MetricsUnavailable fires; Alertmanager is not up
        demand.default.down = False
        assert b.loop.step() is not None  # ... and resolves, undelivered too
        assert a.loop.step() is None
        time.sleep(lease.total_seconds() + 0.3)
        assert a.loop.step() is not None  # b stopped renewing: a takes over
        assert b.loop.step() is None  # b sees it and follows
        server = alertmanager_factory(port=port)
        demand.default.down = True
        _step_until(a, lambda: _am_alerts(am, "slots"), timeout=20, what="a's alert in Alertmanager")
        poller.start()
        for _ in range(4):
            time.sleep(0.5)
            a.loop.step()
        assert a.incidents is not None and a.incidents.worker is not None
        a.incidents.worker.stop()  # a dies: no release, no last delivery
        emu.fail("GET", r"/deployments/slots-api/scale$", 503, times=1)  # b's first cycle can only hold
        report = wait_until(lambda: b.loop.step(), timeout=15, interval=0.3, what="b takes over")
        assert report.outcomes[0].reason == "APIUnavailable"
        for _ in range(int(3 * resend.total_seconds() / 0.5)):  # three resend intervals of b's cycles
            time.sleep(0.5)
            b.loop.step()
        stop.set()
        poller.join(5)
        assert seen and all(present for _, present in seen), (
            f"Alertmanager lost the alert {sum(not p for _, p in seen)} time(s) in {len(seen)} polls")
        assert seen[-1][0] - seen[0][0] > 8
        demand.default.down = False  # metrics back: b resolves it, and that does reach Alertmanager
        _step_until(b, lambda: _am_alerts(am, "slots") == [], timeout=20, what="the resolve in Alertmanager")
        server.stop()
    finally:
        stop.set()
        am.close()
        a.close()
        b.close()
