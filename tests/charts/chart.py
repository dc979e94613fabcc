"""Render charts/pitboss with the real Helm v4 engine (helm-python-sdk), for the tests of tests/charts.

``render(values)`` runs ``helm template``'s code path offline (no cluster: ``lookup`` returns
nothing) and returns the parsed documents; ``ALL_OPTIONS`` switches every optional part on.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import helm_python
import yaml

from tests.conftest import REPO

CHART = REPO / "charts" / "pitboss"
RELEASE, NAMESPACE = "pitboss", "pitboss-system"
BUILTIN_GROUPS = {"", "apps", "batch", "policy", "rbac.authorization.k8s.io", "apiextensions.k8s.io"}
ALL_OPTIONS: dict[str, Any] = {
    "serviceMonitor": {"enabled": True, "additionalLabels": {"release": "kps"}},
    "prometheusRule": {"enabled": True, "additionalLabels": {"release": "kps"}},
    "dashboards": {"enabled": True, "annotations": {"grafana_folder": "Pitboss"}},
    "syncEvents": {"enabled": True, "casinoUrl": "http://casino-api.casino.svc", "labels": {"team": "growth"}},
    "casino": {"enabled": True},
    "operator": {
        "priorityClassName": "system-cluster-critical",
        "nodeSelector": {"kubernetes.io/os": "linux"},
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "platform", "effect": "NoSchedule"}],
        "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "topology.kubernetes.io/zone",
                                       "whenUnsatisfiable": "ScheduleAnyway"}],
        "alertmanagerUrl": "http://alertmanager.monitoring.svc:9093",
        "logLevel": "DEBUG",
        "podAnnotations": {"example.com/team": "platform"},
    },
    "imagePullSecrets": [{"name": "regcred"}],
}


def documents(rendered: dict[str, str]) -> list[dict[str, Any]]:
    """The objects of a render, in template order (NOTES.txt left out)."""
    return [doc for path, text in sorted(rendered.items()) if not path.endswith("NOTES.txt")
            for doc in yaml.safe_load_all(text) if doc]


@cache
def _render(chart_dir: str, values_json: str, name: str, namespace: str) -> str:
    with helm_python.Chart.load(chart_dir) as chart:
        return json.dumps(documents(chart.render(json.loads(values_json), name=name, namespace=namespace)))


def render(values: dict[str, Any] | None = None, *, chart: Path = CHART, name: str = RELEASE,
           namespace: str = NAMESPACE) -> list[dict[str, Any]]:
    """Parsed documents of the chart rendered with ``values`` (a fresh copy on every call)."""
    docs: list[dict[str, Any]] = json.loads(_render(str(chart), json.dumps(values or {}, sort_keys=True), name,
                                                    namespace))
    return docs


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, got {[d['metadata']['name'] for d in matches]}"
    return matches[0]


def is_builtin(doc: dict[str, Any]) -> bool:
    """Kubernetes' own kinds (kubernetes-validate has their schemas); CRs of CRDs are not."""
    group = doc["apiVersion"].rpartition("/")[0]
    return group in BUILTIN_GROUPS
