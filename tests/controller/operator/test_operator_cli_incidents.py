"""`pitboss operator run` incident flags through typer's CliRunner: validation and one wired cycle.

The cycle runs against the strict emulator with the real SQLite log and the session's real
Alertmanager (tests/harness.py); `--once` delivers inline at the end of its cycle.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from typer.testing import CliRunner

from cli.app import app
from controller.incidents.alertmanager import AlertmanagerClient
from tests.kube.fixtures import NAMESPACE, SYSTEM_NAMESPACE, create, deployment, scaling_policy, write_kubeconfig

runner = CliRunner()


@pytest.mark.parametrize(
    ("flags", "field", "detail"),
    [
        (["--alertmanager-url", "alertmanager:9093"], "--alertmanager-url", "http:// or https://"),
        (["--alertmanager-timeout", "soon"], "--alertmanager-timeout", "duration"),
        (["--alertmanager-timeout", "0s"], "--alertmanager-timeout", "100ms..60s"),
        (["--alertmanager-timeout", "5m"], "--alertmanager-timeout", "100ms..60s"),
        (["--incidents-db", "{tmp}"], "--incidents-db", "directory"),
        (["--incidents-db", "{tmp}/garbage.db"], "--incidents-db", "not a Pitboss incident log"),
        (["--incidents-db", "{tmp}/file/sub/x.db"], "--incidents-db", "cannot create directory"),
    ],
)
def test_run_rejects_bad_incident_flags(kube: Any, tmp_path: Path, flags: list[str], field: str,
                                        detail: str) -> None:
    _, url = kube
    (tmp_path / "garbage.db").write_bytes(b"this is not an SQLite database at all, just bytes" * 4)
    (tmp_path / "file").write_text("a file where a directory is needed")
    args = [f.replace("{tmp}", str(tmp_path)) for f in flags]
    result = runner.invoke(app, ["operator", "run", "--once", "--kubeconfig", str(write_kubeconfig(tmp_path, url)),
                                 *args], env={"KUBERNETES_SERVICE_HOST": ""})
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line
    assert field in line and detail in line


@pytest.mark.alertmanager
def test_run_once_records_delivers_and_lists_the_incident(kube: Any, api: Any, tmp_path: Path,
                                                          alertmanager: Any) -> None:
    emu, url = kube
    create(api, deployment("cli-incidents-api", 3))
    create(api, scaling_policy("cli-incidents", {
        "targetRef": {"kind": "Deployment", "name": "cli-incidents-api"},
        "metric": {"promql": "sum(rate(x[1m]))"}, "capacityPerReplica": 100}))
    db = tmp_path / "var" / "incidents.db"
    result = runner.invoke(app, ["operator", "run", "--once", "--kubeconfig", str(write_kubeconfig(tmp_path, url)),
                                 "--lease-namespace", SYSTEM_NAMESPACE, "--identity", "cli-incidents",
                                 "--incidents-db", str(db)],
                           env={"KUBERNETES_SERVICE_HOST": "", "PITBOSS_ALERTMANAGER_URL": alertmanager.url})
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split()).replace("log / ", "log /")  # rich wraps long lines
    assert f"incidents: 1 firing (log {db})" in out and "undelivered" not in out

    # The local log, read by `pitboss incidents list` (same file).
    listed = runner.invoke(app, ["incidents", "list", "--json", "--state", "firing", "--db", str(db)])
    assert listed.exit_code == 0, listed.output
    (row,) = yaml.safe_load(listed.stdout)
    assert row["alertname"] == "MetricsUnavailable" and row["labels"]["policy"] == "cli-incidents"
    assert "--prometheus-url" in row["description"]
    # A Kubernetes Event on the policy (one: the loop's own Warning is not repeated) ...
    warnings = [e for e in emu.list("v1", "events", NAMESPACE)
                if e["reason"] == "MetricsUnavailable" and e["involvedObject"]["name"] == "cli-incidents"]
    assert len(warnings) == 1 and f"id={row['id']}" in warnings[0]["message"]
    # ... and the alert in Alertmanager.
    client = AlertmanagerClient(alertmanager.url)
    try:
        (alert,) = client.alerts(filters=['policy="cli-incidents"'])
    finally:
        client.close()
    assert alert["labels"]["pitboss_id"] == row["id"] and alert["labels"]["alertname"] == "MetricsUnavailable"
