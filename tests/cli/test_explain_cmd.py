"""`pitboss explain` through typer's CliRunner: status.decisions and Events (emulator), operator metrics (Prometheus).

The decisions are the real operator's (tests/cli/cluster_scenario.py); the
metrics are history written with ``promtool tsdb create-blocks-from
openmetrics`` and served by a real Prometheus, so the numbers read back are
known exactly.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from controller.operator.status import MAX_DECISIONS
from tests.cli.cluster_scenario import run_scenario
from tests.controller.operator.harness import EVENT_START
from tests.harness import PrometheusServer, binary, free_port
from tests.kube.fixtures import NAMESPACE, write_kubeconfig

runner = CliRunner()
ENV = {"KUBERNETES_SERVICE_HOST": "", "COLUMNS": "200"}


@pytest.fixture
def kubeconfig(kube: Any, api: Any, tmp_path: Path) -> Path:
    _, url = kube
    run_scenario(api, url, tmp_path)
    return write_kubeconfig(tmp_path, url)


def test_explain_says_why_it_prescaled_with_the_numbers(kube: Any, kubeconfig: Path) -> None:
    emu, _ = kube
    result = runner.invoke(app, ["explain", "slots", "-n", NAMESPACE, "--kubeconfig", str(kubeconfig)], env=ENV)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    status = emu.get("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, "slots")["status"]
    up = next(d for d in status["decisions"] if d["reason"] == "ScaleUpForecast")
    assert up["fromReplicas"] == 4 and up["toReplicas"] >= 11 and up["event"] == "tournament friday-frenzy"
    at = pd.Timestamp(up["time"])
    peak, peak_at = up["forecastPeak"], pd.Timestamp(up["forecastPeakAt"])
    expected = (f"at {at:%H:%M} pre-scaled 4 -> {up['toReplicas']}: forecast p95 {peak:,.0f} req/s at "
                f"{peak_at:%H:%M} for tournament friday-frenzy; observed ")
    assert any(line.startswith(expected) and line.endswith("(ScaleUpForecast)") for line in lines), lines
    # The operator's Event for the same decision is joined to it, not repeated.
    assert sum("pre-scaled slots-api 4 ->" in line for line in lines) == 1
    assert lines[0].startswith("casino/slots scales slots-api:")

    doc = json.loads(runner.invoke(app, ["explain", "slots", "-n", NAMESPACE, "--kubeconfig", str(kubeconfig),
                                         "--json", "--last", "2"], env=ENV).stdout)
    assert len(doc["entries"]) == 2 and doc["last_decision"]["reason"] == status["lastDecision"]["reason"]
    assert doc["metrics"] is None


def test_explain_shows_incident_events(kubeconfig: Path) -> None:
    result = runner.invoke(app, ["explain", "poker", "-n", NAMESPACE, "--kubeconfig", str(kubeconfig)], env=ENV)
    assert result.exit_code == 0, result.output
    assert "held 2: no forecast: no demand history (MetricsUnavailable)" in result.stdout
    assert "incident MetricsUnavailable: [page]" in result.stdout


def test_unknown_policy_and_bad_flags_exit_2(kubeconfig: Path, tmp_path: Path) -> None:
    unknown = runner.invoke(app, ["explain", "dice", "-n", NAMESPACE, "--kubeconfig", str(kubeconfig)], env=ENV)
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == ("error: field 'POLICY': no ScalingPolicy 'dice' in namespace 'casino'; "
                                      "policies there: poker, slots")
    for args, field in ((["--last", "0"], "--last"), (["--since", "later"], "--since"),
                        (["--prometheus", "prometheus:9090"], "--prometheus"),
                        (["--prometheus", f"http://127.0.0.1:{free_port()}"], "--prometheus")):
        result = runner.invoke(app, ["explain", "slots", "-n", NAMESPACE, "--kubeconfig", str(kubeconfig), *args],
                               env=ENV)
        assert result.exit_code == 2, (args, result.output)
        assert result.stderr.startswith("error: ") and field in result.stderr and result.stderr.count("\n") == 1


def test_decision_history_is_bounded(kube: Any, api: Any, tmp_path: Path) -> None:
    from datetime import timedelta

    emu, url = kube
    run_scenario(api, url, tmp_path, until=EVENT_START + timedelta(minutes=75))  # through the tournament and after
    decisions = emu.get("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, "slots")["status"]["decisions"]
    assert 2 <= len(decisions) <= MAX_DECISIONS
    times = [d["time"] for d in decisions]
    assert times == sorted(times)
    for a, b in itertools.pairwise(decisions):
        assert (a["reason"], a["toReplicas"]) != (b["reason"], b["toReplicas"])  # only changes are kept


def _metrics_history(path: Path, start: int, end: int) -> list[tuple[int, int, int]]:
    """OpenMetrics of the operator's series for casino/slots; returns the (time, from, to) desired changes."""
    lines = ["# TYPE pitboss_operator_desired_replicas gauge"]
    changes, desired = [], 4
    for t in range(start, end, 60):
        want = 11 if start + 3600 <= t < start + 7200 else 4
        if want != desired:
            changes.append((t, desired, want))
            desired = want
        lines.append(f'pitboss_operator_desired_replicas{{namespace="casino",policy="slots"}} {desired} {t}')
    lines.append("# TYPE pitboss_operator_decisions counter")
    for i, t in enumerate(range(start, end, 60)):
        lines.append(f'pitboss_operator_decisions_total{{namespace="casino",policy="slots",reason="Hold"}} '
                     f'{4 * i} {t}')
    lines.append("# TYPE pitboss_operator_forecast_error_ratio gauge")
    for t in range(start, end, 60):
        lines.append(f'pitboss_operator_forecast_error_ratio{{namespace="casino",policy="slots"}} 0.125 {t}')
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")
    return changes


@pytest.mark.prometheus
def test_explain_reads_the_operator_metrics(kubeconfig: Path, tmp_path: Path,
                                            prometheus_factory: Callable[..., PrometheusServer]) -> None:
    end = int(datetime.now(UTC).timestamp()) // 60 * 60 - 60  # the last sample within the 5 m lookback of now
    start = end - 3 * 3600
    om = tmp_path / "metrics.om"
    changes = _metrics_history(om, start, end)
    tsdb = tmp_path / "tsdb"
    subprocess.run([binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "-q", str(om), str(tsdb)],
                   check=True, capture_output=True, timeout=120)
    prom = prometheus_factory(tsdb=tsdb)
    args = ["explain", "slots", "-n", NAMESPACE, "--kubeconfig", str(kubeconfig), "--prometheus", prom.url,
            "--since", "4h"]
    doc = json.loads(runner.invoke(app, [*args, "--json"], env=ENV).stdout)
    metrics = doc["metrics"]
    assert (metrics["desired_min"], metrics["desired_max"]) == (4, 11)
    got = [(int(pd.Timestamp(c["time"]).timestamp()), c["from"], c["to"]) for c in metrics["desired_changes"]]
    assert [(f, t) for _, f, t in got] == [(f, t) for _, f, t in changes]
    for (seen, _, _), (wrote, _, _) in zip(got, changes, strict=True):
        assert wrote <= seen < wrote + 60 * 5  # on the query's grid, at most one step late
    # 4 Hold decisions a minute for 3 h (minus the first minute's), as increase() extrapolates
    assert metrics["decisions_by_reason"]["Hold"] == pytest.approx(4 * 179, rel=0.02)
    assert metrics["forecast_error_ratio"] == pytest.approx(0.125)
    text = runner.invoke(app, args, env=ENV).stdout
    assert "operator metrics, last 4h: desired 4..11 replicas, 2 change(s)" in text
    assert "forecast error now: 12.5% of observed demand" in text
