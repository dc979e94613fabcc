"""`pitboss simulate` through typer's CliRunner: JSON, table, plot, and one-line errors with exit 2.

The forecasting policies run the real registered models (calendar, holt-winters)
on a small synthetic trace (5-minute steps) so the suite stays quick.
"""

from __future__ import annotations

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


@pytest.fixture(scope="module")
def trace_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Four days of 5-minute demand with a daily cycle and two known 'promo' events."""
    rng = np.random.default_rng(3)
    index = pd.date_range("2026-01-05", periods=4 * 288, freq="5min", tz="UTC")
    hours = (index.hour + index.minute / 60).to_numpy()
    base = 300 + 200 * np.sin((hours - 14) / 24 * 2 * np.pi)
    values = base + rng.normal(0, 10, len(index))
    events = []
    for day in (1, 3):
        start = index[0] + pd.Timedelta(days=day, hours=20)
        end = start + pd.Timedelta(hours=1)
        values[(index >= start) & (index < end)] *= 3
        events.append(Event(name=f"promo-{day}", kind="promo", start=start, end=end))
    folder = tmp_path_factory.mktemp("trace")
    series_path, events_path = folder / "casino.csv", folder / "casino_events.csv"
    write_series(pd.Series(np.round(values), index=index), series_path)
    write_events(events, events_path)
    return series_path, events_path


def base_args(series: Path, events: Path) -> list[str]:
    return [
        "simulate",
        str(series),
        "--events",
        str(events),
        "--capacity-per-replica",
        "50",
        "--lead-time",
        "10m",
        "--test-days",
        "1",
    ]


def test_json_output(trace_files: tuple[Path, Path]) -> None:
    series, events = trace_files
    result = runner.invoke(app, [*base_args(series, events), "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["series"] == "casino"
    assert out["steps"] == 288
    assert list(out["policies"]) == ["hpa", "keda-cron", "holt-winters", "pitboss", "oracle"]
    for name, metrics in out["policies"].items():
        forecast = {"steps_without_forecast", "fallback"} if name in ("holt-winters", "pitboss") else set()
        assert set(metrics) == {
            "unserved_fraction",
            "underprovisioned_steps",
            "replica_hours",
            "peak_replicas",
            "scale_changes",
            "cost_vs_oracle",
            *forecast,
        }
        assert 0.0 <= metrics["unserved_fraction"] <= 1.0
    for name in ("holt-winters", "pitboss"):  # issue 9: every step decided with a forecast, no fallback
        assert out["policies"][name]["steps_without_forecast"] == 0
        assert out["policies"][name]["fallback"] is None
    assert "without a forecast" not in result.stderr and "fell back" not in result.stderr
    assert out["policies"]["oracle"]["unserved_fraction"] == 0.0
    assert out["policies"]["oracle"]["cost_vs_oracle"] == 1.0
    # The known promo on day 4 is the spike a reactive HPA cannot serve in time.
    assert out["policies"]["hpa"]["unserved_fraction"] > out["policies"]["pitboss"]["unserved_fraction"]


def test_table_and_plot(trace_files: tuple[Path, Path], tmp_path: Path) -> None:
    series, events = trace_files
    plot = tmp_path / "sim.png"
    result = runner.invoke(app, [*base_args(series, events), "--policies", "hpa,oracle", "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert "hpa" in result.stdout and "oracle" in result.stdout and "unserved" in result.stdout
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_subset_and_options(trace_files: tuple[Path, Path]) -> None:
    series, events = trace_files
    result = runner.invoke(
        app,
        [
            *base_args(series, events),
            "--policies",
            "keda-cron,oracle",
            "--keda-min",
            "40",
            "--min",
            "2",
            "--max",
            "60",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert list(out["policies"]) == ["keda-cron", "oracle"]
    assert out["policies"]["keda-cron"]["peak_replicas"] <= 60


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"--capacity-per-replica": "abc"}, "--capacity-per-replica"),
        ({"--capacity-per-replica": "0"}, "--capacity-per-replica"),
        ({"--lead-time": "soon"}, "--lead-time"),
        ({"--test-days": "400"}, "test-days"),
        ({"--test-days": "-1"}, "--test-days"),
        ({"--policies": "hpa,magic"}, "policies"),
        ({"--min": "5", "--max": "2"}, "max"),
        ({"--min": "1.5"}, "--min"),
        ({"--quantile": "0.97"}, "--quantile"),
        ({"--hpa-target": "1.2"}, "--hpa-target"),
        ({"--refit-every": "never"}, "--refit-every"),
        ({"--keda-min": "-3"}, "--keda-min"),
        ({"--plot": "/nonexistent-dir/sim.png"}, "--plot"),
        ({"--plot": "sim.jpg"}, "--plot"),
    ],
)
def test_bad_flags_one_line_exit_2(trace_files: tuple[Path, Path], change: dict[str, str], needle: str) -> None:
    series, events = trace_files
    args = base_args(series, events)
    for flag, value in change.items():
        if flag in args:
            args[args.index(flag) + 1] = value
        else:
            args += [flag, value]
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert needle in lines[0]


@pytest.mark.parametrize(
    ("series_text", "needle"),
    [
        ("timestamp,value\n2026-01-01T00:00:00,1\n2026-01-01T00:01:00,abc\n", "row 3, field 'value'"),
        ("time,value\n", "field 'timestamp'"),
        ("", "file is empty"),
    ],
)
def test_bad_series_file(tmp_path: Path, series_text: str, needle: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(series_text)
    result = runner.invoke(app, ["simulate", str(path), "--capacity-per-replica", "5", "--lead-time", "1m"])
    assert result.exit_code == 2
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_missing_file_and_bad_events(trace_files: tuple[Path, Path], tmp_path: Path) -> None:
    series, _ = trace_files
    result = runner.invoke(
        app, ["simulate", str(tmp_path / "nope.csv"), "--capacity-per-replica", "5", "--lead-time", "1m"]
    )
    assert result.exit_code == 2 and "cannot open" in result.stderr
    events = tmp_path / "ev.csv"
    events.write_text("start,end,kind,name\n2026-01-02T00:00:00,2026-01-01T00:00:00,promo,x\n")
    result = runner.invoke(
        app, ["simulate", str(series), "--events", str(events), "--capacity-per-replica", "5", "--lead-time", "1m"]
    )
    assert result.exit_code == 2 and "row 2, field 'end'" in result.stderr


def test_plot_not_written_on_bad_input(tmp_path: Path, trace_files: tuple[Path, Path]) -> None:
    series, events = trace_files
    plot = tmp_path / "sim.png"
    args = [*base_args(series, events), "--policies", "nope", "--plot", str(plot)]
    assert runner.invoke(app, args).exit_code == 2
    assert not plot.exists()


def test_table_counts_steps_without_a_forecast_and_warns(trace_files: tuple[Path, Path], tmp_path: Path) -> None:
    """Two days of history: the models fall back at the first refits; the table, notes and stderr say so."""
    series, events = trace_files
    short = tmp_path / "short.csv"
    lines = series.read_text().splitlines()
    short.write_text("\n".join(lines[: 1 + int(2.5 * 288)]) + "\n")
    result = runner.invoke(app, [*base_args(short, events), "--policies", "hpa,pitboss", "--test-days", "0.6"],
                           env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "forecast" in result.stdout.splitlines()[2] and "(seasonal-naive)" in result.stdout  # the column
    assert "calendar fell back to seasonal-naive" in result.stdout  # the note, with the reason
    assert "warning: pitboss: its model fell back to seasonal-naive" in result.stderr


# --- headroom from economics: --cost-unserved / --cost-replica-hour (issue 15) ---


def test_costs_size_at_the_newsvendor_quantile_and_bill_each_policy(trace_files: tuple[Path, Path]) -> None:
    series, events = trace_files
    args = [*base_args(series, events), "--policies", "hpa,pitboss,oracle", "--cost-unserved", "0.01",
            "--cost-replica-hour", "0.5"]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    costs = out["costs"]
    # c_u / (c_u + c_o) with 50 per 5-minute step per replica: 0.01 * 50 / 300 s vs 0.5 / 3600 s
    ratio = (0.01 * 50 / 300) / (0.01 * 50 / 300 + 0.5 / 3600)
    assert costs["newsvendor_quantile"] == pytest.approx(ratio)
    for name in ("hpa", "pitboss", "oracle"):
        bill = costs["bill"][name]
        assert bill["total"] == pytest.approx(bill["unserved"] + bill["replicas"])
        hours = out["policies"][name]["replica_hours"]
        assert bill["replicas"] == pytest.approx(hours * 0.5)
    assert costs["bill"]["oracle"]["unserved"] == 0
    table = runner.invoke(app, args)
    assert table.exit_code == 0, table.output
    words = " ".join(table.output.split())  # rich wraps at the terminal width
    assert "newsvendor quantile 0.9231 from costs" in words and "cost" in words
    assert "sized at newsvendor q0.923" in words


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        (["--cost-unserved", "0.01"], "--cost-replica-hour"),
        (["--cost-replica-hour", "1"], "--cost-unserved"),
        (["--cost-unserved", "-1", "--cost-replica-hour", "1"], "--cost-unserved"),
        (["--cost-unserved", "0.01", "--cost-replica-hour", "zero"], "--cost-replica-hour"),
        (["--cost-unserved", "0.01", "--cost-replica-hour", "1", "--quantile", "0.9"], "--quantile"),
        (["--cost-unserved", "0.01", "--cost-replica-hour", "1", "--sweep"], "--cost-unserved"),
    ],
)
def test_bad_costs_are_one_line_errors(trace_files: tuple[Path, Path], extra: list[str], field: str) -> None:
    series, events = trace_files
    result = runner.invoke(app, [*base_args(series, events), "--policies", "pitboss", *extra])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: field '{field}'") and result.output.count("\n") == 1, result.output


def test_a_baseline_runs_as_a_policy(trace_files: tuple[Path, Path]) -> None:
    pytest.importorskip("lightgbm")
    series, events = trace_files
    result = runner.invoke(app, [*base_args(series, events), "--policies", "hpa,gbm,oracle", "--json"])
    assert result.exit_code == 0, result.output
    gbm = json.loads(result.output)["policies"]["gbm"]
    assert 0 <= gbm["unserved_fraction"] < 1 and gbm["replica_hours"] > 0
