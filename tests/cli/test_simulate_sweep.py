"""`pitboss simulate --sweep`: the frontier on the metro trace, the tape replay, determinism, bad flags.

On the repo's metro trace (the ``shared_data`` fixture) the sweep must give
monotone knobs (more headroom: more replica-hours, less unserved demand),
monotone frontiers, and an oracle no point dominates. On a small synthetic
trace, the replayed quantiles must equal fresh runs exactly and two sweeps
must give the same JSON.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from controller.traceio import write_events, write_series
from forecasting.base import Event

runner = CliRunner()
ENV = {"COLUMNS": "200"}


def _sweep(*args: str) -> dict:
    result = runner.invoke(app, ["simulate", *args, "--sweep", "--json"], env=ENV)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def _by(doc: dict, policy: str) -> list[dict]:
    return [p for p in doc["points"] if p["policy"] == policy]


@pytest.mark.slow
def test_metro_frontier_is_monotone_and_the_oracle_dominant(shared_data: Path, tmp_path: Path) -> None:
    png, html = tmp_path / "frontier.png", tmp_path / "frontier.html"
    args = [str(shared_data / "metro_traffic_hourly.csv"), "--events", str(shared_data /
            "metro_traffic_hourly_events.csv"), "--capacity-per-replica", "250", "--lead-time", "1h",
            "--test-days", "14", "--plot", str(png), "--html", str(html)]
    doc = _sweep(*args)
    assert doc["steps"] == 336
    hpa = sorted(_by(doc, "hpa"), key=lambda p: p["value"])
    assert [p["value"] for p in hpa] == [0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9]
    for lo, hi in itertools.pairwise(hpa):  # a higher target: fewer replicas, more unserved
        assert hi["replica_hours"] < lo["replica_hours"] and hi["unserved_fraction"] > lo["unserved_fraction"]
    for name in ("pitboss", "holt-winters"):
        pts = sorted(_by(doc, name), key=lambda p: p["value"])
        assert [p["label"] for p in pts] == ["p50", "p90", "p95", "p99"]
        for lo, hi in itertools.pairwise(pts):  # a higher quantile: more replicas, less unserved
            assert hi["replica_hours"] > lo["replica_hours"] and hi["unserved_fraction"] < lo["unserved_fraction"]
    keda = _by(doc, "keda-cron")
    assert len(keda) >= 2 and keda[-1]["label"] == "last time"
    for name, labels in doc["frontiers"].items():
        front = [next(p for p in _by(doc, name) if p["label"] == label) for label in labels]
        hours = [p["replica_hours"] for p in front]
        unserved = [p["unserved_fraction"] for p in front]
        assert hours == sorted(hours) and all(b < a for a, b in itertools.pairwise(unserved)), name
    (oracle,) = _by(doc, "oracle")
    assert oracle["unserved_fraction"] == 0 and oracle["cost_vs_oracle"] == 1
    for p in doc["points"]:  # nothing is both as safe and cheaper than the oracle
        assert not (p["unserved_fraction"] <= 0 and p["replica_hours"] < oracle["replica_hours"]), p
        assert p["replica_hours"] >= oracle["replica_hours"] or p["unserved_fraction"] > 0
    # Savings: one row per HPA setting, pitboss's replica-hours read off its frontier at that unserved level.
    savings = doc["savings_vs_hpa"]
    assert [s["hpa_target"] for s in savings] == [p["value"] for p in hpa]
    pitboss_front = [p for p in _by(doc, "pitboss") if p["on_frontier"]]
    for s in savings:
        assert s["how"] in ("interpolated", "cheapest", "beyond")
        if s["how"] == "cheapest":
            cheapest = min(pitboss_front, key=lambda p: p["replica_hours"])
            assert s["pitboss_replica_hours"] == cheapest["replica_hours"]
            assert cheapest["unserved_fraction"] <= s["unserved_fraction"]
        if s["saving"] is not None:
            assert s["saving"] == pytest.approx(1 - s["pitboss_replica_hours"] / s["hpa_replica_hours"])
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = html.read_text()
    assert "<svg" in page and "Pitboss against HPA at the same unserved demand" in page and "p95" in page


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Four days of 5-minute demand with a daily cycle and known 'promo' events (2 in history, 1 tested)."""
    rng = np.random.default_rng(5)
    index = pd.date_range("2026-01-05", periods=4 * 288, freq="5min", tz="UTC")
    hours = (index.hour + index.minute / 60).to_numpy()
    values = 300 + 200 * np.sin((hours - 14) / 24 * 2 * np.pi) + rng.normal(0, 10, len(index))
    events = []
    for day in (0, 1, 3):
        start = index[0] + pd.Timedelta(days=day, hours=20)
        values[(index >= start) & (index < start + pd.Timedelta(hours=1))] *= 3
        events.append(Event(name=f"promo-{day}", kind="promo", start=start, end=start + pd.Timedelta(hours=1)))
    folder = tmp_path_factory.mktemp("sweep")
    write_series(pd.Series(np.round(values), index=index), folder / "s.csv")
    write_events(events, folder / "e.csv")
    return folder / "s.csv", folder / "e.csv"


def test_replayed_quantiles_equal_fresh_runs_and_sweeps_repeat(small: tuple[Path, Path]) -> None:
    series, events = small
    common = [str(series), "--events", str(events), "--capacity-per-replica", "50", "--lead-time", "10m",
              "--test-days", "1"]
    doc = _sweep(*common, "--policies", "hpa,keda-cron,pitboss,oracle", "--hpa-targets", "0.5,0.8",
                 "--keda-floors", "8,12")
    assert [p["label"] for p in _by(doc, "keda-cron")] == ["8", "12", "last time"]
    for q in ("0.9", "0.99"):  # recorded at p50, replayed at the others: the same as a run of its own
        fresh = runner.invoke(app, ["simulate", *common, "--policies", "pitboss", "--quantile", q, "--json"], env=ENV)
        metrics = json.loads(fresh.stdout)["policies"]["pitboss"]
        (point,) = [p for p in _by(doc, "pitboss") if p["value"] == float(q)]
        assert point["unserved_fraction"] == metrics["unserved_fraction"]
        assert point["replica_hours"] == metrics["replica_hours"]
        assert point["peak_replicas"] == metrics["peak_replicas"]
    again = _sweep(*common, "--policies", "hpa,keda-cron,pitboss,oracle", "--hpa-targets", "0.5,0.8",
                   "--keda-floors", "8,12")
    assert again == doc  # deterministic

    table = runner.invoke(app, ["simulate", *common, "--sweep", "--policies", "hpa,pitboss,oracle"], env=ENV)
    assert table.exit_code == 0, table.output
    assert "each policy over its knob" in table.stdout and "pitboss against hpa" in table.stdout


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (["--sweep", "--quantiles", "0.8"], "quantiles"),
        (["--sweep", "--hpa-targets", "1.5"], "hpa-targets"),
        (["--sweep", "--hpa-targets", "high"], "--hpa-targets"),
        (["--sweep", "--keda-floors", "3.5"], "--keda-floors"),
        (["--sweep", "--html", "{tmp}/frontier.txt"], "--html"),
        (["--html", "{tmp}/frontier.html"], "--html"),
        (["--quantiles", "0.9"], "--quantiles"),
    ],
)
def test_bad_sweep_flags_exit_2(small: tuple[Path, Path], tmp_path: Path, args: list[str], field: str) -> None:
    series, _ = small
    given = [a.replace("{tmp}", str(tmp_path)) for a in args]
    result = runner.invoke(app, ["simulate", str(series), "--capacity-per-replica", "50", "--lead-time", "10m",
                                 "--test-days", "1", "--policies", "hpa,oracle", *given], env=ENV)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and field in line, line
    assert list(tmp_path.iterdir()) == []
