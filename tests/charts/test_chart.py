"""charts/pitboss through the real Helm v4 engine: strict lint, renders, schema, CRDs, package.

Every object of Kubernetes' own kinds, rendered with the defaults and with every option on, passes
kubernetes-validate --strict for 1.29 and 1.33; the CRDs equal the generated ones; bad values are
refused at install naming the field; `helm package` output loads back and renders the same.
"""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import helm_python
import kubernetes_validate
import pytest
import yaml

from controller.operator.crds import all_crds
from tests.charts.chart import ALL_OPTIONS, CHART, NAMESPACE, find, is_builtin, render
from tests.conftest import REPO
from tests.harness import binary

K8S_VERSIONS = ["1.29.0", "1.33.0"]
HELM_KEYS = ("helm.sh/chart", "app.kubernetes.io/managed-by", "app.kubernetes.io/instance",
             "app.kubernetes.io/version", "app.kubernetes.io/part-of")


def test_lint_strict_passes() -> None:
    for values in ({}, ALL_OPTIONS):
        report = helm_python.lint(CHART, values, strict=True, namespace=NAMESPACE)
        problems = [m for m in report["messages"] if m["severity"] >= 2]
        assert report["errors"] == [] and problems == [], report


def test_lint_strict_catches_a_broken_template(tmp_path: Path) -> None:
    broken = tmp_path / "pitboss"
    shutil.copytree(CHART, broken)
    (broken / "templates" / "broken.yaml").write_text("apiVersion: v1\nkind: ConfigMap\nmetadata:\n"
                                                      "  name: {{ .Values.nope.deeper }}\n")
    report = helm_python.lint(broken, strict=True)
    assert report["errors"] or any(m["severity"] >= 2 for m in report["messages"])


def _kinds(docs: list[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for doc in docs:
        counts[doc["kind"]] = counts.get(doc["kind"], 0) + 1
    return counts


def test_defaults_render_the_operator_only() -> None:
    kinds = _kinds(render())
    assert kinds == {"CustomResourceDefinition": 2, "ServiceAccount": 1, "ClusterRole": 1, "ClusterRoleBinding": 1,
                     "Role": 1, "RoleBinding": 1, "Deployment": 1, "Service": 1, "PodDisruptionBudget": 1}


def test_every_option_renders_its_objects() -> None:
    docs = render(ALL_OPTIONS)
    kinds = _kinds(docs)
    assert kinds["ServiceMonitor"] == 2 and kinds["PrometheusRule"] == 2 and kinds["CronJob"] == 1
    assert kinds["ScalingPolicy"] == 2 and kinds["TrafficEvent"] == 2 and kinds["StatefulSet"] == 2
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert all(d["metadata"]["labels"]["release"] == "kps" for d in docs if d["kind"] == kind)
    pod = find(docs, "Deployment", "pitboss-operator")["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"} and pod["tolerations"][0]["key"] == "dedicated"
    spread = pod["topologySpreadConstraints"][0]
    assert spread["labelSelector"]["matchLabels"]["app.kubernetes.io/name"] == "pitboss-operator"
    args = pod["containers"][0]["args"]
    assert "--alertmanager-url=http://alertmanager.monitoring.svc:9093" in args and "--log-level=DEBUG" in args


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("options", ["defaults", "all"])
def test_builtin_kinds_validate_strictly(options: str, version: str) -> None:
    docs = render(ALL_OPTIONS if options == "all" else {})
    checked = 0
    for doc in docs:
        if not is_builtin(doc):
            continue
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{doc['kind']}/{doc['metadata']['name']} on {version}: {exc.message} at {list(exc.path)}")
        checked += 1
    # every object but the Prometheus Operator kinds and CRs; one dashboard ConfigMap per committed dashboard
    dashboards = len(list((REPO / "dashboards" / "grafana").glob("*.json")))
    assert dashboards >= 5
    assert checked == (10 if options == "defaults" else 24 + dashboards)


def _without_helm_metadata(doc: dict[str, Any]) -> dict[str, Any]:
    doc = copy.deepcopy(doc)
    meta = doc["metadata"]
    for key in HELM_KEYS:
        meta.get("labels", {}).pop(key, None)
    meta.get("annotations", {}).pop("helm.sh/resource-policy", None)
    for key in ("labels", "annotations"):
        if key in meta and not meta[key]:
            del meta[key]
    return doc


def test_rendered_crds_equal_the_generated_ones() -> None:
    rendered = {d["metadata"]["name"]: d for d in render() if d["kind"] == "CustomResourceDefinition"}
    generated = {crd["metadata"]["name"]: crd for crd in all_crds().values()}
    assert set(rendered) == set(generated) == {"scalingpolicies.pitboss.dev", "trafficevents.pitboss.dev"}
    for name, crd in generated.items():
        assert _without_helm_metadata(rendered[name]) == json.loads(json.dumps(crd)), name
        assert rendered[name]["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def test_crds_install_and_keep_switches() -> None:
    assert not [d for d in render({"crds": {"install": False}}) if d["kind"] == "CustomResourceDefinition"]
    loose = [d for d in render({"crds": {"keep": False}}) if d["kind"] == "CustomResourceDefinition"]
    assert len(loose) == 2 and all("annotations" not in d["metadata"] for d in loose)


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"operator": {"replicas": "two"}}, "/operator/replicas"),
        ({"operator": {"replicaz": 2}}, "replicaz"),
        ({"operator": {"syncPeriod": "soon"}}, "/operator/syncPeriod"),
        ({"operator": {"logLevel": "LOUD"}}, "/operator/logLevel"),
        ({"operator": {"prometheusUrl": "prometheus:9090"}}, "/operator/prometheusUrl"),
        ({"image": {"pullPolicy": "Sometimes"}}, "/image/pullPolicy"),
        ({"crds": {"keep": "yes"}}, "/crds/keep"),
        ({"serviceMonitor": {"additionalLabels": {"release": 1}}}, "/serviceMonitor/additionalLabels/release"),
        ({"syncEvents": {"days": 400}}, "/syncEvents/days"),
        ({"casino": {"namespace": "Casino_NS"}}, "/casino/namespace"),
    ],
)
def test_schema_refuses_bad_values_naming_the_field(values: dict[str, Any], field: str) -> None:
    with helm_python.Chart.load(CHART) as chart, pytest.raises(helm_python.HelmValuesError) as info:
        chart.render(values, name="pitboss", namespace=NAMESPACE)
    assert field in str(info.value), str(info.value)


def test_sync_events_without_a_casino_url_fails_naming_it() -> None:
    with helm_python.Chart.load(CHART) as chart, pytest.raises(helm_python.HelmRenderError) as info:
        chart.render({"syncEvents": {"enabled": True}}, name="pitboss", namespace=NAMESPACE)
    assert "syncEvents.casinoUrl: required" in str(info.value)


def test_sync_events_cron_job_mirrors_the_cli() -> None:
    docs = render(ALL_OPTIONS)
    job = find(docs, "CronJob")
    container = job["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["operator", "sync-events", "--casino-url=http://casino-api.casino.svc",
                                 "--namespace=casino", "--days=30", "--retention=14d", "--label=team=growth"]
    role = find(docs, "Role", "pitboss-sync-events")
    assert role["metadata"]["namespace"] == "casino"
    assert {v for r in role["rules"] for v in r["verbs"]} <= {"list", "create", "patch", "delete"}
    component = REPO / "manifests" / "components" / "sync-events" / "rbac.yaml"
    shipped = next(d for d in yaml.safe_load_all(component.read_text()) if d and d["kind"] == "Role")
    assert role["rules"] == shipped["rules"]  # one source of truth: the kustomize component


def test_the_sync_events_cli_accepts_the_cron_jobs_arguments() -> None:
    """Each flag the CronJob passes exists in `pitboss operator sync-events` (help lists it)."""
    from typer.testing import CliRunner

    from cli.app import app

    help_text = CliRunner().invoke(app, ["operator", "sync-events", "--help"], env={"COLUMNS": "200"}).output
    args = find(render(ALL_OPTIONS), "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0][
        "args"]
    for flag in {a.split("=", 1)[0] for a in args if a.startswith("--")}:
        assert flag in help_text, flag


def test_prometheus_rules_are_the_shipped_files_and_pass_promtool(tmp_path: Path) -> None:
    docs = render(ALL_OPTIONS)
    for key in ("operator", "casino"):
        rule = find(docs, "PrometheusRule", f"pitboss-{key}")
        source = yaml.safe_load((CHART.parents[1] / "manifests" / "prometheus" / f"{key}-rules.yaml").read_text())
        assert rule["spec"]["groups"] == source["groups"]
        path = tmp_path / f"{key}.yaml"
        path.write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}))
        result = subprocess.run([binary("promtool"), "check", "rules", str(path)], capture_output=True, text=True,
                                timeout=60, check=False)
        assert result.returncode == 0, result.stdout + result.stderr


def test_dashboards_become_sidecar_config_maps(tmp_path: Path) -> None:
    """The mechanism on a fixture dashboard (the chart's own files/dashboards/ may still be empty)."""
    chart = tmp_path / "pitboss"
    shutil.copytree(CHART, chart)
    board = {"uid": "pitboss-fixture", "title": "Fixture", "panels": [{"type": "timeseries", "title": "a | b"}]}
    (chart / "files" / "dashboards").mkdir(exist_ok=True)
    (chart / "files" / "dashboards" / "pitboss-fixture.json").write_text(json.dumps(board, indent=2) + "\n")
    values = {"dashboards": {"enabled": True, "label": "grafana_dashboard", "labelValue": "1",
                             "annotations": {"grafana_folder": "Pitboss"}, "namespace": "monitoring"}}
    maps = [d for d in render(values, chart=chart) if d["kind"] == "ConfigMap"]
    assert len(maps) == 1 + len(list((CHART / "files" / "dashboards").glob("*.json")))
    cm = next(m for m in maps if "pitboss-fixture.json" in m["data"])
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1" and cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Pitboss"}
    assert json.loads(cm["data"]["pitboss-fixture.json"]) == board
    custom = render({"dashboards": {"enabled": True, "label": "dash", "labelValue": "yes"}}, chart=chart)
    assert next(d for d in custom if d["kind"] == "ConfigMap")["metadata"]["labels"]["dash"] == "yes"
    assert not [d for d in render({}, chart=chart) if d["kind"] == "ConfigMap"]


def test_release_name_and_namespace_flow_into_names_and_bindings() -> None:
    docs = render({}, name="blue", namespace="ops")
    dep = find(docs, "Deployment", "blue-pitboss-operator")
    assert dep["metadata"]["namespace"] == "ops"
    binding = find(docs, "ClusterRoleBinding", "blue-pitboss-operator")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "blue-pitboss-operator", "namespace": "ops"}]
    assert find(docs, "Role")["metadata"]["namespace"] == "ops"
    selector = dep["spec"]["selector"]["matchLabels"]
    assert selector == {"app.kubernetes.io/name": "pitboss-operator", "app.kubernetes.io/instance": "blue"}
    assert find(docs, "Service")["spec"]["selector"] == selector
    assert find(docs, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] == selector


def test_one_replica_renders_no_disruption_budget_and_digest_pins_the_image() -> None:
    digest = "sha256:" + "a" * 64
    docs = render({"operator": {"replicas": 1}, "image": {"digest": digest}})
    assert not [d for d in docs if d["kind"] == "PodDisruptionBudget"]
    image = find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"ghcr.io/pitboss/pitboss@{digest}"


def test_package_loads_back_and_renders_the_same(tmp_path: Path) -> None:
    archive = Path(helm_python.package(CHART, destination=tmp_path))
    assert archive.name == "pitboss-0.1.0.tgz" and archive.is_file()
    with helm_python.Chart.load(archive) as packed:
        assert packed.metadata["appVersion"] == "0.1.0" and packed.schema is not None
        assert {f["name"] for f in packed.files} >= {"files/rbac.yaml", "files/crds/scalingpolicies.yaml",
                                                     "README.md"}
    assert render(ALL_OPTIONS, chart=archive) == render(ALL_OPTIONS)
    assert helm_python.digest(archive).startswith("sha256:")
