"""The manifests' RBAC covers the kinds the docs name: a CloudNativePG Cluster's /scale, scrape pod discovery.

As tests/controller/operator/test_rbac.py, the strict emulator enforces the
ClusterRole and Role rendered from manifests/base on the operator's token;
here the policies use a ``postgresql.cnpg.io/v1`` Cluster as their read
replicas and ``metric.scrape`` (pods of the target's selector, and a
Service's EndpointSlices). No request may be forbidden.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from controller.operator.app import SourceFactory
from controller.operator.clock import FakeClock
from tests.controller.operator.harness import EVENT_START, TraceDemand, casino_trace, make_operator, policy_spec
from tests.controller.operator.test_rbac import TOKEN, _roles
from tests.kube import cnpg
from tests.kube.fixtures import NAMESPACE, api_client_for, create, deployment, scaling_policy


def test_cluster_scale_and_pod_discovery_need_nothing_more(kube: Any, api: Any) -> None:
    emu, url = kube
    emu.register_crd(cnpg.cluster_crd())
    emu.put_object(cnpg.cluster("pg", 3, NAMESPACE), cnpg.PLURAL)
    create(api, deployment("slots-api", 4))
    create(api, deployment("wallet", 2, labels={"app": "wallet"}))
    db = {"targetRef": {"apiVersion": cnpg.API_VERSION, "kind": "Cluster", "name": "pg"}, "primaryInstances": 1,
          "capacityPerReplica": 90, "maxReplicas": 8, "leadTime": "20m"}
    create(api, scaling_policy("slots", policy_spec(databaseReplicas=db)))
    scrape = {"targetRef": {"kind": "Deployment", "name": "wallet"}, "capacityPerReplica": 10,
              "forecast": {"model": "seasonal-naive", "step": "1m", "history": "1h", "horizon": "1h"}}
    create(api, scaling_policy("wallet", {**scrape, "metric": {"scrape": {"metric": "app_requests_total",
                                                                         "port": "8000"}}}))
    create(api, scaling_policy("wallet-svc", {**scrape, "metric": {"scrape": {"metric": "app_requests_total",
                                                                             "service": "wallet", "port": "http"}}}))
    emu.enforce_rbac(TOKEN, _roles())
    sources = SourceFactory(None, api_client=api_client_for(url, TOKEN))
    trace = TraceDemand(casino_trace(spikes=()))
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = make_operator(url, clock, lambda p, s: sources(p, s) if s.metric.scrape else trace(p, s),  # type: ignore[arg-type]
                       token=TOKEN, leader_election=False)
    for _ in range(2):
        op.loop.step()
        clock.advance(timedelta(seconds=15))
    assert [(r.method, r.path) for r in emu.log if r.status == 403] == []
    assert emu.get(cnpg.API_VERSION, cnpg.PLURAL, NAMESPACE, "pg")["spec"]["instances"] == 5  # 4 standbys + primary
    assert emu.requests("GET", r"/namespaces/casino/pods$") and emu.requests("GET", r"/endpointslices$")
    assert emu.requests("GET", r"/clusters/pg/status$")
