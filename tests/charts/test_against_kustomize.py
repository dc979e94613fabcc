"""The chart and the kustomize manifests install the same Pitboss.

The core objects of the chart, with the values of the prod overlay, equal what `kubectl kustomize
manifests/overlays/prod` renders (same RBAC rules, container args, env, probes, security contexts,
volumes, Service and PodDisruptionBudget); the chart's demo casino equals manifests/examples/casino;
the Prometheus Operator component carries the same rules and scrapes the same Services; the
sync-events Role is enough for `sync_events` against the strict emulator with RBAC enforced.
"""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml

from controller.operator.calendar_sync import CalendarEntry, retention_for, sync_events
from controller.targets.base import TargetForbidden
from tests.charts.chart import ALL_OPTIONS, find, render
from tests.charts.test_chart import HELM_KEYS
from tests.conftest import REPO
from tests.kube.fixtures import NAMESPACE, api_client_for
from tests.manifests.test_kustomize import render as kustomize

PROD_VALUES: dict[str, Any] = {
    "operator": {
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "1Gi"}},
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "ScheduleAnyway"}],
    },
}
CONTAINER_FIELDS = ("image", "imagePullPolicy", "args", "env", "ports", "livenessProbe", "readinessProbe",
                    "resources", "securityContext", "volumeMounts")
POD_FIELDS = ("serviceAccountName", "automountServiceAccountToken", "terminationGracePeriodSeconds",
              "securityContext", "volumes")


def _without_selectors(constraints: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in c.items() if k != "labelSelector"} for c in constraints]


def test_core_objects_equal_the_prod_overlay() -> None:
    chart, kust = render(PROD_VALUES), kustomize("overlays/prod")
    core = {(d["kind"], d["metadata"]["name"]) for d in kust if d["kind"] != "Namespace"}
    assert {(d["kind"], d["metadata"]["name"]) for d in chart} == core
    for kind in ("ClusterRole", "Role"):
        assert find(chart, kind)["rules"] == find(kust, kind)["rules"], kind
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        assert find(chart, kind)["subjects"] == find(kust, kind)["subjects"]
        assert find(chart, kind)["roleRef"] == find(kust, kind)["roleRef"]
    dep_c, dep_k = find(chart, "Deployment"), find(kust, "Deployment")
    assert dep_c["spec"]["replicas"] == dep_k["spec"]["replicas"] == 2
    pod_c, pod_k = dep_c["spec"]["template"]["spec"], dep_k["spec"]["template"]["spec"]
    for field in POD_FIELDS:
        assert pod_c[field] == pod_k[field], field
    assert _without_selectors(pod_c["topologySpreadConstraints"]) == _without_selectors(
        pod_k["topologySpreadConstraints"])
    anti_c = pod_c["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    anti_k = pod_k["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]
    assert anti_c["podAffinityTerm"]["topologyKey"] == anti_k["podAffinityTerm"]["topologyKey"]
    (con_c,), (con_k,) = pod_c["containers"], pod_k["containers"]
    for field in CONTAINER_FIELDS:
        assert con_c[field] == con_k[field], field
    svc_c, svc_k = find(chart, "Service"), find(kust, "Service")
    assert svc_c["spec"]["ports"] == svc_k["spec"]["ports"]
    assert svc_c["metadata"]["annotations"] == svc_k["metadata"]["annotations"]
    assert find(chart, "PodDisruptionBudget")["spec"]["minAvailable"] == find(kust, "PodDisruptionBudget")["spec"][
        "minAvailable"]
    # The chart's selectors are kustomize's plus the release, and they select the pods they should.
    pod_labels = dep_c["spec"]["template"]["metadata"]["labels"]
    for selector in (dep_c["spec"]["selector"]["matchLabels"], svc_c["spec"]["selector"],
                     find(chart, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"]):
        assert dep_k["spec"]["selector"]["matchLabels"].items() <= selector.items() <= pod_labels.items()


def test_rbac_differs_when_the_source_does(tmp_path: Any) -> None:
    """The comparison above can fail: a verb added to the chart's copy breaks it."""
    kust_rules = find(kustomize("base"), "ClusterRole")["rules"]
    widened = copy.deepcopy(kust_rules)
    widened[0]["verbs"].append("delete")
    assert widened != find(render(), "ClusterRole")["rules"] == kust_rules


def _strip(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    labels = doc["metadata"].get("labels", {})
    for key in HELM_KEYS:
        labels.pop(key, None)
    if "labels" in doc["metadata"] and not labels:
        del doc["metadata"]["labels"]
    annotations = doc["metadata"].get("annotations", {})
    if doc["kind"] in ("ScalingPolicy", "TrafficEvent"):  # hooks: their kinds exist once the CRDs are applied
        assert annotations.pop("helm.sh/hook") == "post-install,post-upgrade"
        assert annotations.pop("helm.sh/hook-delete-policy") == "before-hook-creation"
    if "annotations" in doc["metadata"] and not annotations:
        del doc["metadata"]["annotations"]
    return doc


def test_demo_casino_equals_the_kustomize_example() -> None:
    chart = [d for d in render({"casino": {"enabled": True}}) if d["metadata"].get("namespace") == "casino"
             or (d["kind"] == "Namespace" and d["metadata"]["name"] == "casino")]
    kust = kustomize("examples/casino")
    key = lambda d: (d["kind"], d["metadata"]["name"])  # noqa: E731
    assert sorted(map(key, chart)) == sorted(map(key, kust))
    by_key = {key(d): _strip(d) for d in chart}
    for doc in kust:
        assert by_key[key(doc)] == doc, key(doc)


def test_demo_casino_moves_with_its_namespace_and_image() -> None:
    values = {"casino": {"enabled": True, "namespace": "demo", "createNamespace": False},
              "image": {"repository": "registry.example.com/pitboss", "tag": "dev"}}
    docs = render(values)
    assert not [d for d in docs if d["kind"] == "Namespace"]
    api = find(docs, "Deployment", "casino-api")
    assert api["metadata"]["namespace"] == "demo"
    assert api["spec"]["template"]["spec"]["containers"][0]["image"] == "registry.example.com/pitboss:dev"
    redis = find(docs, "Deployment", "redis")
    assert redis["spec"]["template"]["spec"]["containers"][0]["image"] == "docker.io/library/redis:7.4"


def test_prometheus_operator_component_matches_the_chart_and_the_sources() -> None:
    docs = kustomize("overlays/monitoring")
    chart = render(ALL_OPTIONS)
    for key in ("operator", "casino"):
        source = yaml.safe_load((REPO / "manifests" / "prometheus" / f"{key}-rules.yaml").read_text())["groups"]
        comp = find(docs, "PrometheusRule", f"pitboss-{key}")
        assert comp["spec"]["groups"] == source == find(chart, "PrometheusRule", f"pitboss-{key}")["spec"]["groups"]
        assert comp["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    service = find(docs, "Service", "pitboss-operator-metrics")
    monitor = find(docs, "ServiceMonitor", "pitboss-operator")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"]["matchNames"] == [service["metadata"]["namespace"]]
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    casino_svc = find(kustomize("examples/casino"), "Service", "casino-api")
    casino_mon = find(docs, "ServiceMonitor", "casino-api")
    assert casino_mon["spec"]["selector"]["matchLabels"].items() <= casino_svc["metadata"]["labels"].items()
    assert casino_mon["spec"]["namespaceSelector"]["matchNames"] == [casino_svc["metadata"]["namespace"]]
    assert casino_mon["spec"]["endpoints"][0]["port"] in {p["name"] for p in casino_svc["spec"]["ports"]}
    for mon in (monitor, casino_mon):
        twin = find(chart, "ServiceMonitor", mon["metadata"]["name"])
        assert twin["spec"]["endpoints"] == mon["spec"]["endpoints"]
        assert twin["spec"]["selector"]["matchLabels"].items() >= mon["spec"]["selector"]["matchLabels"].items()


def test_the_chart_sync_events_role_is_enough_for_sync_events(kube: Any) -> None:
    """`sync_events` with the chart's Role as its only grant, on the strict emulator: no 403."""
    emu, url = kube
    role = find(render(ALL_OPTIONS), "Role", "pitboss-sync-events")
    role["metadata"]["namespace"] = NAMESPACE
    token = "system:serviceaccount:pitboss-system:pitboss-sync-events"
    emu.enforce_rbac(token, [role])
    now = datetime.now(UTC).replace(microsecond=0)
    entry = CalendarEntry(id=7, name="Friday Frenzy", kind="tournament", start=now + timedelta(hours=2),
                          end=now + timedelta(hours=4), expected_lift=3.0, services=["casino-api"])
    window = (now - timedelta(days=14), now + timedelta(days=30))
    api = api_client_for(url, token)
    try:
        assert retention_for(api, NAMESPACE, timedelta(days=14))[0] == timedelta(days=14)  # lists ScalingPolicies
        assert sync_events(api, NAMESPACE, [entry], {"team": "growth"}, window=window).created
        moved = entry.model_copy(update={"end": entry.end + timedelta(hours=1)})
        assert sync_events(api, NAMESPACE, [moved], {"team": "growth"}, window=window).updated
        assert sync_events(api, NAMESPACE, [], {"team": "growth"}, window=window).deleted
    finally:
        api.close()
    assert [r for r in emu.log if r.status == 403] == []
    # ...and the Role is really enforced: without it the same call is refused.
    emu.enforce_rbac(token, [])
    api = api_client_for(url, token)
    try:
        with pytest.raises(TargetForbidden, match="403"):
            sync_events(api, NAMESPACE, [entry], {}, window=window)
    finally:
        api.close()
