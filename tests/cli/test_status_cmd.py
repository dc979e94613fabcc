"""`pitboss status` through typer's CliRunner: the cluster (strict emulator, run by the real operator) and run records.

The cluster holds what tests/cli/cluster_scenario.py leaves: ``slots`` pre-scaled
4 -> 13 for the friday-frenzy tournament, ``poker`` holding with its demand
source down (a MetricsUnavailable incident, as Kubernetes Events). Bad input
(an unreachable cluster, a missing kubeconfig, bad flags) is one line and exit 2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from controller.local.recorder import CycleRecord, EventSpan, RunRecord
from tests.cli.cluster_scenario import NOW, run_scenario
from tests.harness import free_port
from tests.kube.fixtures import create, deployment, scaling_policy, write_kubeconfig

runner = CliRunner()
ENV = {"KUBERNETES_SERVICE_HOST": "", "COLUMNS": "220"}


@pytest.fixture
def cluster(kube: Any, api: Any, tmp_path: Path) -> tuple[Any, Path]:
    """(emulator, kubeconfig) after the operator ran the scenario."""
    emu, url = kube
    run_scenario(api, url, tmp_path)
    return emu, write_kubeconfig(tmp_path, url)


def _status(kubeconfig: Path, *args: str) -> Any:
    return runner.invoke(app, ["status", "--kubeconfig", str(kubeconfig), "--now", NOW.isoformat(), *args], env=ENV)


def test_status_shows_each_policy_from_the_cluster(cluster: tuple[Any, Path]) -> None:
    _, kubeconfig = cluster
    result = _status(kubeconfig, "--json")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["source"] == "cluster" and pd.Timestamp(doc["now"]) == pd.Timestamp(NOW)
    rows = {r["name"]: r for r in doc["policies"]}
    assert set(rows) == {"slots", "poker"}
    slots = rows["slots"]
    assert slots["target"] == "Deployment/slots-api" and slots["mode"] == "Active"
    assert slots["current"] == slots["desired"] == slots["ready"] and slots["current"] >= 11  # pre-scaled
    assert slots["next_event"]["name"] == "friday-frenzy" and slots["next_event"]["kind"] == "tournament"
    assert slots["next_event"]["starts_in_seconds"] == 9 * 60
    assert slots["next_peak"]["replicas"] >= 11 and slots["next_peak"]["time"].startswith("2026-11-27T20:")
    assert slots["incidents"] == [] and slots["problems"] == []
    poker = rows["poker"]
    assert poker["reason"] == "MetricsUnavailable" and poker["current"] == 2
    assert poker["next_event"] is None  # its selector picks no tournament
    assert poker["incidents"] == ["MetricsUnavailable"]  # from the incident Events on the policy
    assert any(p.startswith("MetricsAvailable=False (MetricsUnavailable)") and "connection refused" in p
               for p in poker["problems"])

    table = _status(kubeconfig, "-n", "casino")
    assert table.exit_code == 0, table.output
    out = table.stdout
    assert "casino/slots" in out and "casino/poker" in out
    assert "tournament friday-frenzy in 9m" in out
    assert f"-> {slots['next_peak']['replicas']} at 11-27 20:" in out
    assert "MetricsAvailable=False" in out and "Ready=False" in out


def test_status_flags_policies_the_operator_has_not_seen(cluster: tuple[Any, Path], api: Any) -> None:
    _, kubeconfig = cluster
    create(api, deployment("bingo-api", 1))
    create(api, scaling_policy("bingo", {"targetRef": {"kind": "Deployment", "name": "bingo-api"},
                                         "metric": {"promql": "sum(rate(x[1m]))"}, "capacityPerReplica": 50}))
    result = _status(kubeconfig, "--json", "-n", "casino")
    rows = {r["name"]: r for r in json.loads(result.stdout)["policies"]}
    assert rows["bingo"]["problems"] == ["NoStatus: the operator has not reconciled this policy yet"]
    assert rows["bingo"]["current"] is None
    other = _status(kubeconfig, "--json", "-n", "pitboss-system")
    assert json.loads(other.stdout)["policies"] == []


def test_watch_redraws_a_bounded_number_of_times(cluster: tuple[Any, Path]) -> None:
    emu, kubeconfig = cluster
    lists = len(emu.requests("GET", r"/scalingpolicies$"))
    result = _status(kubeconfig, "--watch", "--interval", "50ms", "--count", "3", "--json")
    assert result.exit_code == 0, result.output
    docs = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(docs) == 3 and all(len(d["policies"]) == 2 for d in docs)
    live = _status(kubeconfig, "--watch", "--interval", "50ms", "--count", "2")
    assert live.exit_code == 0, live.output
    assert "casino/slots" in live.stdout
    assert len(emu.requests("GET", r"/scalingpolicies$")) == lists + 5  # every redraw read the cluster again


def _record(path: Path) -> RunRecord:
    t0 = pd.Timestamp("2026-01-05T19:40:00Z")
    start = t0 + pd.Timedelta(minutes=30)

    def cycle(minute: int, current: int, desired: int, reason: str, **kw: Any) -> CycleRecord:
        return CycleRecord(t=t0 + pd.Timedelta(minutes=minute), elapsed=float(minute), trace_rate=10.0,
                           observed=kw.pop("observed", 10.0), offered=10, served=10, rejected=0, unserved=0,
                           current=current, ready=kw.pop("ready", current), desired=desired, q50=10.0,
                           q95=kw.pop("q95", 12.0), q99=14.0, reason=reason, message=f"{reason} message",
                           scaled=desired != current, **kw)

    record = RunRecord(
        meta={"capacity_per_replica": 15.0, "min_replicas": 1, "max_replicas": 4, "policy_name": "casino",
              "namespace": "local", "target": "casino (local uvicorn processes)", "policy": {"mode": "Active"}},
        cycles=[cycle(0, 1, 1, "Hold"), cycle(10, 1, 3, "ScaleUpForecast", ready=1, peak=40.0,
                                               peak_at=str(start)),
                cycle(11, 3, 3, "Hold", observed=None, metrics_error="scrape: 2 of 2 replicas failed",
                      ready=2, flags=["ObservedUnavailable"])],
        events=[EventSpan("live-tournament", "tournament", start, start + pd.Timedelta(minutes=30), 4.0)],
        plan=[(t0 + pd.Timedelta(minutes=m), 10.0, 10.0 + m, 20.0) for m in range(0, 60, 5)],
        incidents=[{"id": "a1", "alertname": "MetricsUnavailable", "state": "firing"},
                   {"id": "b2", "alertname": "ForecastMiss", "state": "firing"},
                   {"id": "b2", "alertname": "ForecastMiss", "state": "resolved"}],
    )
    record.save(path)
    return record


def test_status_reads_a_run_record(tmp_path: Path) -> None:
    _record(tmp_path / "run.json")
    result = runner.invoke(app, ["status", "--run", str(tmp_path / "run.json"), "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    (row,) = doc["policies"]
    assert pd.Timestamp(doc["now"]) == pd.Timestamp("2026-01-05T19:51:00Z")  # the last cycle's simulated time
    assert (row["namespace"], row["name"], row["mode"]) == ("local", "casino", "Active")
    assert (row["current"], row["desired"], row["ready"], row["reason"]) == (3, 3, 2, "Hold")
    assert row["decided_at"] == pd.Timestamp("2026-01-05T19:51:00Z").isoformat()  # reason changed last cycle
    assert row["next_event"]["name"] == "live-tournament" and row["next_event"]["starts_in_seconds"] == 19 * 60
    # The planning forecast's highest q95 after now: 10 + 55 at 20:35 needs ceil(65 / 15) = 5, capped at 4.
    assert row["next_peak"] == {"time": pd.Timestamp("2026-01-05T20:35:00Z").isoformat(), "demand": 65.0,
                                "replicas": 4}
    assert row["incidents"] == ["MetricsUnavailable"]  # ForecastMiss resolved
    assert row["problems"][0] == "MetricsAvailable=False (MetricsUnavailable): scrape: 2 of 2 replicas failed"
    assert "Ready replicas 2 < 3 asked for (still starting)" in row["problems"]

    table = runner.invoke(app, ["status", "--run", str(tmp_path / "run.json")], env=ENV)
    assert table.exit_code == 0 and "local/casino" in table.stdout
    assert "tournament live-tournament in 19m" in table.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--interval", "soon"], "--interval"),
        (["--interval", "0s"], "--interval"),
        (["--watch", "--count", "0"], "--count"),
        (["--run", "{tmp}/missing.json"], "--run"),
        (["--run", "{tmp}/garbage.json"], "--run"),
        (["--run", "{tmp}/garbage.json", "-n", "x"], "--namespace"),
        (["--kubeconfig", "{tmp}/no-such-kubeconfig"], "--kubeconfig"),
        (["--kubeconfig", "{tmp}/dead-kubeconfig"], "--kubeconfig"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], field: str) -> None:
    (tmp_path / "garbage.json").write_text('{"meta": {}, "cycles": [{"t": 1}]}')
    dead = write_kubeconfig(tmp_path, f"http://127.0.0.1:{free_port()}")  # nothing listens there
    dead.rename(tmp_path / "dead-kubeconfig")
    result = runner.invoke(app, ["status", *[a.replace("{tmp}", str(tmp_path)) for a in args]], env=ENV)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and field in line, line
    if "dead" in " ".join(args):
        assert "cannot reach the cluster at http://127.0.0.1:" in line


@pytest.mark.parametrize(("inject", "detail"), [("deny", "forbidden (403)"), ("fail", "answered 500")])
def test_a_refusing_or_failing_api_server_is_a_runtime_failure_exit_1(kube: Any, tmp_path: Path, inject: str,
                                                                     detail: str) -> None:
    emu, url = kube
    if inject == "deny":
        emu.deny("GET", r"/scalingpolicies$")
    else:
        emu.fail("GET", r"/scalingpolicies$", 500, times=None)
    result = runner.invoke(app, ["status", "--kubeconfig", str(write_kubeconfig(tmp_path, url))], env=ENV)
    assert result.exit_code == 1, result.output
    line = result.stderr.strip()
    assert line.startswith("error: list scalingpolicies") and detail in line and "\n" not in line, line
