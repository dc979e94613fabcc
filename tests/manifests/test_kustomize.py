"""The kustomize manifests render offline and validate strictly for Kubernetes 1.29 through 1.33.

Built-in kinds are checked with kubernetes-validate (--strict: unknown
fields are errors) against each version's bundled schemas; ScalingPolicy and
TrafficEvent documents against our own CRD schemas (OpenAPI v3 turned into
JSON Schema) and the pydantic models the loop loads them with.
"""

from __future__ import annotations

import shutil
import subprocess
from functools import cache
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from controller.operator.crds import all_crds
from controller.operator.resources import parse_event, parse_policy_spec
from tests.conftest import REPO
from tests.kube.schema import crd_validator as schema_validator

MANIFESTS = REPO / "manifests"
KUSTOMIZATIONS = ["base", "examples/casino", "overlays/dev", "overlays/prod"]
K8S_VERSIONS = ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0"]
CUSTOM_KINDS = {"ScalingPolicy": "scalingpolicies.yaml", "TrafficEvent": "trafficevents.yaml"}
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@cache
def render(path: str) -> list[dict[str, Any]]:
    """`kubectl kustomize` output as a list of documents."""
    result = subprocess.run([KUBECTL, "kustomize", str(MANIFESTS / path)], capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def crd_validator(kind: str) -> jsonschema.Draft202012Validator:
    return schema_validator(all_crds()[CUSTOM_KINDS[kind]])


@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_kustomization_renders(path: str) -> None:
    docs = render(path)
    assert docs and all("kind" in d and "apiVersion" in d for d in docs)


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("path", KUSTOMIZATIONS)
def test_builtin_kinds_validate_strictly(path: str, version: str) -> None:
    checked = 0
    for doc in render(path):
        if doc["kind"] in CUSTOM_KINDS:
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            where = f"{path} {doc['kind']}/{doc['metadata']['name']} on {version}"
            pytest.fail(f"{where}: {exc.message} at {list(exc.path)}")
        checked += 1
    assert checked > 0


def test_every_example_custom_resource_matches_its_crd_and_model() -> None:
    seen = {kind: 0 for kind in CUSTOM_KINDS}
    for doc in render("overlays/dev"):
        if doc["kind"] not in CUSTOM_KINDS:
            continue
        errors = sorted(crd_validator(doc["kind"]).iter_errors(doc), key=str)
        assert not errors, f"{doc['metadata']['name']}: {errors[0].message} at {list(errors[0].path)}"
        if doc["kind"] == "ScalingPolicy":
            parse_policy_spec(doc["spec"])
        else:
            parse_event(doc)
        seen[doc["kind"]] += 1
    assert seen["ScalingPolicy"] >= 2 and seen["TrafficEvent"] >= 1


@pytest.mark.parametrize(
    ("kind", "patch", "path"),
    [
        ("ScalingPolicy", {"mode": "Aggressive"}, ["spec", "mode"]),
        ("ScalingPolicy", {"leadTime": "soon"}, ["spec", "leadTime"]),
        ("ScalingPolicy", {"capacityPerReplica": 0}, ["spec", "capacityPerReplica"]),
        ("ScalingPolicy", {"headroomQuantile": 0.97}, ["spec", "headroomQuantile"]),
        ("ScalingPolicy", {"targetRef": {"kind": "deployment", "name": "x"}}, ["spec", "targetRef", "kind"]),
        ("ScalingPolicy", {"targetRef": {"apiVersion": "v1", "kind": "Pod", "name": "x"}},
         ["spec", "targetRef", "apiVersion"]),
        ("ScalingPolicy", {"costs": {"unservedRequest": 0, "replicaHour": 1}}, ["spec", "costs", "unservedRequest"]),
        ("ScalingPolicy", {"costs": {"unservedRequest": 0.01}}, ["spec", "costs"]),
        ("TrafficEvent", {"expectedLift": -1}, ["spec", "expectedLift"]),
        ("TrafficEvent", {"start": "tomorrow"}, ["spec", "start"]),
    ],
)
def test_crd_schema_rejects_bad_custom_resources(kind: str, patch: dict[str, Any], path: list[str]) -> None:
    doc = next(d for d in render("examples/casino") if d["kind"] == kind)
    bad = {**doc, "spec": {**doc["spec"], **patch}}
    errors = list(crd_validator(kind).iter_errors(bad))
    assert errors and any(list(e.absolute_path)[: len(path)] == path for e in errors), [e.message for e in errors]


def _rules(doc: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {
        (g, r, v) for rule in doc["rules"] for g in rule["apiGroups"] for r in rule["resources"] for v in rule["verbs"]
    }


def test_rbac_is_least_privilege() -> None:
    docs = render("base")
    cluster_role = next(d for d in docs if d["kind"] == "ClusterRole")
    granted = _rules(cluster_role)
    assert not any("*" in item for triple in granted for item in triple)
    # Whole workloads: only listed and watched (the operator's cache of their replicas), never written.
    assert {(r, v) for _, r, v in granted if r in ("deployments", "statefulsets")} == {
        (r, v) for r in ("deployments", "statefulsets") for v in ("list", "watch")}, "workloads read-only"
    assert ("apps", "deployments/scale", "patch") in granted and ("", "events", "create") in granted
    assert {v for g, r, v in granted if r == "events"} == {"create"}
    role = next(d for d in docs if d["kind"] == "Role")
    assert role["metadata"]["namespace"] == "pitboss-system"
    assert {r for _, r, _ in _rules(role)} == {"leases"}
    assert not any(r for _, r, _ in granted if r == "leases"), "leases only in the operator's own namespace"


def test_operator_deployment_is_hardened() -> None:
    for path in ("base", "overlays/prod"):
        dep = next(d for d in render(path) if d["kind"] == "Deployment" and d["metadata"]["name"] == "pitboss-operator")
        pod = dep["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert dep["spec"]["replicas"] == 2
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
        assert container["resources"]["requests"] and container["resources"]["limits"]
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    dev = next(d for d in render("overlays/dev")
               if d["kind"] == "Deployment" and d["metadata"]["name"] == "pitboss-operator")
    assert dev["spec"]["replicas"] == 1
    assert "--log-level=DEBUG" in dev["spec"]["template"]["spec"]["containers"][0]["args"]


def test_committed_crds_are_the_generated_ones() -> None:
    from controller.operator.crds import render as render_crd

    for name, crd in all_crds().items():
        committed = (MANIFESTS / "crds" / name).read_text(encoding="utf-8")
        stale = f"manifests/crds/{name} is stale: run `pitboss operator crds --out manifests/crds`"
        assert committed == render_crd(crd), stale


def test_bundled_schema_versions_cover_the_range() -> None:
    from kubernetes_validate import utils

    bundled = {utils.major_minor(v) for v in utils.all_versions()}
    assert {utils.major_minor(v) for v in K8S_VERSIONS} <= bundled


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_strict_validation_catches_unknown_fields(version: str) -> None:
    """The validator is really strict: a misspelled field in the operator Deployment fails."""
    dep = next(d for d in render("base") if d["kind"] == "Deployment")
    bad = {**dep, "spec": {**dep["spec"], "replicaz": 2}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, version, strict=True)
