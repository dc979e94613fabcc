"""The operator against a real Prometheus: demand from PromQL, replica lag from lagQuery.

A stand-in exporter (tests/exporter_app.py) serves ``casino_http_requests_total``
at a known 240 req/s; a real Prometheus scrapes it every second; the
operator's SourceFactory (the production wiring of ``pitboss operator run``)
queries it on the system clock. Kubernetes is the strict emulator.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from controller.operator.app import SourceFactory, build_operator
from controller.operator.clock import SystemClock
from tests.kube.fixtures import NAMESPACE, api_client_for, create, deployment, scaling_policy


@pytest.mark.prometheus
def test_demand_and_lag_come_from_prometheus(kube: Any, api: Any, exporter_factory: Any,
                                             prometheus_factory: Any) -> None:
    emu, url = kube
    exporter = exporter_factory(rate=240.0)
    prometheus = prometheus_factory(targets=[exporter.target])
    create(api, deployment("casino-api", 1))
    create(api, deployment("pg-replica", 1, kind="StatefulSet", labels={"app": "pg"}))
    create(api, scaling_policy("casino-api", {
        "targetRef": {"kind": "Deployment", "name": "casino-api"},
        "metric": {"promql": "sum(rate(casino_http_requests_total[5s]))"},
        "capacityPerReplica": 100,
        "minReplicas": 1,
        "maxReplicas": 10,
        "leadTime": "10s",
        "forecast": {"model": "seasonal-naive", "step": "2s", "history": "1m", "horizon": "1m"},
        # maxReplicas 1: the one replica the static lagQuery reports on stays the only one (a second would have
        # no series: lag unknown)
        "databaseReplicas": {"targetRef": {"kind": "StatefulSet", "name": "pg-replica"}, "capacityPerReplica": 1000,
                             "maxReplicas": 1, "maxLagSeconds": 30,
                             "lagQuery": 'label_replace(vector(42), "pod", "pg-replica-0", "", "")'},
    }))
    sources = SourceFactory(prometheus.url)
    op = build_operator(api_client_for(url), namespace=NAMESPACE, demand=sources, lag=sources.lag,
                        clock=SystemClock(), leader_election=False)
    deadline = time.monotonic() + 60
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        op.loop.step()
        status = emu.get("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, "casino-api")["status"]
        ok = {c["type"]: c["status"] for c in status.get("conditions", [])}.get("MetricsAvailable") == "True"
        if ok and emu.get("apps/v1", "deployments", NAMESPACE, "casino-api")["spec"]["replicas"] >= 3:
            break
        time.sleep(1)
    conditions = {c["type"]: c for c in status.get("conditions", [])}
    assert conditions["MetricsAvailable"]["status"] == "True", conditions
    assert emu.get("apps/v1", "deployments", NAMESPACE, "casino-api")["spec"]["replicas"] == 3  # 240 req/s / 100
    assert "lagging" in status["lastDecision"]["message"]  # the 42 s lag came through lagQuery
