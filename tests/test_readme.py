"""Every `pitboss` example in README.md runs, in order, and the error example says what it shows.

Runs the installed console script in a scratch directory (the quick tour
writes trace.csv and friends there), so the README cannot drift from the CLI.
The cluster examples run against the strict Kubernetes emulator after the
real operator reconciled the scenario of tests/cli/cluster_scenario.py
(through ``KUBECONFIG``), and ``http://prometheus:9090`` is a real
Prometheus holding three days of a request counter built with promtool.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.cli.cluster_scenario import run_scenario
from tests.conftest import REPO, SHARED_DATA
from tests.harness import PrometheusServer, binary, prometheus_factory
from tests.kube.fixtures import api, kube, write_kubeconfig

__all__ = ["api", "kube", "prometheus_factory"]  # fixtures

README = REPO / "README.md"


def _blocks(text: str) -> list[tuple[str, str]]:
    """(language, body) of every fenced code block."""
    return [(m.group(1), m.group(2)) for m in re.finditer(r"```(\w*)\n(.*?)```", text, re.S)]


def _pitboss() -> str:
    exe = Path(sys.executable).parent / "pitboss"
    found = str(exe) if exe.exists() else shutil.which("pitboss")
    if found is None:
        pytest.fail("the pitboss console script is not installed (make install)")
    return found


def _run(line: str, cwd: Path, env: dict[str, str] | None = None,
         prometheus: str = "http://prometheus:9090") -> subprocess.CompletedProcess[str]:
    args = shlex.split(line.replace("../shared/data", str(SHARED_DATA)).replace("http://prometheus:9090", prometheus))
    assert args[0] == "pitboss", line
    return subprocess.run([_pitboss(), *args[1:]], cwd=cwd, capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def _request_history(workdir: Path) -> Path:
    """TSDB blocks of three days of casino_http_requests_total (a daily cycle), up to a minute ago."""
    end = int(datetime.now(UTC).timestamp()) // 60 * 60 - 60
    lines, total = ["# TYPE casino_http_requests counter"], 0.0
    for t in range(end - 3 * 86400, end, 60):
        hour = (t % 86400) / 3600
        total += 60 * (400 + 300 * max(0.0, 1 - abs(hour - 20) / 6))  # evenings busiest
        lines.append(f'casino_http_requests_total{{route="/v1/spins",status="200"}} {total} {t}')
    om = workdir / "requests.om"
    om.write_text("\n".join([*lines, "# EOF"]) + "\n")
    subprocess.run([binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "-q", str(om),
                    str(workdir / "tsdb")], check=True, capture_output=True, timeout=120)
    return workdir / "tsdb"


def test_readme_shows_the_two_commands() -> None:
    text = README.read_text()
    assert "make demo" in text and "make test" in text


@pytest.mark.prometheus
def test_quick_tour_runs_in_order(tmp_path: Path, kube: Any, api: Any,
                                  prometheus_factory: Callable[..., PrometheusServer]) -> None:
    bash = [body for lang, body in _blocks(README.read_text()) if lang == "bash" and "pitboss " in body]
    lines = [ln.strip() for body in bash for ln in body.splitlines() if ln.strip().startswith("pitboss ")]
    assert len(lines) >= 5, "the quick tour lost its examples"
    run_scenario(api, kube[1], tmp_path / "cluster-state")
    env = {"KUBECONFIG": str(write_kubeconfig(tmp_path / "cluster-state", kube[1])), "KUBERNETES_SERVICE_HOST": ""}
    prom = prometheus_factory(tsdb=_request_history(tmp_path / "cluster-state"))
    tour = tmp_path / "tour"
    tour.mkdir()
    for line in lines:
        result = _run(line, tour, env, prom.url)
        assert result.returncode == 0, f"{line}\nstdout:\n{result.stdout[-2000:]}\nstderr:\n{result.stderr[-2000:]}"
    for produced in ("trace.csv", "events.csv", "forecast.csv", "forecast.png", "frontier.png", "frontier.html",
                     "mine.csv"):
        assert (tour / produced).stat().st_size > 0, produced
    assert kube[0].get("pitboss.dev/v1alpha1", "trafficevents", "casino", "black-friday") is not None


def test_error_example_matches(tmp_path: Path) -> None:
    consoles = [body for lang, body in _blocks(README.read_text()) if lang == "console"]
    assert consoles, "README lost its bad-input example"
    body = consoles[0].splitlines()
    command = body[0].removeprefix("$ ").strip()
    expected = body[1].strip()
    # The error example needs a valid trace to get as far as the horizon.
    (tmp_path / "trace.csv").write_text(
        "timestamp,value\n" + "".join(f"2024-01-01T00:{m:02d}:00,{m + 1}\n" for m in range(60))
    )
    result = _run(command, tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [expected]
