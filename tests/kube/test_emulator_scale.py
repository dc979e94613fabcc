"""The emulator's /scale on custom resources, discovery of subresources, Pods and EndpointSlices, request hooks.

Through the official client over HTTP, as the operator sees them: a
CloudNativePG-like Cluster (tests/kube/cnpg.py) scales through
``.spec.instances``; discovery lists ``clusters/scale``; Pods and
EndpointSlices are listed by label selector; a hook lands a human's
``kubectl scale`` between a read and a write, which then meets a 409.
"""

from __future__ import annotations

from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.kube import cnpg
from tests.kube.fixtures import NAMESPACE, create, deployment

MERGE = "application/merge-patch+json"


def _custom(api: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def test_custom_resource_scale_maps_to_its_crd_paths(kube: Any, api: Any) -> None:
    emu, _ = kube
    emu.register_crd(cnpg.cluster_crd())
    emu.put_object(cnpg.cluster("pg", 3, NAMESPACE, ready=2), cnpg.PLURAL)
    custom = _custom(api)
    scale = custom.get_namespaced_custom_object_scale(cnpg.GROUP, cnpg.VERSION, NAMESPACE, cnpg.PLURAL, "pg")
    assert scale["kind"] == "Scale" and scale["spec"]["replicas"] == 3 and scale["status"]["replicas"] == 3
    rv = scale["metadata"]["resourceVersion"]
    done = custom.patch_namespaced_custom_object_scale(
        cnpg.GROUP, cnpg.VERSION, NAMESPACE, cnpg.PLURAL, "pg",
        {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 5}}, _content_type=MERGE)
    assert done["spec"]["replicas"] == 5
    stored = emu.get(cnpg.API_VERSION, cnpg.PLURAL, NAMESPACE, "pg")
    assert stored is not None and stored["spec"]["instances"] == 5 and "replicas" not in stored["spec"]
    assert stored["status"]["readyInstances"] == 2  # CNPG's controller (here: the test) owns the status
    assert stored["metadata"]["generation"] == 2
    with pytest.raises(ApiException) as stale:
        custom.patch_namespaced_custom_object_scale(
            cnpg.GROUP, cnpg.VERSION, NAMESPACE, cnpg.PLURAL, "pg",
            {"metadata": {"resourceVersion": rv}, "spec": {"replicas": 1}}, _content_type=MERGE)
    assert stale.value.status == 409
    with pytest.raises(ApiException) as invalid:  # the CRD's schema still applies through /scale
        custom.patch_namespaced_custom_object_scale(cnpg.GROUP, cnpg.VERSION, NAMESPACE, cnpg.PLURAL, "pg",
                                                    {"spec": {"replicas": 0}}, _content_type=MERGE)
    assert invalid.value.status == 422


def test_managed_custom_resource_status_follows_its_scale(kube: Any, api: Any) -> None:
    emu, _ = kube
    emu.register_crd(cnpg.cluster_crd())
    emu.put_object(cnpg.cluster("pg", 2, NAMESPACE, managed=True), cnpg.PLURAL)
    emu.write_scale(cnpg.API_VERSION, cnpg.PLURAL, NAMESPACE, "pg", 4)
    stored = emu.get(cnpg.API_VERSION, cnpg.PLURAL, NAMESPACE, "pg")
    assert stored is not None and stored["status"]["instances"] == 4


def test_discovery_lists_kinds_and_their_subresources(kube: Any, api: Any) -> None:
    emu, _ = kube
    emu.register_crd(cnpg.cluster_crd())
    listed = _custom(api).get_api_resources(cnpg.GROUP, cnpg.VERSION)
    names = {r.name: r.kind for r in listed.resources}
    assert names["clusters"] == "Cluster" and "clusters/scale" in names and "clusters/status" in names
    apps = {r.name for r in client.AppsV1Api(api).get_api_resources().resources}
    assert {"deployments/scale", "statefulsets/scale"} <= apps


def _pod(name: str, ip: str, labels: dict[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": NAMESPACE, "labels": labels},
            "spec": {"containers": [{"name": "app", "image": "casino:1", "ports": [{"name": "http",
                                                                                   "containerPort": 8000}]}]},
            "status": {"phase": "Running", "podIP": ip, "conditions": [{"type": "Ready", "status": "True"}]}}


def test_pods_and_endpoint_slices_are_listed_by_label(kube: Any, api: Any) -> None:
    emu, _ = kube
    for i, app in enumerate(["web", "web", "db"]):
        emu.put_object(_pod(f"{app}-{i}", f"127.0.0.{i + 2}", {"app": app}), "pods")
    emu.put_object({
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice", "addressType": "IPv4",
        "metadata": {"name": "web-abc", "namespace": NAMESPACE, "labels": {"kubernetes.io/service-name": "web"}},
        "ports": [{"name": "http", "port": 8000, "protocol": "TCP"}],
        "endpoints": [{"addresses": ["127.0.0.2"], "conditions": {"ready": True},
                       "targetRef": {"kind": "Pod", "name": "web-0", "namespace": NAMESPACE}}],
    }, "endpointslices")
    pods = client.CoreV1Api(api).list_namespaced_pod(NAMESPACE, label_selector="app=web")
    assert sorted(p.metadata.name for p in pods.items) == ["web-0", "web-1"]
    assert pods.items[0].status.pod_ip.startswith("127.0.0.")
    slices = client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        NAMESPACE, label_selector="kubernetes.io/service-name=web")
    assert [s.metadata.name for s in slices.items] == ["web-abc"]
    assert slices.items[0].endpoints[0].target_ref.name == "web-0" and slices.items[0].ports[0].port == 8000
    assert not client.DiscoveryV1Api(api).list_namespaced_endpoint_slice(
        NAMESPACE, label_selector="kubernetes.io/service-name=db").items


def test_a_hook_lands_a_human_scale_between_read_and_write(kube: Any, api: Any) -> None:
    emu, _ = kube
    create(api, deployment("web", 4))
    apps = client.AppsV1Api(api)
    read = apps.read_namespaced_deployment_scale("web", NAMESPACE)
    emu.on_request("PATCH", r"/deployments/web/scale$",
                   lambda: emu.write_scale("apps/v1", "deployments", NAMESPACE, "web", 20))
    with pytest.raises(ApiException) as conflict:
        apps.patch_namespaced_deployment_scale(
            "web", NAMESPACE, {"metadata": {"resourceVersion": read.metadata.resource_version},
                               "spec": {"replicas": 6}})
    assert conflict.value.status == 409
    assert apps.read_namespaced_deployment_scale("web", NAMESPACE).spec.replicas == 20  # the human's write stands
    apps.patch_namespaced_deployment_scale("web", NAMESPACE, {"spec": {"replicas": 7}})  # the hook ran once
    assert apps.read_namespaced_deployment_scale("web", NAMESPACE).spec.replicas == 7
