"""`pitboss trace export` against a real Prometheus holding history built with promtool, value for value.

Fourteen days of a 1-minute demand gauge (with a 3-hour and a 20-minute gap)
are written as OpenMetrics, turned into TSDB blocks by ``promtool tsdb
create-blocks-from openmetrics`` and served by the Debian Prometheus. The
export must equal the trace written from the same samples, gaps included,
across two range-query chunks; ``simulate`` and ``backtest`` then run on it.
The query is ``last_over_time(casino_demand[59s])``: the value of the sample
at each grid point, without the 5-minute staleness lookback that would
carry a value into a gap. ``--policy`` and ``--events-from-cluster`` read
the strict emulator; ``--events-from-casino`` the real casino API process.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.app import app
from controller.traceio import read_events, read_series, write_series
from forecasting import registry
from tests.casino.serving import casino_server
from tests.harness import PrometheusServer, binary, free_port
from tests.kube.fixtures import NAMESPACE, create, scaling_policy, traffic_event, write_kubeconfig

pytestmark = pytest.mark.prometheus
runner = CliRunner()
ENV = {"KUBERNETES_SERVICE_HOST": "", "COLUMNS": "200"}
QUERY = "last_over_time(casino_demand[59s])"
PITBOSS = str(Path(sys.executable).parent / "pitboss")


class History:
    """The samples written, and the Prometheus serving them."""

    def __init__(self, prom: PrometheusServer, truth: pd.Series) -> None:
        self.prom, self.truth = prom, truth
        self.start, self.end = truth.index[0], truth.index[-1] + pd.Timedelta(minutes=1)


def _truth(end: pd.Timestamp) -> pd.Series:
    index = pd.date_range(end - pd.Timedelta(days=14), end, freq="1min", inclusive="left")
    hours = (index.hour + index.minute / 60).to_numpy()
    rng = np.random.default_rng(13)
    values = 300 + 200 * np.sin((hours - 14) / 24 * 2 * np.pi) + rng.normal(0, 8, len(index))
    evening = (index.dayofweek == 4) & (index.hour == 20)  # a weekly tournament hour
    values[evening] *= 3
    series = pd.Series(np.round(values, 1), index=index)
    series[(index >= index[0] + pd.Timedelta(days=3)) & (index < index[0] + pd.Timedelta(days=3, hours=3))] = np.nan
    series[(index >= index[0] + pd.Timedelta(days=9, hours=5)) &
           (index < index[0] + pd.Timedelta(days=9, hours=5, minutes=20))] = np.nan
    series.index.freq = "1min"
    return series


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory) -> Iterator[History]:
    work = tmp_path_factory.mktemp("trace-export")
    end = pd.Timestamp(datetime.now(UTC)).floor("1h") - pd.Timedelta(hours=2)
    truth = _truth(end)
    lines = ["# TYPE casino_demand gauge"]
    for ts, value in truth.items():
        if not math.isnan(value):
            lines.append(f'casino_demand{{service="slots-api"}} {value} {int(ts.timestamp())}')
    lines += ["# TYPE casino_other gauge", 'casino_other{a="1"} 1 ' + str(int(end.timestamp()) - 60),
              'casino_other{a="2"} 2 ' + str(int(end.timestamp()) - 60), "# EOF"]
    om = work / "history.om"
    om.write_text("\n".join(lines) + "\n")
    subprocess.run([binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "-q", str(om),
                    str(work / "tsdb")], check=True, capture_output=True, timeout=180)
    prom = PrometheusServer(work / "prometheus", tsdb=work / "tsdb")
    prom.start()
    try:
        yield History(prom, truth)
    finally:
        prom.stop()


def test_export_equals_what_was_written_then_simulate_and_backtest_run_on_it(history: History,
                                                                           tmp_path: Path) -> None:
    out = tmp_path / "trace.csv"
    argv = [PITBOSS, "trace", "export", "--prometheus", history.prom.url, "--query", QUERY,
            "--start", history.start.isoformat(), "--end", history.end.isoformat(), "--step", "1m",
            "--out", str(out), "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, env={**os.environ, **ENV})
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["steps"] == 14 * 1440 and summary["gaps"] == 3 * 60 + 20
    expected = tmp_path / "expected.csv"
    write_series(history.truth, expected)
    assert out.read_text() == expected.read_text()  # every value, every gap, across both chunks
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask  # written atomically, yet not private
    series = read_series(out)
    assert series.isna().sum() == 200 and len(series) == 20_160

    sim = runner.invoke(app, ["simulate", str(out), "--capacity-per-replica", "50", "--lead-time", "10m",
                              "--test-days", "1", "--policies", "hpa,oracle", "--json"], env=ENV)
    assert sim.exit_code == 0, sim.output
    assert json.loads(sim.stdout)["steps"] == 1440
    bt = runner.invoke(app, ["backtest", str(out), "--horizon", "1h", "--step", "6h", "--test-days", "2",
                             "--models", "seasonal-naive", "--json"], env=ENV)
    assert bt.exit_code == 0, bt.output
    assert json.loads(bt.stdout)["models"]["seasonal-naive"]["mase"] > 0


def test_export_from_a_policy_with_its_events(history: History, kube: Any, api: Any, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path, kube[1])
    create(api, scaling_policy("slots", {
        "targetRef": {"kind": "Deployment", "name": "slots-api"}, "metric": {"promql": QUERY},
        "capacityPerReplica": 50, "forecast": {"model": "calendar", "step": "5m", "history": "2d"},
        "eventSelector": {"matchLabels": {"service": "slots"}}}))
    inside = history.end - pd.Timedelta(hours=30)
    for name, start, labels in (("frenzy", inside, {"service": "slots"}), ("poker-night", inside, {"service": "poker"}),
                                ("long-ago", history.start - pd.Timedelta(days=30), {"service": "slots"})):
        create(api, traffic_event(name, {"kind": "tournament", "start": start.isoformat(),
                                         "end": (start + pd.Timedelta(hours=1)).isoformat(), "expectedLift": 3},
                                  labels=labels))
    out = tmp_path / "slots.csv"
    result = runner.invoke(app, ["trace", "export", "--prometheus", history.prom.url, "--policy", "slots",
                                 "-n", NAMESPACE, "--end", history.end.isoformat(), "--events-from-cluster",
                                 "--out", str(out), "--kubeconfig", str(kubeconfig)], env=ENV)
    assert result.exit_code == 0, result.output
    series = read_series(out)
    assert pd.Timedelta(series.index.freq) == pd.Timedelta(minutes=5) and len(series) == 2 * 288  # policy's grid
    assert series.index[-1] == history.end - pd.Timedelta(minutes=5)
    truth = history.truth.reindex(series.index)
    assert np.array_equal(series.to_numpy(), truth.to_numpy(), equal_nan=True)
    events = read_events(tmp_path / "slots_events.csv")  # the default --events-out next to --out
    assert [(e.name, e.kind, e.expected_lift) for e in events] == [("frenzy", "tournament", 3.0)]
    assert "slots_events.csv: 1 events" in " ".join(result.stdout.split())


def test_export_events_from_the_casino_calendar(history: History, tmp_path: Path) -> None:
    token = "trace-export-admin-secret-0123456789"  # the casino asks for >= 32 characters
    env = {"PITBOSS_CASINO_ADMIN_TOKEN": token}
    with casino_server(["--database-url", f"sqlite:///{tmp_path / 'casino.db'}"], env=env) as base:
        start = history.end - pd.Timedelta(hours=6)
        body = {"name": "Friday Frenzy", "kind": "tournament", "start": start.isoformat(),
                "end": (start + pd.Timedelta(hours=2)).isoformat(), "expected_lift": 2.5, "services": ["slots-api"]}
        made = httpx.post(f"{base}/v1/admin/events", json=body, headers={"Authorization": f"Bearer {token}"})
        assert made.status_code == 201, made.text
        out, events_out = tmp_path / "t.csv", tmp_path / "e.csv"
        result = runner.invoke(app, ["trace", "export", "--prometheus", history.prom.url, "--query", QUERY,
                                     "--since", "1d", "--end", history.end.isoformat(), "--out", str(out),
                                     "--events-from-casino", base, "--events-out", str(events_out)], env=ENV)
    assert result.exit_code == 0, result.output
    (event,) = read_events(events_out)
    assert (event.name, event.kind, event.expected_lift, event.start) == ("Friday Frenzy", "tournament", 2.5, start)
    assert len(read_series(out)) == 1440


@pytest.mark.parametrize(
    ("args", "field", "detail"),
    [
        (["--query", "sum(rate(casino_demand[1m]"], "--query", "bad_data"),
        (["--query", "casino_other"], "--query", "returned 2 series"),
        (["--query", "no_such_metric"], "--query", "returned no samples"),
        (["--query", QUERY, "--prometheus", "http://127.0.0.1:{port}"], "--prometheus", "cannot connect"),
        (["--query", QUERY, "--prometheus", "prometheus:9090"], "--prometheus", "http://"),
        (["--query", QUERY, "--start", "last tuesday"], "--start", "ISO 8601"),
        (["--query", QUERY, "--end", "2026-13-45"], "--end", "ISO 8601"),
        (["--query", QUERY, "--since", "-3d"], "--since", "duration"),
        (["--query", QUERY, "--since", "1d", "--start", "2026-01-01"], "--since", "not both"),
        (["--query", QUERY, "--step", "0s"], "--step", "positive"),
        (["--query", QUERY, "--out", "{tmp}/no/such/dir/t.csv"], "--out", "does not exist"),
        ([], "--query", "--policy"),
    ],
)
def test_bad_input_is_one_line_exit_2_and_writes_nothing(history: History, tmp_path: Path, args: list[str],
                                                          field: str, detail: str) -> None:
    out = tmp_path / "t.csv"
    base = ["trace", "export", "--prometheus", history.prom.url, "--since", "1d", "--end", history.end.isoformat(),
            "--out", str(out)]
    given = [a.replace("{port}", str(free_port())).replace("{tmp}", str(tmp_path)) for a in args]
    for flag in ("--prometheus", "--since", "--out", "--end"):  # a flag given again replaces the default
        if flag in given and flag in base:
            i = base.index(flag)
            del base[i : i + 2]
    if "--start" in given and "--since" in base and "--since" not in given:
        i = base.index("--since")
        del base[i : i + 2]
    result = runner.invoke(app, [*base, *given], env=ENV)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line.startswith("error: ") and "\n" not in line and field in line and detail in line, line
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_unknown_policy_is_bad_input(history: History, kube: Any, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path, kube[1])
    result = runner.invoke(app, ["trace", "export", "--prometheus", history.prom.url, "--policy", "nope", "-n",
                                 NAMESPACE, "--out", str(tmp_path / "t.csv"), "--kubeconfig", str(kubeconfig)],
                           env=ENV)
    assert result.exit_code == 2
    assert "no ScalingPolicy 'nope' in namespace 'casino'" in result.stderr
    assert not (tmp_path / "t.csv").exists()


def test_a_policy_with_an_unknown_model_is_bad_input_naming_the_field(history: History, kube: Any,
                                                                      tmp_path: Path) -> None:
    emu, url = kube
    kubeconfig = write_kubeconfig(tmp_path, url)
    # Stored as under an older CRD without the forecast.model enum (the emulator's store, no admission).
    emu.put_object(scaling_policy("typo", {
        "targetRef": {"kind": "Deployment", "name": "slots-api"}, "metric": {"promql": QUERY},
        "capacityPerReplica": 50, "forecast": {"model": "prophet-typo", "step": "5m", "history": "2d"}}),
        "scalingpolicies")
    result = runner.invoke(app, ["trace", "export", "--prometheus", history.prom.url, "--policy", "typo", "-n",
                                 NAMESPACE, "--out", str(tmp_path / "t.csv"), "--kubeconfig", str(kubeconfig)],
                           env=ENV)
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line == ("error: spec.forecast.model: unknown model 'prophet-typo'; expected one of "
                    + ", ".join(registry.names())), line
    assert not (tmp_path / "t.csv").exists()
