"""Shipping the dashboards: the kustomize component is in step with the JSON and renders; build and pictures.

The ConfigMaps (label ``grafana_dashboard: "1"``) and GrafanaDashboards in
manifests/components/dashboards are regenerated and compared with the
committed files; ``kubectl kustomize`` renders an overlay that uses the
component, and one that changes the label key and value with the patch
docs/dashboards.md shows. ``pitboss dashboards build`` is run through
CliRunner and as a process.
"""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from cli.app import app
from dashboards.grafana import build, layout, manifests
from dashboards.grafana.common import UIDS
from tests.conftest import REPO

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
COMPONENT = REPO / "manifests" / "components" / "dashboards"
runner = CliRunner()


def kustomize(path: Path) -> list[dict[str, Any]]:
    result = subprocess.run([KUBECTL, "kustomize", str(path)], capture_output=True, text=True, timeout=60,
                            check=False)
    assert result.returncode == 0, result.stderr
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def overlay(tmp_path: Path, extra: str = "") -> Path:
    """An overlay outside the repo tree that uses the component (kustomize needs relative paths)."""
    root = tmp_path / "repo"
    shutil.copytree(COMPONENT, root / "components" / "dashboards")
    (root / "overlay").mkdir()
    (root / "overlay" / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nnamespace: monitoring\n"
        "components:\n  - ../components/dashboards\n" + extra)
    return root / "overlay"


def test_component_files_are_generated_from_the_json() -> None:
    generated = manifests.render_component()
    on_disk = {p.name: p.read_text() for p in COMPONENT.iterdir()}
    assert on_disk == generated, "manifests/components/dashboards is stale: run `make dashboards`"


def test_component_renders_a_configmap_and_a_grafanadashboard_per_dashboard(tmp_path: Path) -> None:
    docs = kustomize(overlay(tmp_path))
    cms = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap"}
    gds = {d["metadata"]["name"]: d for d in docs if d["kind"] == "GrafanaDashboard"}
    assert set(gds) == set(UIDS) and len(cms) == len(UIDS)
    for uid in UIDS:
        cm = cms[manifests.configmap_name(uid)]
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["namespace"] == "monitoring"
        assert json.loads(cm["data"][f"{uid}.json"]) == json.loads((build.HERE / f"{uid}.json").read_text())
        gd = gds[uid]
        assert gd["apiVersion"] == "grafana.integreatly.org/v1beta1"
        assert gd["spec"]["configMapRef"] == {"name": cm["metadata"]["name"], "key": f"{uid}.json"}
        assert gd["spec"]["instanceSelector"] == {"matchLabels": {"dashboards": "grafana"}}


def test_the_label_key_and_value_are_changed_by_a_patch(tmp_path: Path) -> None:
    # The patch docs/dashboards.md shows, verbatim.
    patch = (REPO / "docs" / "dashboards.md").read_text().split("<!-- label-patch -->")[1].split("```yaml")[1] \
        .split("```")[0]
    docs = kustomize(overlay(tmp_path, yaml.safe_dump(yaml.safe_load(patch))))
    for cm in (d for d in docs if d["kind"] == "ConfigMap"):
        labels = cm["metadata"]["labels"]
        assert "grafana_dashboard" not in labels and labels["my_dashboards"] == "pitboss"


def test_build_writes_json_manifests_and_pictures(tmp_path: Path) -> None:
    result = runner.invoke(app, ["dashboards", "build", "--out", str(tmp_path / "json"), "--manifests",
                                 str(tmp_path / "component"), "--images", str(tmp_path / "img")])
    assert result.exit_code == 0, result.output
    assert build.load_all(tmp_path / "json") == build.load_all()
    assert {p.name: p.read_text() for p in (tmp_path / "component").iterdir()} == manifests.render_component()
    for uid in UIDS:
        png = (tmp_path / "img" / layout.image_name(uid)).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n"
        width, height = struct.unpack(">II", png[16:24])
        assert width > 800 and height > 300
        assert (REPO / "docs" / "img" / layout.image_name(uid)).exists()  # the committed picture


def test_build_rejects_a_file_as_out_dir(tmp_path: Path) -> None:
    (tmp_path / "f").write_text("")
    result = runner.invoke(app, ["dashboards", "build", "--out", str(tmp_path / "f")])
    assert result.exit_code == 2 and "--out" in result.output and result.output.count("\n") == 1


def test_build_as_a_process(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", "from cli.app import main; main()", "dashboards", "build", "--out",
                           str(tmp_path)], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{u}.json" for u in UIDS)


def test_the_docs_tables_are_generated_from_the_panels() -> None:
    text = (REPO / "docs" / "dashboards.md").read_text()
    section = text.split(layout.BEGIN)[1].split(layout.END)[0]
    assert section == "\n" + layout.docs_section(build.load_all()), "docs/dashboards.md is stale: make dashboards"
