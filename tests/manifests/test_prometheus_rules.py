"""The shipped Prometheus rules and Alertmanager config: checked and unit-tested by the real tools.

Runs Debian's promtool (`check rules`, `test rules`) and amtool (`check-config`),
and checks that the rules and the in-process burn-rate rules agree on windows,
factors and severities.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from controller.core.durations import format_duration
from controller.incidents.alertmanager import AlertmanagerClient
from controller.incidents.rules import BURN_WINDOWS, DEFAULT_SLOS
from tests.harness import (
    AlertmanagerServer,
    ExporterProcess,
    PrometheusServer,
    alertmanager_factory,
    binary,
    exporter_factory,
    prometheus_factory,
    wait_until,
)

__all__ = ["alertmanager_factory", "exporter_factory", "prometheus_factory"]  # fixtures used below

pytestmark = pytest.mark.prometheus

REPO = Path(__file__).resolve().parents[2]
RULES = REPO / "manifests" / "prometheus" / "casino-rules.yaml"
RULE_TESTS = REPO / "manifests" / "prometheus" / "tests.yaml"
AM_CONFIG = REPO / "manifests" / "alertmanager" / "alertmanager.yml"


def run(argv: list[str], cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)


def test_promtool_check_rules() -> None:
    result = run([binary("promtool"), "check", "rules", str(RULES)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = run([binary("promtool"), "test", "rules", RULE_TESTS.name], cwd=RULE_TESTS.parent)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_unit_tests_can_fail(tmp_path: Path) -> None:
    """A rule file with the fast-burn factor changed must fail the same unit tests."""
    broken = RULES.read_text().replace("> (14.4 * 0.001)", "> (30 * 0.001)")
    assert broken != RULES.read_text()
    (tmp_path / RULES.name).write_text(broken)
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    result = run([binary("promtool"), "test", "rules", RULE_TESTS.name], cwd=tmp_path)
    assert result.returncode != 0
    assert "FAILED" in result.stdout + result.stderr


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(\n")
    result = run([binary("promtool"), "check", "rules", str(bad)])
    assert result.returncode != 0


def test_amtool_check_config() -> None:
    result = run([binary("amtool"), "check-config", str(AM_CONFIG)])
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_amtool_rejects_a_broken_config(tmp_path: Path) -> None:
    bad = tmp_path / "am.yml"
    bad.write_text(AM_CONFIG.read_text().replace("receiver: tickets\n  group_by", "receiver: nobody\n  group_by"))
    result = run([binary("amtool"), "check-config", str(bad)])
    assert result.returncode != 0


def test_rules_match_the_in_process_burn_windows() -> None:
    """Each (SLO, window pair) of controller/incidents/rules.py has an alert with the same factor and severity."""
    doc = yaml.safe_load(RULES.read_text())
    alerts = [r for g in doc["groups"] for r in g["rules"] if r.get("alert") == "ErrorBudgetBurn"]
    found = {(a["labels"]["slo"], a["labels"]["long_window"], a["labels"]["severity"], " ".join(a["expr"].split()))
             for a in alerts}
    assert len(alerts) == len(DEFAULT_SLOS) * len(BURN_WINDOWS)
    for slo in DEFAULT_SLOS:
        budget = round(1 - slo.objective, 6)
        for bw in BURN_WINDOWS:
            long_s, short_s = format_duration(bw.long), format_duration(bw.short)
            thr = f"({bw.factor:g} * {budget:g})"
            expr = (f"casino:slo_{slo.name}_errors:ratio_rate{long_s} > {thr} and"
                    f" casino:slo_{slo.name}_errors:ratio_rate{short_s} > {thr}")
            assert (slo.name, long_s, str(bw.severity), expr) in found, (slo.name, long_s)


@pytest.mark.alertmanager
def test_shipped_rules_fire_on_contract_metrics_and_reach_alertmanager(
    prometheus_factory: Callable[..., PrometheusServer],
    alertmanager_factory: Callable[..., AlertmanagerServer],
    exporter_factory: Callable[..., ExporterProcess],
) -> None:
    """Real chain: contract metrics (50% 5xx) -> Prometheus with casino-rules.yaml -> Alertmanager."""
    am = alertmanager_factory()
    exporter = exporter_factory(rate=40, error_share=0.5)
    prometheus_factory(targets=[exporter.target], rule_files=[RULES], alertmanager_url=am.url)
    client = AlertmanagerClient(am.url)

    def burning() -> set[tuple[str, str]]:
        return {(a["labels"]["severity"], a["labels"]["long_window"])
                for a in client.alerts(filters=['alertname="ErrorBudgetBurn"', 'slo="availability"'])}

    expected = {("page", "1h"), ("page", "6h"), ("ticket", "3d")}
    assert wait_until(lambda: burning() == expected, timeout=45, interval=0.5, what="burn-rate alerts in Alertmanager")
    # latency is healthy (every request at 0.1 s): no latency alert
    assert client.alerts(filters=['alertname="ErrorBudgetBurn"', 'slo="latency"']) == []
    client.close()
