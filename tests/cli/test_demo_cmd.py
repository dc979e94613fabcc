"""``pitboss demo`` through CliRunner: the full local run, short and compressed, on real processes and HTTP.

One bounded run (30 s real at 120x: 60 simulated minutes, the tournament 24 minutes in) asserts that the
replicas were scaled up before the event started, that the report holds the plot and the decisions, and
that every replica process is gone afterwards. Bad flags exit 2 with a one-line error before anything starts.
"""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app

runner = CliRunner()


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_demo_prescales_before_the_event_and_writes_the_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--duration", "30", "--speed", "120", "--out", str(out)],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Pitboss local run" in result.output and "unserved share" in result.output
    assert "ScaleUpForecast" in result.output
    assert f"report: {out / 'report.html'}" in result.output

    run = json.loads((out / "run.json").read_text())
    event = next(e for e in run["events"] if e["name"] == "live-tournament")
    start = pd.Timestamp(event["start"])
    cycles = run["cycles"]
    ups = [c for c in cycles if c["scaled"] and c["desired"] > c["current"]]
    assert ups, "never scaled up"
    first_up = ups[0]
    assert first_up["reason"] == "ScaleUpForecast"
    assert pd.Timestamp(first_up["t"]) < start  # decided before the event...
    lead = pd.Timedelta(minutes=run["meta"]["lead_time_min"])
    grown = [c for c in cycles if c["ready"] > 1]
    assert grown and pd.Timestamp(grown[0]["t"]) <= start + lead / 2  # ...and ready around its start
    assert max(c["desired"] for c in cycles) >= 3
    assert run["summary"]["scale_up_lead_min"]["live-tournament"] > 0
    assert run["summary"]["offered"] > 300 and run["summary"]["served"] > 0

    html = (out / "report.html").read_text()
    assert re.search(r"<img alt='demand vs ready capacity vs forecast band' src='data:image/png;base64,", html)
    assert "<h2>Decisions</h2>" in html and "ScaleUpForecast" in html and "needs" in html
    assert (out / "incidents.db").exists() and (out / "casino.db").exists()

    ports = [int(e["detail"].split()[-1]) for e in run["replica_events"] if e["what"] == "spawned"]
    assert len(ports) >= 3
    assert not any(_listening(p) for p in ports), "a replica outlived the demo"

    # `pitboss status --run` reads this run's record: its last cycle, as the operator's status would say it.
    status = runner.invoke(app, ["status", "--run", str(out / "run.json"), "--json"])
    assert status.exit_code == 0, status.output
    (row,) = json.loads(status.stdout)["policies"]
    last = cycles[-1]
    assert (row["name"], row["namespace"], row["mode"]) == ("casino", "local", "Active")
    assert (row["current"], row["desired"], row["ready"], row["reason"]) == (
        last["current"], last["desired"], last["ready"], last["reason"])
    assert last["flags"] is not None and "peak" in last  # the fields status --run reads are recorded


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--duration", "5"], "duration"),
        (["--duration", "10", "--speed", "60"], "at least 20 simulated minutes"),
        (["--speed", "0"], "speed"),
        (["--speed", "1000"], "speed"),
        (["--max-replicas", "0"], "maxReplicas"),
        (["--max-replicas", "9"], "maxReplicas"),
        (["--seed", "-1"], "seed"),
    ],
)
def test_demo_refuses_bad_flags(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--out", str(tmp_path / "x"), *args])
    assert result.exit_code == 2
    assert message in result.output and result.output.count("error:") == 1
    assert not (tmp_path / "x").exists()  # nothing started, nothing written


def test_demo_refuses_a_file_as_output_directory(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("keep me")
    result = runner.invoke(app, ["demo", "--out", str(target)])
    assert result.exit_code == 2 and "--out" in result.output
    assert target.read_text() == "keep me"
