"""The chart's copies of manifests/ (CRDs, RBAC, rules, dashboards, casino), the values table and the
Dockerfile are current: `scripts/sync_chart.py --check` passes here, and fails naming the file on a
copy of the tree where a source changed."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

CHART = REPO / "charts" / "pitboss"


def _sync(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(root / "scripts" / "sync_chart.py"), *args], cwd=root,
                          capture_output=True, text=True, timeout=120, check=False)


def test_the_copies_are_current() -> None:
    result = _sync(REPO, "--check")
    assert result.returncode == 0, result.stderr


def test_check_names_each_stale_copy_and_sync_repairs_it(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    for part in ("scripts", "charts", "manifests", "dashboards"):
        shutil.copytree(REPO / part, root / part, ignore=shutil.ignore_patterns("__pycache__", "*.whl"))
    for name in ("Containerfile", "Dockerfile"):
        shutil.copy(REPO / name, root / name)
    assert _sync(root, "--check").returncode == 0
    rbac = root / "manifests" / "base" / "rbac.yaml"
    text = rbac.read_text()
    head, sep, tail = text.partition("\n---")  # the ClusterRole comes first; widen its last rule
    cut = head.rindex("verbs: [")
    assert sep, "manifests/base/rbac.yaml: expected the ClusterRole before the first ---"
    rbac.write_text(head[:cut] + 'verbs: ["create", "patch"]' + sep + tail)
    (root / "dashboards" / "grafana").mkdir(parents=True, exist_ok=True)
    (root / "dashboards" / "grafana" / "pitboss-new.json").write_text('{"uid": "pitboss-new"}\n')
    values = root / "charts" / "pitboss" / "values.yaml"
    values.write_text(values.read_text() + "# -- A new knob.\nnewKnob: 3\n")
    (root / "Containerfile").write_text((root / "Containerfile").read_text() + "# changed\n")
    result = _sync(root, "--check")
    assert result.returncode == 1
    for stale in ("charts/pitboss/files/rbac.yaml", "charts/pitboss/files/dashboards/pitboss-new.json",
                  "charts/pitboss/README.md", "Dockerfile"):
        assert f"stale: {stale}" in result.stderr, result.stderr
    assert _sync(root).returncode == 0
    assert _sync(root, "--check").returncode == 0
    rules = yaml.safe_load((root / "charts" / "pitboss" / "files" / "rbac.yaml").read_text())
    assert rules["operator"][-1]["verbs"] == ["create", "patch"]
    assert "| `newKnob` | int | `3` | A new knob. |" in (root / "charts" / "pitboss" / "README.md").read_text()
    (root / "dashboards" / "grafana" / "pitboss-new.json").unlink()
    assert "stale: charts/pitboss/files/dashboards/pitboss-new.json" in _sync(root, "--check").stderr


def test_chart_copies_equal_their_sources() -> None:
    for source, copy in [(REPO / "manifests" / "crds", CHART / "files" / "crds"),
                         (REPO / "manifests" / "examples" / "casino", CHART / "files" / "casino"),
                         (REPO / "dashboards" / "grafana", CHART / "files" / "dashboards")]:
        pattern = "*.json" if source.name == "grafana" else "*.*"  # dashboards/grafana also holds the builder code
        sources = {p.name: p.read_bytes() for p in source.glob(pattern) if p.name != "kustomization.yaml"}
        copies = {p.name: p.read_bytes() for p in copy.glob("*.*")} if copy.is_dir() else {}
        assert copies == sources, copy
    assert (REPO / "Dockerfile").read_bytes() == (REPO / "Containerfile").read_bytes()


def _leaves(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict) and node:
        return [leaf for k, v in node.items() for leaf in _leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def test_every_value_is_documented_and_in_the_schema() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = json.loads((CHART / "values.schema.json").read_text())
    table = (CHART / "README.md").read_text()
    documented = [line.split("`")[1] for line in table.splitlines() if line.startswith("| `")]
    for leaf in _leaves(values):
        assert any(leaf == d or leaf.startswith(d + ".") for d in documented), f"{leaf}: no `# --` comment"
    for key in documented:
        node = schema
        for part in key.split("."):
            assert part in node.get("properties", {}), f"{key}: not in values.schema.json"
            node = node["properties"][part]
