"""``pitboss forecast / backtest / trace synth`` through typer's CliRunner, docs examples included."""

from __future__ import annotations

import json
import os
import re
import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from controller.traceio import read_events, read_series
from tests.conftest import in_repo

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def trace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Ten days at 30-minute steps, written by the CLI itself."""
    folder = tmp_path_factory.mktemp("trace")
    series, events = folder / "trace.csv", folder / "events.csv"
    code, _, err = run("trace", "synth", "--days", "10", "--step", "30m", "--seed", "3",
                         "--out", str(series), "--events-out", str(events))
    assert code == 0, err
    return series, events


def test_trace_synth_is_deterministic_and_readable(tmp_path: Path) -> None:
    paths = []
    for name in ("a", "b"):
        out, ev = tmp_path / f"{name}.csv", tmp_path / f"{name}-events.csv"
        code, stdout, err = run("trace", "synth", "--days", "2", "--step", "5m", "--seed", "9",
                                "--out", str(out), "--events-out", str(ev))
        assert code == 0, err
        assert "576 steps of 5m" in stdout
        paths.append((out, ev))
    assert paths[0][0].read_bytes() == paths[1][0].read_bytes()
    assert paths[0][1].read_bytes() == paths[1][1].read_bytes()
    series = read_series(paths[0][0])
    assert len(series) == 576 and series.notna().all()
    assert read_events(paths[0][1])[0].kind in {"promotion", "tournament", "free_spins", "jackpot"}


def test_forecast_writes_quantile_csv_and_png(trace: tuple[Path, Path], tmp_path: Path) -> None:
    series, events = trace
    out, png = tmp_path / "f.csv", tmp_path / "f.png"
    code, stdout, err = run("forecast", str(series), "--events", str(events), "--horizon", "3h",
                            "--model", "calendar", "--out", str(out), "--plot", str(png))
    assert code == 0, err
    lines = out.read_text().splitlines()
    assert lines[0] == "timestamp,mean,q2.5,q05,q10,q50,q90,q95,q97.5,q99"
    assert len(lines) == 1 + 6  # 3 h of 30-minute steps
    assert lines[1].startswith("2026-01-15T00:00:00,")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "peak q95" in stdout


def test_forecast_default_model_is_auto(trace: tuple[Path, Path]) -> None:
    code, stdout, err = run("forecast", str(trace[0]), "--events", str(trace[1]), "--horizon", "1h")
    assert code == 0, err
    assert "auto(" in stdout


def test_backtest_json_is_one_object_with_the_issue_shape(trace: tuple[Path, Path]) -> None:
    code, stdout, err = run("backtest", str(trace[0]), "--events", str(trace[1]), "--horizon", "2h",
                            "--step", "6h", "--test-days", "2", "--json")
    assert code == 0, err
    data = json.loads(stdout)
    assert set(data) == {"series", "step_seconds", "horizon_steps", "origins", "models", "best"}
    assert data["series"] == "trace" and data["step_seconds"] == 1800 and data["horizon_steps"] == 4
    assert data["origins"] == 8
    assert list(data["models"]) == ["seasonal-naive", "holt-winters", "calendar"]
    for score in data["models"].values():
        assert set(score) == {"mase", "event_mase", "smape", "coverage_95", "spike_recall", "fit_predict_ms_p50",
                              "fallback", "calibration"}
        assert 0 <= score["coverage_95"] <= 1 and score["fallback"] is None
        assert set(score["calibration"]) == {"0.025", "0.05", "0.1", "0.5", "0.9", "0.95", "0.975", "0.99"}
    assert data["best"] in data["models"]


def test_backtest_table_and_plot(trace: tuple[Path, Path], tmp_path: Path) -> None:
    png = tmp_path / "bt.png"
    code, stdout, err = run("backtest", str(trace[0]), "--horizon", "1h", "--step", "12h", "--test-days", "2",
                            "--models", "seasonal-naive,calendar", "--plot", str(png))
    assert code == 0, err
    assert "calendar" in stdout and "best:" in stdout
    assert png.stat().st_size > 10_000


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("case", "expected"),
    [
        ("missing_column", r"series\.csv, row 1, field 'timestamp': missing column"),
        ("bad_timestamp", r"series\.csv, row 4, field 'timestamp': expected an ISO 8601 timestamp"),
        ("bad_value", r"series\.csv, row 2, field 'value': expected a number"),
        ("negative_horizon", r"horizon: must not be negative"),
        ("horizon_below_step", r"horizon: 10m is shorter than the series step"),
        ("event_end_before_start", r"events\.csv, row 2, field 'end': end .* must be after start"),
        ("unknown_model", r"model: unknown model 'prophet'"),
        ("missing_file", r"nope\.csv: cannot open"),
        ("bad_out_dir", r"out: directory .* does not exist"),
    ],
)
def test_forecast_bad_input_is_one_line_exit_2(
    case: str, expected: str, trace: tuple[Path, Path], tmp_path: Path
) -> None:
    good_series, good_events = str(trace[0]), str(trace[1])
    series_text = "timestamp,value\n2026-01-01T00:00:00,1\n2026-01-01T00:30:00,2\n"
    cases = {
        "missing_column": lambda: [str(write(tmp_path / "series.csv", "time,value\n2026-01-01T00:00:00,1\n"))],
        "bad_timestamp": lambda: [str(write(tmp_path / "series.csv", series_text + "yesterday,3\n"))],
        "bad_value": lambda: [str(write(tmp_path / "series.csv", "timestamp,value\n2026-01-01T00:00:00,lots\n"))],
        "negative_horizon": lambda: [good_series, "--horizon=-1h"],
        "horizon_below_step": lambda: [good_series, "--horizon", "10m"],
        "event_end_before_start": lambda: [good_series, "--events", str(write(
            tmp_path / "events.csv", "start,end,kind,name\n2026-01-02T10:00:00,2026-01-02T09:00:00,promotion,p1\n"))],
        "unknown_model": lambda: [good_series, "--model", "prophet"],
        "missing_file": lambda: [str(tmp_path / "nope.csv")],
        "bad_out_dir": lambda: [good_series, "--events", good_events, "--out", str(tmp_path / "no" / "f.csv")],
    }
    args = cases[case]()
    out = tmp_path / "never.csv"
    extra = [] if "--out" in args else ["--out", str(out)]
    code, stdout, err = run("forecast", *args, *extra)
    assert code == 2, (stdout, err)
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("error: ")
    assert re.search(expected, err), err
    assert not out.exists(), "nothing is written on bad input"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--step", "0m"], r"step: expected a positive duration"),
        (["--test-days", "0"], r"test_days: expected a positive number of days"),
        (["--test-days", "30", "--step", "1h"], r"test_days: the test window"),
        (["--models", "calendar,calendar"], r"models: duplicate model name"),
        (["--models", ","], r"models: expected a comma-separated list"),
        (["--horizon", "soon"], r"horizon: expected a duration such as 30s"),
    ],
)
def test_backtest_bad_flags_exit_2(args: list[str], expected: str, trace: tuple[Path, Path]) -> None:
    code, stdout, err = run("backtest", str(trace[0]), *args)
    assert code == 2, (stdout, err)
    assert re.search(expected, err), err


def test_trace_synth_bad_step_exits_2(tmp_path: Path) -> None:
    code, _, err = run("trace", "synth", "--step", "7m", "--out", str(tmp_path / "t.csv"),
                       "--events-out", str(tmp_path / "e.csv"))
    assert code == 2 and "step: expected whole minutes that divide a day" in err
    assert not (tmp_path / "t.csv").exists()


def doc_examples() -> list[str]:
    text = (REPO / "docs" / "forecasting.md").read_text()
    return [line[2:] for line in text.splitlines() if line.startswith("$ pitboss ")]


def test_docs_have_examples() -> None:
    assert len(doc_examples()) >= 4


def test_every_documented_example_runs(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs docs/forecasting.md's examples in order in a scratch directory."""
    monkeypatch.chdir(tmp_path)
    for line in doc_examples():
        argv = [in_repo(a) for a in shlex.split(line)]
        assert argv[0] == "pitboss"
        code, stdout, err = run(*argv[1:])
        assert code == 0, f"{line}\n{stdout}\n{err}"
        if "--json" in argv:
            json.loads(stdout)
    for made in ("trace.csv", "events.csv", "forecast.csv", "forecast.png", "backtest.png"):
        assert (tmp_path / made).exists(), made
    assert os.path.getsize(tmp_path / "trace.csv") > 100_000


def test_backtest_on_daily_data_runs_every_model_itself(tmp_path: Path) -> None:
    """Issue 9: on a daily series calendar and holt-winters fell back, three identical rows."""
    daily = tmp_path / "births.csv"
    lines = (REPO / "data" / "us_births_daily.csv").read_text().splitlines()
    daily.write_text("\n".join([lines[0], *lines[-3 * 365 :]]) + "\n")
    code, stdout, err = run("backtest", str(daily), "--events", in_repo("data/us_births_daily_events.csv"),
                            "--horizon", "7d", "--step", "7d", "--test-days", "28", "--json")
    assert code == 0, err
    models = json.loads(stdout)["models"]
    assert {name: m["fallback"] for name, m in models.items()} == dict.fromkeys(models, None)
    assert models["calendar"]["mase"] != models["seasonal-naive"]["mase"]
    assert models["holt-winters"]["mase"] != models["seasonal-naive"]["mase"]
    assert "fell back" not in err


def test_backtest_warns_when_a_model_falls_back(tmp_path: Path) -> None:
    daily = tmp_path / "short.csv"
    lines = (REPO / "data" / "us_births_daily.csv").read_text().splitlines()
    daily.write_text("\n".join([lines[0], *lines[-18:]]) + "\n")
    code, stdout, err = run("backtest", str(daily), "--horizon", "2d", "--step", "2d", "--test-days", "6",
                            "--models", "seasonal-naive,calendar", "--json")
    assert code == 0, err
    assert json.loads(stdout)["models"]["calendar"]["fallback"] == "seasonal-naive"
    assert "warning: calendar fell back to seasonal-naive at 1 origin(s)" in err  # 12 steps < 14; then 14, 16
    assert "warning: calendar: history spans" in err and "needs 14 steps of history" in err
