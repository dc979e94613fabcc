"""The HTML report of a local run: self-contained, plots embedded, decisions and incidents listed, escaped."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pandas as pd
import pytest

from controller.local.recorder import CycleRecord, EventSpan, RunRecord
from dashboards.report import render_html, summary_rows, write_report

T0 = pd.Timestamp("2026-02-02T12:00:00Z")
MIN = pd.Timedelta(minutes=1)


def make_record(n: int = 30) -> RunRecord:
    cycles = []
    for i in range(n):
        desired = 4 if 6 <= i < 25 else 1
        current = 4 if 7 <= i < 26 else 1
        ready = 4 if 8 <= i < 26 else 1
        reason = "ScaleUpForecast" if i == 6 else "ScaleDown" if i == 25 else "Hold"
        cycles.append(CycleRecord(
            t=T0 + i * MIN, elapsed=float(i), trace_rate=10.0 + 30 * (10 <= i < 20), observed=None if i == 0 else 10.0,
            offered=10, served=9 if i == 12 else 10, rejected=1 if i == 12 else 0, unserved=1 if i == 12 else 0,
            current=current, ready=ready, desired=desired, q50=10.0, q95=12.0, q99=None, reason=reason,
            message="forecast p95 peak 53 req/s needs 4 <script>alert(1)</script>", scaled=desired != current))
    return RunRecord(
        meta={"capacity_per_replica": 15.0, "replica_capacity": 20.0, "speed": 60.0, "duration": 30.0,
              "max_replicas": 4, "lead_time_min": 5.0, "startup_seconds": [2.5, 3.1], "model": "calendar",
              "sync_period_s": 60.0, "live_start": T0.isoformat(), "policy": {"minReplicas": 1}},
        cycles=cycles,
        events=[EventSpan("live-tournament", "tournament", T0 + 10 * MIN, T0 + 20 * MIN, 3.5)],
        trace=[(T0 + i * MIN, 10.0 + 30 * (10 <= i < 20)) for i in range(n)],
        plan=[(T0 + i * MIN, 10.0, 12.0, 14.0) for i in range(n)],
        replica_events=[{"t": T0.isoformat(), "elapsed": -3.0, "replica": 1, "what": "spawned", "detail": "port 1"}],
        incidents=[{"at": (T0 + 12 * MIN).isoformat(), "state": "firing", "alertname": "ForecastMiss",
                    "severity": "ticket", "summary": "demand above q99", "description": "latest demand 41/s"}],
    )


def test_report_is_self_contained_with_plots_decisions_and_incidents(tmp_path: Path) -> None:
    path = write_report(make_record(), tmp_path / "out" / "report.html")
    text = path.read_text()
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", text)
    assert len(images) == 2
    for image in images:
        assert base64.b64decode(image).startswith(b"\x89PNG")
    assert "http://" not in text.replace("http://127.0.0.1", "")  # nothing fetched from elsewhere
    assert text.count("ScaleUpForecast") == 1 and "ScaleDown" in text and "1 -&gt; 4" in text
    assert "<script>" not in text and "&lt;script&gt;" in text  # messages are escaped
    assert "ForecastMiss" in text and "latest demand 41/s" in text
    assert "live-tournament" in text and "3.5x" in text
    assert "unserved share" in text and "0.33%" in text  # 1 of 300 offered
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_summary_rows_state_the_leads() -> None:
    rows = dict(summary_rows(make_record(), make_record().summary()))
    assert rows["live-tournament: first scale-up decided"] == "4.0 min before start"
    assert rows["live-tournament: first extra replica ready"] == "2.0 min before start"
    assert rows["live-tournament: ready capacity ahead of its demand (worst step)"] == "2.0 min ahead"
    assert rows["capacity per replica (policy / admission limit)"] == "15 / 20 req/s"
    assert rows["replica start-up, spawn to /readyz (s)"].startswith("min 2.50, max 3.10")


@pytest.mark.parametrize("n", [0, 1])
def test_empty_or_tiny_runs_still_render(n: int) -> None:
    record = make_record(n)
    record.incidents = []
    text = render_html(record)
    assert "No incidents." in text and text.count("data:image/png;base64,") == 2
