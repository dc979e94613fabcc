"""KubernetesScaleTarget on a kind outside apps/v1: a CloudNativePG-like Cluster through its /scale.

Over HTTP against the strict emulator with the Cluster CRD of tests/kube/cnpg.py
(scale subresource: .spec.instances / .status.instances, status.readyInstances):
discovery resolves the kind, /scale reads and writes .spec.instances with the
resourceVersion precondition, ready replicas come from status.readyInstances,
and a kind without /scale is refused with a message that says so.
"""

from __future__ import annotations

from typing import Any

import pytest

from controller.targets.base import ScaleConflict, TargetKey, TargetNotFound
from controller.targets.kubernetes import KubernetesScaleTarget
from tests.kube import cnpg
from tests.kube.apimodel import ResourceType
from tests.kube.fixtures import NAMESPACE, api_client_for

PG = TargetKey(NAMESPACE, cnpg.KIND, "pg", cnpg.API_VERSION)


@pytest.fixture
def target(kube: Any) -> tuple[KubernetesScaleTarget, Any]:
    emu, url = kube
    emu.register_crd(cnpg.cluster_crd())
    emu.put_object(cnpg.cluster("pg", 3, NAMESPACE, ready=2), cnpg.PLURAL)
    return KubernetesScaleTarget(api_client_for(url)), emu


def test_reads_instances_and_ready_instances(target: tuple[KubernetesScaleTarget, Any]) -> None:
    scale_target, _ = target
    state = scale_target.get_scale(PG)
    assert (state.replicas, state.status_replicas, state.ready_replicas) == (3, 3, 2)
    assert state.resource_version


def test_writes_instances_with_the_resource_version(target: tuple[KubernetesScaleTarget, Any]) -> None:
    scale_target, emu = target
    state = scale_target.get_scale(PG)
    after = scale_target.set_replicas(PG, 5, state.resource_version)
    assert after.replicas == 5
    stored = emu.get(cnpg.API_VERSION, cnpg.PLURAL, NAMESPACE, "pg")
    assert stored["spec"]["instances"] == 5
    with pytest.raises(ScaleConflict):
        scale_target.set_replicas(PG, 4, state.resource_version)  # stale: someone (we) wrote since
    assert emu.get(cnpg.API_VERSION, cnpg.PLURAL, NAMESPACE, "pg")["spec"]["instances"] == 5
    patches = emu.requests("PATCH", r"/clusters/pg/scale$")
    assert len(patches) == 2 and patches[0].status == 200 and patches[1].status == 409


def test_a_kind_without_scale_is_refused(kube: Any) -> None:
    emu, url = kube
    emu.register(ResourceType("example.dev", "v1", "gadgets", "Gadget", builtin=False))
    with pytest.raises(TargetNotFound, match=r"Gadget \(gadgets\.example\.dev\) has no /scale subresource"):
        KubernetesScaleTarget(api_client_for(url)).get_scale(TargetKey(NAMESPACE, "Gadget", "g", "example.dev/v1"))
