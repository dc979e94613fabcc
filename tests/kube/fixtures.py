"""Fixtures and builders shared by the Kubernetes-facing tests.

``kube`` starts a fresh strict emulator (tests/kube/emulator/) with the
Pitboss CRDs registered and the ``casino`` and ``pitboss-system``
namespaces created; ``api_client_for(url)`` gives an official-client
ApiClient pointed at it. The object builders write what a user would apply.
Imported by the conftest.py of tests/kube, tests/controller/operator and
tests/controller/targets.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from controller.operator.crds import all_crds
from tests.kube.emulator import EmulatorThread, StrictKubernetesEmulator

NAMESPACE = "casino"
SYSTEM_NAMESPACE = "pitboss-system"


def write_kubeconfig(directory: Path, url: str, token: str = "operator-token") -> Path:
    """A kubeconfig in ``directory`` pointing the official client at the emulator on ``url``."""
    path = directory / "kubeconfig"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "emu",
        "clusters": [{"name": "emu", "cluster": {"server": url}}],
        "users": [{"name": "op", "user": {"token": token}}],
        "contexts": [{"name": "emu", "context": {"cluster": "emu", "user": "op"}}],
    }))
    return path


def api_client_for(url: str, token: str | None = None, write_concurrency: int = 8) -> client.ApiClient:
    """An official-client ApiClient talking plain HTTP to ``url`` (with a bearer token, if given).

    Its connection pool is sized for ``write_concurrency`` writers, as ``pitboss operator run`` sizes it.
    """
    from controller.operator.writes import size_pool

    cfg = size_pool(client.Configuration(), write_concurrency)
    cfg.host = url
    cfg.retries = False
    if token:
        cfg.api_key = {"BearerToken": token}
        cfg.api_key_prefix = {"BearerToken": "Bearer"}
    return client.ApiClient(cfg)


def served(thread: EmulatorThread) -> Iterator[tuple[Any, str]]:
    """Start ``thread``'s emulator with the CRDs and namespaces; yield (emulator, url); stop it after."""
    emulator = thread.start()
    for crd in all_crds().values():
        emulator.register_crd(crd)
    for ns in (NAMESPACE, SYSTEM_NAMESPACE):
        emulator.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}, "namespaces")
    try:
        yield emulator, thread.url
    finally:
        thread.stop()


@pytest.fixture
def kube() -> Iterator[tuple[StrictKubernetesEmulator, str]]:
    """(emulator, url): a strict emulator with CRDs and namespaces, stopped after the test."""
    yield from served(EmulatorThread())


@pytest.fixture
def api(kube: tuple[StrictKubernetesEmulator, str]) -> Iterator[client.ApiClient]:
    """An ApiClient for the ``kube`` emulator."""
    api_client = api_client_for(kube[1])
    try:
        yield api_client
    finally:
        api_client.close()


def deployment(name: str, replicas: int, namespace: str = NAMESPACE, labels: dict[str, str] | None = None,
               kind: str = "Deployment") -> dict[str, Any]:
    """A minimal Deployment (or StatefulSet) manifest."""
    labels = labels or {"app": name}
    spec: dict[str, Any] = {
        "replicas": replicas,
        "selector": {"matchLabels": labels},
        "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "casino:1"}]}},
    }
    if kind == "StatefulSet":
        spec["serviceName"] = name
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": {"name": name, "namespace": namespace,
                                                                 "labels": labels}, "spec": spec}


def scaling_policy(name: str, spec: dict[str, Any], namespace: str = NAMESPACE,
                   labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A ScalingPolicy custom resource."""
    return {"apiVersion": "pitboss.dev/v1alpha1", "kind": "ScalingPolicy",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": spec}


def traffic_event(name: str, spec: dict[str, Any], namespace: str = NAMESPACE,
                  labels: dict[str, str] | None = None) -> dict[str, Any]:
    """A TrafficEvent custom resource."""
    return {"apiVersion": "pitboss.dev/v1alpha1", "kind": "TrafficEvent",
            "metadata": {"name": name, "namespace": namespace, "labels": labels or {}}, "spec": spec}


def create(api_client: client.ApiClient, obj: dict[str, Any]) -> dict[str, Any]:
    """Create ``obj`` through the official client (typed APIs for built-ins, CustomObjects for ours)."""
    ns = obj["metadata"].get("namespace", NAMESPACE)
    kind = obj["kind"]
    if kind == "Deployment":
        result: Any = client.AppsV1Api(api_client).create_namespaced_deployment(ns, obj)
    elif kind == "StatefulSet":
        result = client.AppsV1Api(api_client).create_namespaced_stateful_set(ns, obj)
    elif kind in ("ScalingPolicy", "TrafficEvent"):
        plural = "scalingpolicies" if kind == "ScalingPolicy" else "trafficevents"
        return dict(client.CustomObjectsApi(api_client).create_namespaced_custom_object(
            "pitboss.dev", "v1alpha1", ns, plural, obj))
    else:
        raise ValueError(f"kind: unsupported {kind}")
    return dict(api_client.sanitize_for_serialization(result))
