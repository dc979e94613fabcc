"""The operator's own alerts (manifests/prometheus/operator-rules.yaml): promtool checks and unit-tests them.

Each alert reads a metric the operator really exports (controller/telemetry/metrics.py), and the
unit tests in operator-tests.yaml fail when a rule changes.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from controller.telemetry.metrics import OperatorMetrics
from tests.conftest import REPO
from tests.harness import binary

pytestmark = pytest.mark.prometheus

RULES = REPO / "manifests" / "prometheus" / "operator-rules.yaml"
RULE_TESTS = REPO / "manifests" / "prometheus" / "operator-tests.yaml"


def _promtool(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([binary("promtool"), *args], cwd=cwd, capture_output=True, text=True, timeout=60,
                          check=False)


def test_promtool_checks_and_unit_tests_pass() -> None:
    checked = _promtool("check", "rules", str(RULES))
    assert checked.returncode == 0 and "SUCCESS" in checked.stdout, checked.stdout + checked.stderr
    tested = _promtool("test", "rules", RULE_TESTS.name, cwd=RULE_TESTS.parent)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_unit_tests_fail_when_a_rule_changes(tmp_path: Path) -> None:
    broken = RULES.read_text().replace("max(pitboss_operator_leader) < 1", "max(pitboss_operator_leader) < 0")
    assert broken != RULES.read_text()
    (tmp_path / RULES.name).write_text(broken)
    (tmp_path / RULE_TESTS.name).write_text(RULE_TESTS.read_text())
    result = _promtool("test", "rules", RULE_TESTS.name, cwd=tmp_path)
    assert result.returncode != 0 and "FAILED" in result.stdout + result.stderr


def test_every_alert_reads_an_exported_metric() -> None:
    exported = {m.name for m in OperatorMetrics().registry.collect()}
    exported |= {f"{n}_bucket" for n in exported} | {f"{n}_total" for n in exported}
    for group in yaml.safe_load(RULES.read_text())["groups"]:
        for rule in group["rules"]:
            names = set(re.findall(r"\b(pitboss_operator_[a-z_]+)\b", rule["expr"]))
            assert names and names <= exported, (rule["alert"], names - exported)
