"""``pitboss demo`` through CliRunner: a real uvicorn server on SQLite, real HTTP traffic, /metrics read back."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli.app import app
from cli.demo_cmd import histogram_quantile, summarize

runner = CliRunner()


def test_demo_runs_on_a_fresh_directory_and_reports_metrics(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    result = runner.invoke(app, ["demo", "--data-dir", str(data), "--players", "3", "--spins", "80",
                                 "--max-in-flight", "4"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    out = result.output
    assert "Requests by route and status" in out and "/v1/games/slots/spins" in out
    assert "bets (casino_bets_total)" in out
    assert re.search(r"sum of all entries \(must be 0\)\s*│\s*0\s*│", out), out
    assert "casino_admission_rejections_total" in out
    assert re.search(r"within the cap\s*│\s*201: 80\s*│", out), out  # every spin under the cap succeeded
    burst = re.search(r"burst at 3x the cap\s*│\s*([^│]*)│", out)
    assert burst and set(re.findall(r"(\d{3}):", burst.group(1))) <= {"201", "503"}, out
    assert "Demo Spin Cup (tournament)" in out
    assert (data / "casino.db").exists()
    # a second run starts from a clean database
    again = runner.invoke(app, ["demo", "--data-dir", str(data), "--players", "1", "--spins", "5"])
    assert again.exit_code == 0, again.output


@pytest.mark.parametrize("args", [["--players", "0"], ["--spins", "-1"], ["--max-in-flight", "0"]])
def test_demo_refuses_bad_flags(args: list[str], tmp_path: Path) -> None:
    result = runner.invoke(app, ["demo", "--data-dir", str(tmp_path), *args])
    assert result.exit_code == 2


@pytest.mark.parametrize(
    ("q", "buckets", "expected"),
    [
        (0.5, [(0.1, 50.0), (0.2, 100.0), (math.inf, 100.0)], 0.1),
        (0.75, [(0.1, 50.0), (0.2, 100.0), (math.inf, 100.0)], 0.15),
        (0.99, [(0.1, 0.0), (1.0, 0.0), (math.inf, 10.0)], 1.0),  # all in +Inf: the last finite bound
        (0.5, [(0.1, 0.0), (math.inf, 0.0)], None),
        (0.5, [], None),
    ],
)
def test_histogram_quantile_matches_prometheus(q: float, buckets: list[tuple[float, float]],
                                               expected: float | None) -> None:
    got = histogram_quantile(q, buckets)
    assert got == expected if expected is None else math.isclose(got or 0, expected)


def test_summarize_reads_the_contract_names() -> None:
    text = "\n".join([
        '# TYPE casino_http_requests_total counter',
        'casino_http_requests_total{route="/v1/wallet",method="GET",status="200"} 3',
        '# TYPE casino_admission_rejections_total counter',
        'casino_admission_rejections_total{route="/v1/wallet"} 2',
        '# TYPE casino_bets_total counter',
        'casino_bets_total{game="slots"} 5',
        '# TYPE casino_admission_capacity gauge',
        'casino_admission_capacity 8',
    ]) + "\n"
    view = summarize(text)
    assert view["requests"] == {("/v1/wallet", "GET", "200"): 3.0}
    assert view["rejections"] == {"/v1/wallet": 2.0}
    assert view["plain"]["casino_bets_total"] == 5.0 and view["plain"]["casino_admission_capacity"] == 8.0
