"""`pitboss incidents list/ack` through typer's CliRunner, on a real SQLite incident log.

The Alertmanager paths (silence, list from Alertmanager) run against a real
Alertmanager in tests/controller/incidents/test_alertmanager_real.py.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from controller.incidents.engine import IncidentEngine
from controller.incidents.model import Incident, Severity, Signal
from controller.incidents.store import IncidentLog
from tests.harness import free_port

SCOPE = {"namespace": "prod", "policy": "casino"}
runner = CliRunner()


def sig(name: str) -> Signal:
    return Signal(name, Severity.PAGE, SCOPE, f"{name} is wrong", "because", name.lower())


@pytest.fixture
def db(tmp_path: Path) -> tuple[Path, list[Incident]]:
    path = tmp_path / "incidents.db"
    log = IncidentLog(path)
    engine = IncidentEngine(log=log)
    t0 = datetime.now(UTC) - timedelta(minutes=10)
    fired = engine.process(t0, [sig("ScalingFailing"), sig("CapacityCeiling")], SCOPE).fired
    engine.process(t0 + timedelta(minutes=1), [sig("ScalingFailing")], SCOPE)  # CapacityCeiling resolves
    log.close()
    return path, fired


def test_list_table(db: tuple[Path, list[Incident]]) -> None:
    path, fired = db
    result = runner.invoke(app, ["incidents", "list", "--db", str(path)])
    assert result.exit_code == 0, result.output
    for incident in fired:
        assert incident.id in result.output
    assert "firing" in result.output and "resolved" in result.output


@pytest.mark.parametrize(("state", "expected"), [(None, {"ScalingFailing", "CapacityCeiling"}),
                                                 ("firing", {"ScalingFailing"}), ("resolved", {"CapacityCeiling"})])
def test_list_json_and_state(db: tuple[Path, list[Incident]], state: str | None, expected: set[str]) -> None:
    path, _ = db
    args = ["incidents", "list", "--json", "--db", str(path)] + (["--state", state] if state else [])
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert {r["alertname"] for r in rows} == expected
    for r in rows:
        assert r["runbook_url"].startswith("docs/runbooks.md#") and r["summary"]


def test_env_var_selects_the_log(db: tuple[Path, list[Incident]]) -> None:
    path, _ = db
    result = runner.invoke(app, ["incidents", "list", "--json"], env={"PITBOSS_INCIDENTS_DB": str(path)})
    assert result.exit_code == 0 and len(json.loads(result.output)) == 2


def test_ack_locally(db: tuple[Path, list[Incident]]) -> None:
    path, fired = db
    target = fired[0]
    result = runner.invoke(app, ["incidents", "ack", target.id[:7], "--for", "90m", "--db", str(path)])
    assert result.exit_code == 0, result.output
    assert f"acknowledged {target.id}" in result.output and "(local ack)" in result.output
    log = IncidentLog(path)
    until = log.acked_until(target.id)
    assert until is not None and abs(until - datetime.now(UTC) - timedelta(minutes=90)) < timedelta(seconds=10)
    table = runner.invoke(app, ["incidents", "list", "--db", str(path), "--state", "firing"])
    assert "acked" in table.output


def test_empty_log_says_so(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    IncidentLog(path).close()
    result = runner.invoke(app, ["incidents", "list", "--db", str(path), "--state", "firing"])
    assert result.exit_code == 0 and "no incidents in state firing" in result.output
    assert json.loads(runner.invoke(app, ["incidents", "list", "--json", "--db", str(path)]).output) == []


@pytest.mark.parametrize(("args", "message"), [
    (["list", "--db", "{missing}"], "no incident log here"),
    (["ack", "0123", "--db", "{missing}"], "no incident log here"),
    (["ack", "zz", "--db", "{db}"], "field 'ID': expected a hex incident id"),
    (["ack", "ffffffffff", "--db", "{db}"], "field 'ID': no incident with id"),
    (["ack", "{id}", "--for", "soon", "--db", "{db}"], "--for: expected a duration"),
    (["ack", "{id}", "--for", "0s", "--db", "{db}"], "field '--for': expected a duration between 1s and 30d"),
    (["ack", "{id}", "--for", "45d", "--db", "{db}"], "between 1s and 30d"),
    (["ack", "abc", "--alertmanager", "http://127.0.0.1:1", "--db", "{missing}"], "16-hex-digit incident id"),
    (["list", "--alertmanager", "localhost:9093"], "expected an http:// or https:// URL"),
])
def test_bad_input_is_one_line_exit_2(db: tuple[Path, list[Incident]], tmp_path: Path, args: list[str],
                                      message: str) -> None:
    path, fired = db
    subs = {"{db}": str(path), "{missing}": str(tmp_path / "missing.db"), "{id}": fired[0].id}
    result = runner.invoke(app, ["incidents", *[subs.get(a, a) for a in args]])
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], result.output
    assert not (tmp_path / "missing.db").exists()  # nothing half-written


def test_unreachable_alertmanager_is_retryable_exit_3() -> None:
    result = runner.invoke(app, ["incidents", "list", "--alertmanager", f"http://127.0.0.1:{free_port()}"])
    assert result.exit_code == 3 and "cannot connect" in result.output


def test_list_shows_an_incident_handed_off_to_another_replica(db: tuple[Path, list[Incident]]) -> None:
    path, fired = db
    log = IncidentLog(path)
    engine = IncidentEngine(log=log)  # reloads ScalingFailing, still firing
    engine.hand_off(datetime.now(UTC), SCOPE)  # the policy's shard moved to another replica
    log.close()
    rows = json.loads(runner.invoke(app, ["incidents", "list", "--json", "--db", str(path)]).output)
    assert {(r["alertname"], r["state"]) for r in rows} == {("ScalingFailing", "handed_off"),
                                                             ("CapacityCeiling", "resolved")}
    assert [r["ends_at"] for r in rows if r["state"] == "handed_off"] == [None]  # not ended: another replica has it
    only = runner.invoke(app, ["incidents", "list", "--json", "--db", str(path), "--state", "handed_off"])
    assert only.exit_code == 0, only.output
    assert [r["id"] for r in json.loads(only.output)] == [fired[0].id]
    table = runner.invoke(app, ["incidents", "list", "--db", str(path)])
    assert "handed_off" in table.output
