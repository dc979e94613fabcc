"""metric.scrape through the production wiring: every pod scraped on its own, the named counter summed.

The pods are real HTTP /metrics endpoints: tests/exporter_app.py processes on
127.0.0.2, 127.0.0.3 ... (loopback owns all of 127.0.0.0/8), one port, each
with a known rate of a counter that is *not* the casino's own
(``app_requests_total``). Kubernetes is the strict emulator: the pods are
Pod objects and the Service's endpoints an EndpointSlice
(``kubernetes.io/service-name``), as a cluster would have them. The operator
is what ``build_operator`` builds from ``SourceFactory`` (as ``pitboss
operator run`` does), on the system clock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from controller.operator.app import SourceFactory, build_operator
from controller.operator.clock import SystemClock
from tests.harness import ExporterProcess, free_port
from tests.kube.fixtures import NAMESPACE, api_client_for, create, deployment, scaling_policy

POLICIES = ("pitboss.dev/v1alpha1", "scalingpolicies")


def _pod(name: str, ip: str | None, port: int, *, ready: bool = True, app: str = "slots-api") -> dict[str, Any]:
    status: dict[str, Any] = {"phase": "Running" if ip else "Pending",
                              "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}
    if ip:
        status["podIP"] = ip
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app": app}},
            "spec": {"containers": [{"name": "api", "image": "casino:1",
                                     "ports": [{"name": "http", "containerPort": port}]}]},
            "status": status}


def _slice(service: str, port: int, endpoints: list[tuple[str, str, bool]]) -> dict[str, Any]:
    return {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
            "metadata": {"name": f"{service}-x1", "namespace": NAMESPACE,
                         "labels": {"kubernetes.io/service-name": service}},
            "ports": [{"name": "http", "port": port, "protocol": "TCP"}],
            "endpoints": [{"addresses": [ip], "conditions": {"ready": ready},
                           "targetRef": {"kind": "Pod", "name": pod, "namespace": NAMESPACE}}
                          for pod, ip, ready in endpoints]}


def _policy(scrape: dict[str, Any], capacity: float) -> dict[str, Any]:
    return {
        "targetRef": {"kind": "Deployment", "name": "slots-api"},
        "metric": {"scrape": {"metric": "app_requests_total", **scrape}},
        "capacityPerReplica": capacity, "minReplicas": 1, "maxReplicas": 10, "leadTime": "10s",
        "forecast": {"model": "seasonal-naive", "step": "2s", "history": "1m", "horizon": "1m"},
    }


def _pods(factory: Callable[..., ExporterProcess], rates: list[float]) -> tuple[int, list[ExporterProcess]]:
    port = free_port()
    return port, [factory(rate=r, addr=f"127.0.0.{i + 2}", port=port, counter="app_requests")
                  for i, r in enumerate(rates)]


def _run_until(op: Any, emu: Any, check: Callable[[dict[str, Any], int], bool], timeout: float = 60) -> tuple[
        dict[str, Any], int]:
    deadline = time.monotonic() + timeout
    status: dict[str, Any] = {}
    replicas = -1
    while time.monotonic() < deadline:
        op.loop.step()
        status = emu.get(*POLICIES, NAMESPACE, "slots")["status"]
        replicas = emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")["spec"]["replicas"]
        if check(status, replicas):
            return status, replicas
        time.sleep(0.7)
    raise AssertionError(f"timed out: replicas {replicas}, status {status}")


def _metrics(status: dict[str, Any]) -> dict[str, Any]:
    return {c["type"]: c for c in status.get("conditions", [])}["MetricsAvailable"]


def test_service_endpoints_are_scraped_one_by_one_and_summed(
        kube: Any, api: Any, exporter_factory: Callable[..., ExporterProcess]) -> None:
    emu, url = kube
    port, exporters = _pods(exporter_factory, [40.0, 60.0, 100.0])  # 200/s in all
    create(api, deployment("slots-api", 1))
    endpoints = [(f"slots-api-{i}", e.addr, True) for i, e in enumerate(exporters)]
    endpoints.append(("slots-api-starting", "127.0.0.9", False))  # not ready (nothing serves there): no traffic
    emu.put_object(_slice("slots-api", port, endpoints), "endpointslices")
    create(api, scaling_policy("slots", _policy({"service": "slots-api", "port": "http"}, capacity=55)))
    op = build_operator(api_client_for(url), namespace=NAMESPACE, demand=SourceFactory(None), clock=SystemClock(),
                        leader_election=False)

    status, replicas = _run_until(op, emu, lambda s, r: r == 4 and _metrics(s)["status"] == "True")
    assert replicas == 4  # 200/s over every pod / 55 per replica; one pod alone would give 1 or 2
    demand = float(_metrics(status)["message"].removeprefix("demand now ").removesuffix("/s"))
    assert demand == pytest.approx(200, rel=0.1)

    exporters[1].kill()  # a ready pod stops answering: the sum is unknown, never 140/s
    status, replicas = _run_until(op, emu, lambda s, r: _metrics(s)["status"] == "False", timeout=20)
    assert "slots-api-1" in _metrics(status)["message"] and replicas == 4  # held, not scaled down
    for _ in range(3):
        op.loop.step()
    assert emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")["spec"]["replicas"] == 4


def test_pods_of_the_targets_selector_are_scraped(kube: Any, api: Any,
                                                  exporter_factory: Callable[..., ExporterProcess]) -> None:
    emu, url = kube
    port, exporters = _pods(exporter_factory, [30.0, 70.0])  # 100/s
    create(api, deployment("slots-api", 1))  # selector app=slots-api, read from its /scale
    for i, e in enumerate(exporters):
        emu.put_object(_pod(f"slots-api-{i}", e.addr, port), "pods")
    emu.put_object(_pod("slots-api-pending", None, port), "pods")  # no IP yet: not started, skipped
    emu.put_object(_pod("wallet-0", "127.0.0.8", port, app="wallet"), "pods")  # another app: not selected
    create(api, scaling_policy("slots", _policy({}, capacity=28)))
    op = build_operator(api_client_for(url), namespace=NAMESPACE, demand=SourceFactory(None), clock=SystemClock(),
                        leader_election=False)
    status, replicas = _run_until(op, emu, lambda s, r: r == 4 and _metrics(s)["status"] == "True")
    demand = float(_metrics(status)["message"].removeprefix("demand now ").removesuffix("/s"))
    assert demand == pytest.approx(100, rel=0.1) and replicas == 4
    pods_listed = emu.requests("GET", r"/api/v1/namespaces/casino/pods$")
    assert pods_listed and all(r.query.get("labelSelector") == "app=slots-api" for r in pods_listed)


def test_a_page_without_the_named_counter_holds_instead_of_reading_zero(
        kube: Any, api: Any, exporter_factory: Callable[..., ExporterProcess]) -> None:
    """The casino's own counter is there, the named one is not: unknown (hold), never a known 0/s."""
    emu, url = kube
    port = free_port()
    exporter = exporter_factory(rate=50.0, addr="127.0.0.2", port=port)  # casino_http_requests_total only
    create(api, deployment("slots-api", 6))
    emu.put_object(_pod("slots-api-0", exporter.addr, port), "pods")
    create(api, scaling_policy("slots", _policy({"port": str(port)}, capacity=50)))
    op = build_operator(api_client_for(url), namespace=NAMESPACE, demand=SourceFactory(None), clock=SystemClock(),
                        leader_election=False)
    for _ in range(4):
        op.loop.step()
        time.sleep(0.5)
    status = emu.get(*POLICIES, NAMESPACE, "slots")["status"]
    assert _metrics(status)["status"] == "False"
    assert "app_requests_total is not on the page" in _metrics(status)["message"]
    assert emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")["spec"]["replicas"] == 6
