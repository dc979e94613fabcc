"""The Prometheus source against a real Prometheus (Debian package) started by the harness.

* live: Prometheus scrapes an exporter process with a known rate; instant and
  range queries read it back, and the SLI ratios match the served error share;
* exact history: 14 days written with ``promtool tsdb create-blocks-from
  openmetrics`` (rate changes, a counter reset, a gap) read back through the
  chunked backfill, value for value;
* faults: a bad query is a PermanentError naming it; Prometheus stopped
  mid-run -> RetryableError, an unknown reading, a holding decision and a
  MetricsUnavailable incident.
"""

from __future__ import annotations

import math
import subprocess
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from controller.core.decide import decide
from controller.core.decision import ObservedState
from controller.core.policy import Policy
from controller.errors import PermanentError, RetryableError
from controller.incidents.engine import IncidentEngine
from controller.incidents.fakes import FakeSink
from controller.incidents.rules import CycleInput, evaluate
from controller.sources.observe import read_current
from controller.sources.prometheus import PrometheusClient, PrometheusConfig, PrometheusSource
from controller.sources.retry import Backoff
from controller.sources.sli import PrometheusSLI
from tests.harness import ExporterProcess, PrometheusServer, binary, wait_until

pytestmark = pytest.mark.prometheus

STEP = 60  # seconds between backfilled samples


def client(url: str, attempts: int = 2) -> PrometheusClient:
    return PrometheusClient(PrometheusConfig(url=url, timeout="3s", attempts=attempts),
                            backoff=Backoff(base=0.05, cap=0.2, attempts=attempts))


def wait_for_full_window(cl: PrometheusClient, scrapes: int = 5) -> None:
    """Until the last ``scrapes`` seconds hold that many scrapes (rate() extrapolates less at a series' start)."""
    def full() -> bool:
        q = f'count_over_time(casino_http_requests_total{{status="200"}}[{scrapes}s])'
        rows = cl.query(q, datetime.now(UTC))
        return bool(rows) and rows[0][1] >= scrapes
    wait_until(full, timeout=40, interval=0.5, what=f"{scrapes} scrapes in the window")


def test_live_scrape_reads_back_what_was_served_then_prometheus_stops(
    prometheus_factory: Callable[..., PrometheusServer], exporter_factory: Callable[..., ExporterProcess]
) -> None:
    exporter = exporter_factory(rate=50, error_share=0.1, slow_share=0.2)
    prom = prometheus_factory(targets=[exporter.target], scrape_interval="1s")
    src = PrometheusSource(client(prom.url), "sum(rate(casino_http_requests_total[5s]))")

    wait_for_full_window(src.client, scrapes=9)
    value = src.current(datetime.now(UTC))
    assert value == pytest.approx(50, rel=0.15)

    now = datetime.now(UTC).replace(microsecond=0)
    hist = src.history(now - timedelta(seconds=60), now, timedelta(seconds=1))
    assert len(hist) == 60
    assert math.isnan(hist.iloc[0])  # before the first scrape: a gap, not zero
    known = hist.dropna()
    assert len(known) >= 5
    assert (known <= 50 * 1.15).all()  # at the series' start rate() extrapolates less, never more
    assert list(known.iloc[-3:]) == pytest.approx([50, 50, 50], rel=0.15)

    ratios = PrometheusSLI(src.client).error_ratios(datetime.now(UTC), [timedelta(minutes=5)])
    assert ratios["availability"][timedelta(minutes=5)] == pytest.approx(0.1, abs=0.02)
    assert ratios["latency"][timedelta(minutes=5)] == pytest.approx(0.2, abs=0.03)

    # fault: Prometheus stopped mid-run -> RetryableError, unknown reading, hold, an incident
    prom.stop()
    with pytest.raises(RetryableError, match="cannot connect"):
        src.current(datetime.now(UTC))
    assert not src.available and src.last_error

    now = datetime.now(UTC)
    reading = read_current(src, now)
    assert reading.value is None and "cannot connect" in (reading.error or "")
    policy = Policy(capacity_per_replica=10, min_replicas=1, max_replicas=10)
    state = ObservedState(now=now, current_replicas=4, ready_replicas=4, observed_demand=reading.value)
    decision = decide(policy, None, state)
    assert not decision.metrics_available
    assert decision.desired_replicas == 4  # hold, never scale down blind
    sink = FakeSink()
    engine = IncidentEngine([sink])
    cycle = CycleInput(policy_name="casino", policy=policy, state=state, decision=decision,
                       metrics_error=reading.error)
    result = engine.process(now, evaluate(cycle), cycle.scope())
    assert [i.alertname for i in result.fired] == ["MetricsUnavailable"]
    assert "cannot connect" in result.fired[0].description


def rate_at(t: float, start: float) -> float:
    """The true request rate of the backfilled history: 10/s, 40/s on day 5, 25/s from day 9."""
    day = (t - start) / 86400
    return 40.0 if 5 <= day < 6 else (25.0 if day >= 9 else 10.0)


def write_history(path: Path, start: int, end: int, gap: tuple[int, int], reset_at: int) -> None:
    """OpenMetrics text of one counter (and a second, flat one) with a reset and a gap."""
    lines = ["# TYPE casino_http_requests counter"]
    counter = 0.0
    for t in range(start, end, STEP):
        if t == reset_at:
            counter = 0.0  # the process restarted
        else:
            counter += rate_at(t - STEP, start) * STEP if t > start else 0.0
        if gap[0] <= t < gap[1]:
            continue
        lines.append(f'casino_http_requests_total{{route="/a",method="GET",status="200"}} {counter} {t}')
    for t in range(start, end, STEP):
        if not gap[0] <= t < gap[1]:  # the whole target was down: both series have the gap
            lines.append(f'casino_http_requests_total{{route="/a",method="GET",status="503"}} 7 {t}')
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n")


def test_backfilled_history_is_read_back_exactly(
    tmp_path: Path, prometheus_factory: Callable[..., PrometheusServer]
) -> None:
    end = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
    start = end - 14 * 86400
    gap = (start + 2 * 86400, start + 2 * 86400 + 3 * 3600)  # 3 h without samples
    reset_at = start + 7 * 86400 + 1800
    om = tmp_path / "history.om"
    write_history(om, start, end, gap, reset_at)
    tsdb = tmp_path / "tsdb"
    subprocess.run([binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "-q", str(om), str(tsdb)],
                   check=True, capture_output=True, timeout=120)
    prom = prometheus_factory(tsdb=tsdb)

    calls: list[tuple[datetime, datetime]] = []
    cl = client(prom.url)
    original = cl.query_range

    def spy(q: str, s: datetime, e: datetime, step: timedelta) -> list[object]:
        calls.append((s, e))
        return original(q, s, e, step)

    cl.query_range = spy  # type: ignore[method-assign]
    src = PrometheusSource(cl, "sum(rate(casino_http_requests_total[5m]))")
    t0, t1 = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    hist = src.history(t0, t1, timedelta(seconds=STEP))

    assert len(hist) == 14 * 1440
    assert len(calls) == 2  # 20,160 points > 11,000 per query: two chunks, no overlap, no hole
    assert calls[1][0] - calls[0][1] == timedelta(seconds=STEP)
    times = np.array([ts.timestamp() for ts in hist.index])
    values = hist.to_numpy()

    def near(t: float, marks: list[float]) -> bool:
        return any(m - 60 <= t <= m + 600 for m in marks)

    changes = [start, start + 5 * 86400, start + 6 * 86400, start + 9 * 86400, reset_at, gap[0], gap[1]]
    checked = 0
    for t, v in zip(times, values, strict=True):
        if near(t, changes):
            continue
        if gap[0] + 300 < t < gap[1]:
            assert math.isnan(v), f"gap at {t} read as {v}"
            continue
        assert v == pytest.approx(rate_at(t - 1, start), rel=1e-9), datetime.fromtimestamp(t, UTC)
        checked += 1
    assert checked > 18_000
    # the reset did not produce a negative or a spike
    around = values[(times > reset_at - 600) & (times < reset_at + 900)]
    assert np.nanmax(around) <= 25.0 + 1e-9 and np.nanmin(around) >= 0
    # a window longer than 14 days is clipped to the last 14
    assert len(src.history(t0 - timedelta(days=3), t1, timedelta(hours=1))) == 14 * 24


def test_bad_query_is_permanent_and_names_the_query(prometheus_factory: Callable[..., PrometheusServer]) -> None:
    prom = prometheus_factory()
    src = PrometheusSource(client(prom.url), "sum(rate(casino_http_requests_total[1m]")
    with pytest.raises(PermanentError, match=r"sum\(rate\(casino_http_requests_total\[1m\]'.*HTTP 400.*bad_data"):
        src.current(datetime.now(UTC))


def test_empty_result_is_unknown_not_zero(prometheus_factory: Callable[..., PrometheusServer]) -> None:
    prom = prometheus_factory()
    src = PrometheusSource(client(prom.url), "sum(rate(no_such_metric_total[1m]))")
    assert src.current(datetime.now(UTC)) is None
    now = datetime.now(UTC).replace(microsecond=0)
    assert src.history(now - timedelta(minutes=1), now, timedelta(seconds=15)).isna().all()
    multi = PrometheusSource(client(prom.url), "vector(1) or label_replace(vector(2), 'x', 'y', '', '')")
    with pytest.raises(PermanentError, match="returned 2 series, expected one"):
        multi.current(datetime.now(UTC))
