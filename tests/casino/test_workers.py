"""``pitboss casino serve --workers 2`` as a real process: /metrics is the sum over the workers.

Each request goes out on a new connection, so the kernel hands them to both
workers; every scrape, whichever worker answers it, must show the total so
far, and never less than the scrape before. Which worker served what is read
from prometheus-client's per-process files in the metrics directory.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from prometheus_client.mmap_dict import MmapedDict

from tests.casino.serving import casino_server
from tests.harness import wait_until

HEALTHZ = 'casino_http_requests_total{method="GET",route="/healthz",status="200"}'


def _sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def _healthz_by_worker(directory: Path) -> dict[str, float]:
    """Per worker PID: its /healthz count, from its own counter file."""
    counts: dict[str, float] = {}
    for file in directory.glob("counter_*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        for key, value, _ts, _pos in MmapedDict.read_all_values_from_file(str(file)):
            _metric, sample, labels, _help = json.loads(key)
            if sample == "casino_http_requests_total" and labels.get("route") == "/healthz":
                counts[pid] = counts.get(pid, 0.0) + value
    return counts


def test_two_workers_expose_summed_counters_that_never_go_back(tmp_path: Path) -> None:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_999999.db").write_bytes(b"stale values of an earlier run")  # wiped at start
    args = ["--workers", "2", "--database-url", f"sqlite:///{tmp_path / 'casino.db'}", "--max-in-flight", "50",
            "--metrics-dir", str(metrics_dir)]
    with casino_server(args, timeout=60) as base:
        sent, last = 0, 0.0
        deadline = time.monotonic() + 60
        while True:
            for _ in range(10):
                assert httpx.get(base + "/healthz").status_code == 200  # a new connection each time
                sent += 1

            def scraped(expected: int = sent) -> float:
                value = _sample(httpx.get(base + "/metrics").text, HEALTHZ)
                nonlocal last
                assert value >= last, f"a counter went back from {last} to {value}"
                last = value
                return value if value == expected else 0.0

            wait_until(scraped, timeout=10, interval=0.05, what=f"/metrics showing all {sent} /healthz requests")
            if len([n for n in _healthz_by_worker(metrics_dir).values() if n > 0]) >= 2:
                break
            assert time.monotonic() < deadline, f"one worker served everything: {_healthz_by_worker(metrics_dir)}"
        assert not (metrics_dir / "counter_999999.db").exists()
        text = httpx.get(base + "/metrics").text
        assert _sample(text, "casino_admission_capacity") == 2 * 50  # the cap is per worker; the pod has both
        assert sum(_healthz_by_worker(metrics_dir).values()) == _sample(text, HEALTHZ) == sent


def test_an_unwritable_metrics_dir_is_one_line_naming_the_setting(tmp_path: Path) -> None:
    """On a read-only root filesystem the workers need a writable directory: say so before starting."""
    from typer.testing import CliRunner

    from cli.app import app

    blocker = tmp_path / "file"
    blocker.write_text("")
    result = CliRunner().invoke(app, ["casino", "serve", "--workers", "2", "--metrics-dir", str(blocker / "metrics"),
                                      "--database-url", f"sqlite:///{tmp_path / 'c.db'}"])
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith("error: metrics_dir: ") and result.stderr.count("\n") == 1
