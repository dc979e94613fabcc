"""A CloudNativePG-like ``Cluster`` CRD and objects, for tests of /scale on a custom resource.

The CRD has what matters here of CloudNativePG's ``postgresql.cnpg.io/v1``
Cluster: a status subresource and a scale subresource whose spec replicas are
``.spec.instances`` and status replicas ``.status.instances`` (its status also
carries ``readyInstances``). Every instance, the primary included, is one of
``.spec.instances``. Register it with ``emulator.register_crd(cluster_crd())``.
"""

from __future__ import annotations

from typing import Any

GROUP, VERSION, PLURAL, KIND = "postgresql.cnpg.io", "v1", "clusters", "Cluster"
API_VERSION = f"{GROUP}/{VERSION}"


def cluster_crd() -> dict[str, Any]:
    """The CustomResourceDefinition of the CloudNativePG-like Cluster."""
    schema = {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": {
                "type": "object",
                "required": ["instances"],
                "properties": {
                    "instances": {"type": "integer", "minimum": 1},
                    "imageName": {"type": "string"},
                    "storage": {"type": "object", "properties": {"size": {"type": "string"}}},
                },
            },
            "status": {
                "type": "object",
                "properties": {
                    "instances": {"type": "integer"},
                    "readyInstances": {"type": "integer"},
                    "phase": {"type": "string"},
                },
            },
        },
    }
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{GROUP}"},
        "spec": {
            "group": GROUP,
            "names": {"kind": KIND, "plural": PLURAL, "singular": "cluster", "listKind": "ClusterList"},
            "scope": "Namespaced",
            "versions": [{
                "name": VERSION, "served": True, "storage": True,
                "schema": {"openAPIV3Schema": schema},
                "subresources": {
                    "status": {},
                    "scale": {"specReplicasPath": ".spec.instances", "statusReplicasPath": ".status.instances"},
                },
            }],
        },
    }


def cluster(name: str, instances: int, namespace: str, *, ready: int | None = None,
            managed: bool = False) -> dict[str, Any]:
    """A Cluster with ``instances`` (the primary included) and ``ready`` of them ready (default: all).

    Unless ``managed``, the emulator's stand-in controller leaves its status alone, so a test sets
    ``status.readyInstances`` as CloudNativePG's controller would.
    """
    from tests.kube.emulator import UNMANAGED

    annotations = {} if managed else {UNMANAGED: "true"}
    return {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations},
        "spec": {"instances": instances, "imageName": "ghcr.io/cloudnative-pg/postgresql:16",
                 "storage": {"size": "1Gi"}},
        "status": {"instances": instances, "readyInstances": instances if ready is None else ready,
                   "phase": "Cluster in healthy state"},
    }
