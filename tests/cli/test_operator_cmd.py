"""`pitboss operator run | crds | validate` through typer's CliRunner (and one real process for SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.app import app
from controller.operator.crds import all_crds
from tests.conftest import REPO
from tests.kube.fixtures import (
    NAMESPACE,
    SYSTEM_NAMESPACE,
    api,
    create,
    deployment,
    kube,
    scaling_policy,
    write_kubeconfig,
)

__all__ = ["api", "kube"]
runner = CliRunner()


def test_crds_prints_the_generated_crds() -> None:
    result = runner.invoke(app, ["operator", "crds"])
    assert result.exit_code == 0
    docs = [d for d in yaml.safe_load_all(result.stdout) if d]
    assert [d["metadata"]["name"] for d in docs] == [c["metadata"]["name"] for c in all_crds().values()]


def test_crds_out_writes_files(tmp_path: Path) -> None:
    result = runner.invoke(app, ["operator", "crds", "--out", str(tmp_path / "crds")])
    assert result.exit_code == 0
    assert (tmp_path / "crds" / "scalingpolicies.yaml").read_text() == \
        (REPO / "manifests" / "crds" / "scalingpolicies.yaml").read_text()


def test_validate_accepts_the_examples() -> None:
    files = [str(REPO / "manifests/examples/casino" / f) for f in ("scalingpolicies.yaml", "trafficevents.yaml")]
    result = runner.invoke(app, ["operator", "validate", *files])
    assert result.exit_code == 0 and "4 resource(s) valid" in result.stdout


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"kind": "ScalingPolicy", "metadata": {"name": "p"},
          "spec": {"targetRef": {"kind": "Deployment", "name": "a"}, "metric": {"promql": "up"},
                   "capacityPerReplica": 10, "leadTime": "soon"}},
         "ScalingPolicy/p, field 'x'"),
        ({"kind": "TrafficEvent", "metadata": {"name": "e"},
          "spec": {"kind": "promo", "start": "2026-11-27T20:00:00Z", "end": "2026-11-27T19:00:00Z"}},
         "TrafficEvent/e"),
    ],
)
def test_validate_rejects_bad_resources_with_one_line(tmp_path: Path, doc: dict[str, Any], expected: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(doc))
    result = runner.invoke(app, ["operator", "validate", str(path)])
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert expected.split(",")[0] in line
    assert ("spec.leadTime" in line) if doc["kind"] == "ScalingPolicy" else ("spec.end" in line)


def test_validate_rejects_unreadable_and_non_yaml(tmp_path: Path) -> None:
    bad = tmp_path / "x.yaml"
    bad.write_text("a: [unclosed")
    for args in (["operator", "validate", str(tmp_path / "missing.yaml")], ["operator", "validate", str(bad)]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2 and result.stderr.startswith("error: ")


@pytest.mark.parametrize(
    ("flags", "field"),
    [
        (["--sync-period", "soon"], "--sync-period"),
        (["--sync-period", "0s"], "--sync-period"),
        (["--lease-duration", "0.5s"], "--lease-duration"),
        (["--renew-deadline", "15s"], "--renew-deadline"),
        (["--lease-duration", "15s", "--retry-period", "9s"], "--renew-deadline"),
        (["--retry-period", "0s"], "--retry-period"),
        (["--alert-resend-interval", "0.5s"], "--alert-resend-interval"),
        (["--metrics-port", "70000"], "--metrics-port"),
        (["--log-level", "LOUD"], "--log-level"),
        (["--native-threads", "-1"], "--native-threads"),
        (["--write-concurrency", "0"], "--write-concurrency"),
        (["--write-concurrency", "65"], "--write-concurrency"),
        (["--cache-max-stale", "-5s"], "--cache-max-stale"),
        (["--cache-max-stale", "soon"], "--cache-max-stale"),
        (["--status-max-age", "-1m"], "--status-max-age"),
        (["--status-max-age", "often"], "--status-max-age"),
        (["--fit-budget", "0s"], "--fit-budget"),
        (["--fit-budget", "lots"], "--fit-budget"),
        (["--kubeconfig", "/nonexistent/kubeconfig"], "--kubeconfig"),
    ],
)
def test_run_rejects_bad_flags(flags: list[str], field: str) -> None:
    result = runner.invoke(app, ["operator", "run", "--once", *flags], env={"KUBERNETES_SERVICE_HOST": ""})
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: ") and field in result.stderr


def test_run_once_against_the_emulator(kube: Any, api: Any, tmp_path: Path) -> None:
    emu, url = kube
    create(api, deployment("slots-api", 3))
    create(api, scaling_policy("slots", {"targetRef": {"kind": "Deployment", "name": "slots-api"},
                                         "metric": {"promql": "sum(rate(x[1m]))"}, "capacityPerReplica": 100}))
    result = runner.invoke(app, ["operator", "run", "--once", "--kubeconfig", str(write_kubeconfig(tmp_path, url)),
                                 "--lease-namespace", SYSTEM_NAMESPACE, "--identity", "cli-once",
                                 "--incidents-db", str(tmp_path / "incidents.db")])
    assert result.exit_code == 0, result.output
    assert "slots" in result.stdout and "MetricsUnavailable" in result.stdout
    status = emu.get("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, "slots")["status"]
    metrics = {c["type"]: c for c in status["conditions"]}["MetricsAvailable"]
    assert metrics["status"] == "False" and "--prometheus-url" in metrics["message"]
    assert emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")["spec"]["replicas"] == 3  # held
    lease = emu.get("coordination.k8s.io/v1", "leases", SYSTEM_NAMESPACE, "pitboss-operator")
    assert lease["spec"]["holderIdentity"] in ("", None)  # --once releases what it took


def test_sigterm_releases_the_lease_and_exits_cleanly(kube: Any, tmp_path: Path) -> None:
    emu, url = kube
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    env["PITBOSS_INCIDENTS_DB"] = str(tmp_path / "incidents.db")  # not the repo's var/incidents.db
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "pitboss"), "operator", "run",
         "--kubeconfig", str(write_kubeconfig(tmp_path, url)),
         "--sync-period", "1s", "--lease-duration", "5s", "--lease-namespace", SYSTEM_NAMESPACE,
         "--identity", "cli-run", "--log-level", "WARNING"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            lease = emu.get("coordination.k8s.io/v1", "leases", SYSTEM_NAMESPACE, "pitboss-operator")
            if lease and lease["spec"].get("holderIdentity") == "cli-run":
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        else:
            pytest.fail("the operator never took the lease")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    lease = emu.get("coordination.k8s.io/v1", "leases", SYSTEM_NAMESPACE, "pitboss-operator")
    assert lease["spec"]["holderIdentity"] in ("", None)


@pytest.mark.parametrize(("flags", "expected"), [([], True), (["--no-spread-updates"], False)])
def test_run_spreads_the_forecast_updates_unless_told_not_to(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path, flags: list[str], expected: bool) -> None:
    """What `pitboss operator run` hands ``build_operator`` (stopped there: no cluster needed)."""
    import controller.operator.app

    seen: dict[str, Any] = {}

    def build(*_args: Any, **kwargs: Any) -> None:
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(controller.operator.app, "build_operator", build)
    kubeconfig = write_kubeconfig(tmp_path, "http://127.0.0.1:9")
    result = runner.invoke(app, ["operator", "run", "--once", "--kubeconfig", str(kubeconfig),
                                 "--incidents-db", str(tmp_path / "incidents.db"), *flags])
    assert result.exit_code == 0, result.output
    assert seen["spread_updates"] is expected
