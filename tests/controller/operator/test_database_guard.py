"""The database lag guard through the loop: the official client over HTTP against the strict emulator.

The read replicas are a CloudNativePG-like ``Cluster`` (tests/kube/cnpg.py: its
/scale is ``.spec.instances``, the primary included, ``primaryInstances: 1``)
or a StatefulSet. ``CatchingUpCluster`` plays CloudNativePG's controller and
the replicas' lag as the lagQuery would report it: a new instance is ready one
cycle after it is asked for and then lags 600 s for 20 minutes while it copies
the primary's WAL; until it is ready its exporter reports NaN. (The real lag,
from a PostgreSQL primary + standby through postgres_exporter and Prometheus,
is tested with the production ``PrometheusLagSource`` elsewhere; here the
subject is what the loop does with what the lag says.) Demand is a flat
replayed trace, forecasts come from the real ``calendar`` model, decisions
from the real ``decide``; the clock is fake, 15 s per cycle.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from controller.core.decision import ReplicaLag
from controller.errors import RetryableError
from controller.incidents.store import IncidentLog
from controller.operator.clock import FakeClock
from tests.controller.operator.harness import (
    EVENT_START,
    TraceDemand,
    casino_trace,
    make_incident_operator,
    make_operator,
    policy_spec,
)
from tests.kube import cnpg
from tests.kube.emulator import StrictKubernetesEmulator
from tests.kube.fixtures import NAMESPACE, create, deployment, scaling_policy

SYNC = timedelta(seconds=15)
POLICIES = ("pitboss.dev/v1alpha1", "scalingpolicies")
START = EVENT_START - timedelta(hours=2)
FLAT = casino_trace(spikes=())  # ~300 req/s all along


def _db(target: dict[str, Any], **extra: Any) -> dict[str, Any]:
    # 300 req/s of reads at 90 per replica: 4 read replicas (a 10% higher forecast still needs 4)
    return {"targetRef": target, "capacityPerReplica": 90, "readShare": 1.0, "maxReplicas": 8, "leadTime": "20m",
            "maxLagSeconds": 30, "lagQuery": "max by (pod) (cnpg_pg_replication_lag)", **extra}


def _status(emu: StrictKubernetesEmulator) -> dict[str, Any]:
    return dict((emu.get(*POLICIES, NAMESPACE, "slots") or {}).get("status") or {})


def _condition(emu: StrictKubernetesEmulator, ctype: str) -> dict[str, Any]:
    return {c["type"]: c for c in _status(emu).get("conditions", [])}[ctype]


class CatchingUpCluster:
    """CloudNativePG's controller and the replicas' lag, for one Cluster in the emulator (see the module doc)."""

    def __init__(self, emu: StrictKubernetesEmulator, name: str, instances: int) -> None:
        self.emu, self.name = emu, name
        self.added: list[datetime] = []  # when each instance beyond the first ``instances`` was asked for
        self.base = instances
        emu.put_object(cnpg.cluster(name, instances, NAMESPACE), cnpg.PLURAL)

    def instances(self) -> int:
        obj = self.emu.get(cnpg.API_VERSION, cnpg.PLURAL, NAMESPACE, self.name)
        assert obj is not None
        return int(obj["spec"]["instances"])

    def reconcile(self, now: datetime) -> None:
        """Note newly asked-for instances; make those asked for a cycle ago ready (status.readyInstances)."""
        while self.base + len(self.added) < self.instances():
            self.added.append(now)
        obj = self.emu.get(cnpg.API_VERSION, cnpg.PLURAL, NAMESPACE, self.name)
        assert obj is not None
        ready = self.base + sum(1 for at in self.added if now - at >= SYNC)
        if obj["status"].get("readyInstances") != ready or obj["status"].get("instances") != self.instances():
            obj["status"].update(instances=self.instances(), readyInstances=ready)
            self.emu.put_object(obj, cnpg.PLURAL)

    def lags(self, now: datetime) -> tuple[ReplicaLag, ...]:
        """One series per standby (the primary reports none): 1 s when in sync, 600 s catching up, NaN starting."""
        out = [ReplicaLag(f"{self.name}-{i + 2}", 1.0) for i in range(self.base - 1)]
        for i, at in enumerate(self.added):
            age = now - at
            lag = math.nan if age < SYNC else 600.0 if age < timedelta(minutes=20) else 1.0
            out.append(ReplicaLag(f"{self.name}-{self.base + i + 1}", lag))
        return tuple(out)


def test_a_new_replica_catching_up_does_not_buy_another(kube: Any, api: Any) -> None:
    """The runaway of the report, on a CloudNativePG Cluster: 3 standbys, 4 needed. One is added, and while
    it catches up (NaN, then 600 s of lag) it is capacity on the way: the Cluster stays at 5 instances."""
    emu, url = kube
    emu.register_crd(cnpg.cluster_crd())
    cluster = CatchingUpCluster(emu, "pg", instances=4)  # primary + 3 standbys
    create(api, deployment("slots-api", 4))
    target = {"apiVersion": cnpg.API_VERSION, "kind": "Cluster", "name": "pg"}
    create(api, scaling_policy("slots", policy_spec(databaseReplicas=_db(target, primaryInstances=1))))
    clock = FakeClock(START)
    op = make_operator(url, clock, TraceDemand(FLAT), leader_election=False)
    op.reconciler.lag = lambda policy, spec: cluster
    seen = []
    for _ in range(8):
        op.loop.step()
        cluster.reconcile(clock.now())
        seen.append(cluster.instances())
        clock.advance(SYNC)
    assert seen == [5] * 8, seen  # 4 read replicas + the primary, never more
    status = _status(emu)
    assert status["databaseCurrentReplicas"] == 4 and status["databaseDesiredReplicas"] == 4
    assert [u["replicas"] for u in status["databaseScaleUps"]] == [1]
    assert "catching up" in status["lastDecision"]["message"]
    assert _condition(emu, "DatabaseMetricsAvailable")["status"] == "True"
    patches = emu.requests("PATCH", r"/clusters/pg/scale$")
    assert [r.body["spec"]["replicas"] for r in patches] == [5]


def test_unknown_lag_holds_the_database_and_raises_metrics_unavailable(kube: Any, api: Any, tmp_path: Path) -> None:
    emu, url = kube
    create(api, deployment("slots-api", 1))
    create(api, deployment("postgres-replica", 6, kind="StatefulSet", labels={"app": "pg"}))
    target = {"kind": "StatefulSet", "name": "postgres-replica"}
    create(api, scaling_policy("slots", policy_spec(databaseReplicas=_db(target))))
    lag = {"down": True}

    class Lag:
        def lags(self, now: datetime) -> tuple[ReplicaLag, ...]:
            if lag["down"]:
                raise RetryableError("prometheus query: connection refused")
            return tuple(ReplicaLag(f"postgres-replica-{i}", 1.0) for i in range(6))

    clock = FakeClock(START)
    db = tmp_path / "incidents.db"
    op = make_incident_operator(url, clock, TraceDemand(FLAT), db, lag=lambda policy, spec: Lag(), background=False)
    for _ in range(3):
        op.loop.step()
        clock.advance(SYNC)
    replicas = emu.get("apps/v1", "statefulsets", NAMESPACE, "postgres-replica")["spec"]["replicas"]
    assert replicas == 6  # 4 would do, but lag is unknown: never down
    assert emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")["spec"]["replicas"] >= 3  # the app scales on
    cond = _condition(emu, "DatabaseMetricsAvailable")
    assert cond["status"] == "False" and cond["reason"] == "MetricsUnavailable"
    assert "lag query failed: prometheus query: connection refused" in cond["message"]
    assert _condition(emu, "MetricsAvailable")["status"] == "True"
    log = IncidentLog(db)
    try:
        (incident,) = [i for i in log.incidents() if i.labels.get("target") == "database"]
    finally:
        log.close()
    assert incident.alertname == "MetricsUnavailable" and incident.runbook_url.endswith("#database-lag-unknown")
    warnings = [e for e in emu.list("v1", "events", NAMESPACE) if e["reason"] == "MetricsUnavailable"]
    assert warnings and "replication lag unknown" in warnings[0]["message"]

    lag["down"] = False  # lag is back: the incident resolves, but no scale-down within the window
    for _ in range(3):
        op.loop.step()
        clock.advance(SYNC)
    assert _condition(emu, "DatabaseMetricsAvailable")["status"] == "True"
    assert emu.get("apps/v1", "statefulsets", NAMESPACE, "postgres-replica")["spec"]["replicas"] == 6
    assert "highest database recommendation in the last 30m is 6" in _status(emu)["lastDecision"]["message"]
    log = IncidentLog(db)
    try:
        assert [i.state for i in log.incidents() if i.labels.get("target") == "database"] == ["resolved"]
    finally:
        log.close()


def test_database_scale_down_waits_for_its_window_and_a_new_leader_inherits_it(kube: Any, api: Any) -> None:
    emu, url = kube
    create(api, deployment("slots-api", 4))
    create(api, deployment("postgres-replica", 6, kind="StatefulSet", labels={"app": "pg"}))
    target = {"kind": "StatefulSet", "name": "postgres-replica"}
    spec = policy_spec(databaseReplicas={**_db(target), "scaleDown": {"stabilizationWindow": "2m"}})
    spec["databaseReplicas"].pop("lagQuery")  # no lag guard here: the subject is the window
    create(api, scaling_policy("slots", spec))
    clock = FakeClock(START)

    def replicas() -> int:
        return int(emu.get("apps/v1", "statefulsets", NAMESPACE, "postgres-replica")["spec"]["replicas"])

    first = make_operator(url, clock, TraceDemand(FLAT), leader_election=False)
    seen = []
    for _ in range(5):  # 0 .. 60 s
        first.loop.step()
        seen.append(replicas())
        clock.advance(SYNC)
    second = make_operator(url, clock, TraceDemand(FLAT), identity="op-b", leader_election=False)  # a new leader
    for _ in range(8):  # 75 s .. 180 s
        second.loop.step()
        seen.append(replicas())
        clock.advance(SYNC)
    # 6 found, 4 needed: held for the 2 m window (the first sight counts), then one replica per cycle
    assert seen == [6] * 9 + [5, 4, 4, 4], seen
    assert _condition(emu, "DatabaseMetricsAvailable")["reason"] == "LagNotMeasured"
