"""Incremental demand reads: each policy's HistoryWindow reads only its tail, and equals a full read.

The window (``controller.operator.history``) against a recording source: the
tail with its overlap, a revised point, a basis change, a gap, the hourly
full read, a failure, trimming, an answer on another grid, a source that
clips the window (as Prometheus does past 14 days); then the
Reconciler: a steady cycle asks the source for the tail only, and the
windows of policies gone are dropped; last, over a real Prometheus (a TSDB
written with promtool), the tails read what full reads do, one small range
query a cycle.
"""

from __future__ import annotations

import math
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from controller.errors import RetryableError
from controller.incidents.events import RecordingEventRecorder
from controller.operator.clock import FakeClock
from controller.operator.fakes import InMemoryPolicyStore
from controller.operator.history import Basis, DemandHistories, HistoryWindow, overlap_steps
from controller.operator.kube import PolicyObject
from controller.operator.reconcile import Reconciler
from controller.operator.resources import ScalingPolicySpec
from controller.sources.base import DemandSource
from controller.sources.prometheus import PrometheusClient, PrometheusConfig, PrometheusSource
from controller.sources.trace import TraceSource
from controller.targets.base import TargetKey
from controller.targets.fake import InMemoryScaleTarget
from tests.controller.operator.harness import EVENT_START, casino_trace, policy_spec
from tests.harness import PrometheusServer, binary

STEP = timedelta(minutes=1)
LENGTH = timedelta(hours=6)
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)


class Recording:
    """A DemandSource over a mutable series (revisions, backfills), recording every history call."""

    def __init__(self, series: pd.Series) -> None:
        self.series = series
        self.calls: list[tuple[datetime, datetime]] = []
        self.fail: Exception | None = None
        self.inner = TraceSource(series)

    def set(self, at: datetime, value: float) -> None:
        self.series.loc[pd.Timestamp(at)] = value
        self.inner = TraceSource(self.series)

    def history(self, start: datetime, end: datetime, step: timedelta) -> pd.Series:
        self.calls.append((start, end))
        if self.fail is not None:
            raise self.fail
        return self.inner.history(start, end, step)

    def current(self, now: datetime) -> float | None:
        return self.inner.current(now)

    def points(self, k: int = -1) -> int:
        """Grid points the k-th history call asked for."""
        start, end = self.calls[k]
        return int((end - start) / STEP)


def _series(days: int = 2) -> pd.Series:
    index = pd.date_range(T0 - timedelta(days=days), T0 + timedelta(days=1), freq="1min", tz="UTC", inclusive="left")
    return pd.Series(np.random.default_rng(5).uniform(10, 100, len(index)), index=index)


def _window() -> HistoryWindow:
    """A window whose hourly full read never falls within a test (its period: 10,000 days)."""
    return HistoryWindow(refresh_every=timedelta(days=10_000))


def _basis(source: object, **kw: Any) -> Basis:
    return Basis(source, kw.get("metric", "m"), kw.get("step", STEP), kw.get("length", LENGTH))


def _check(got: pd.Series, source: Recording, end: datetime, length: timedelta = LENGTH) -> None:
    """``got`` is what a full read returns now (index and values)."""
    want = source.inner.history(end - length, end, STEP)
    assert got.index.equals(want.index) and got.index.freq == want.index.freq
    np.testing.assert_array_equal(got.to_numpy(), want.to_numpy())


def test_first_read_is_full_then_only_the_tail_with_its_overlap() -> None:
    source, window = Recording(_series()), _window()
    basis = _basis(source)
    end = T0
    _check(window.read(source, basis, end, end), source, end)
    assert source.points() == LENGTH / STEP and window.full_reads == 1
    for minutes in (1, 2, 3, 10):  # the clock moves on a step at a time, then a few at once
        before = end
        end = T0 + timedelta(minutes=minutes)
        _check(window.read(source, basis, end, end), source, end)
        assert source.calls[-1][1] == end
        assert source.points() == (end - before) / STEP + overlap_steps(STEP)  # the new steps and the overlap
    assert window.full_reads == 1 and window.tail_reads == 4


def test_a_cycle_within_the_step_rereads_the_overlap_and_returns_the_same_series() -> None:
    source, window = Recording(_series()), _window()
    basis = _basis(source)
    first = window.read(source, basis, T0, T0)
    again = window.read(source, basis, T0, T0 + timedelta(seconds=15))
    assert again is first and source.points() == overlap_steps(STEP)


def test_a_revised_point_in_the_overlap_is_seen_one_further_back_only_at_the_full_read() -> None:
    source, window = Recording(_series()), HistoryWindow(phase=timedelta(0))
    basis = _basis(source)
    first = window.read(source, basis, T0, T0)
    source.set(T0 - 2 * STEP, 999.0)  # a late sample: within the overlap
    revised = window.read(source, basis, T0, T0 + timedelta(seconds=15))
    assert revised is not first and revised.iloc[-2] == 999.0 and first.iloc[-2] != 999.0  # the old one unchanged
    _check(revised, source, T0)
    source.set(T0 - timedelta(hours=2), 555.0)  # backfilled far behind the overlap
    kept = window.read(source, basis, T0 + STEP, T0 + STEP)
    assert kept[pd.Timestamp(T0 - timedelta(hours=2))] != 555.0  # trusted as settled ...
    later = T0 + timedelta(hours=1)  # ... until the window's hourly full read
    _check(window.read(source, basis, later, later), source, later)
    assert source.points() == LENGTH / STEP and window.full_reads == 2


def test_hourly_full_reads_follow_each_windows_phase() -> None:
    histories = DemandHistories()
    phases = {histories.window(f"uid-{i}").phase_ns for i in range(50)}  # type: ignore[union-attr]
    assert len(phases) == 50 and all(0 <= p < 3600 * 10**9 for p in phases)
    source = Recording(_series())
    window = HistoryWindow(phase=timedelta(minutes=50))  # its full read falls at :10 each hour
    basis = _basis(source)
    window.read(source, basis, T0, T0)  # 12:00 (full)
    for minute in range(1, 12):
        end = T0 + timedelta(minutes=minute)
        window.read(source, basis, end, end)
        assert window.full_reads == (1 if minute < 10 else 2), minute


@pytest.mark.parametrize("change", ["source", "metric", "step", "length"])
def test_a_changed_basis_reads_it_all(change: str) -> None:
    source, window = Recording(_series()), _window()
    window.read(source, _basis(source), T0, T0)
    other = Recording(_series())
    new = {"source": _basis(other), "metric": _basis(source, metric="other"),
           "step": _basis(source, step=timedelta(minutes=2)),
           "length": _basis(source, length=timedelta(hours=3))}[change]
    end = T0 + STEP
    got = window.read(new.source, new, end, end)  # type: ignore[arg-type]
    reader = other if change == "source" else source
    start, stop = reader.calls[-1]
    assert (start, stop) == (end - new.length, end) and window.full_reads == 2
    assert len(got) == new.length / new.step


@pytest.mark.parametrize(("moved", "full"), [
    (LENGTH - STEP * overlap_steps(STEP) - STEP, False),  # one step of the old window is still kept
    (LENGTH - STEP * overlap_steps(STEP), True),  # nothing to keep: the tail would be it all
    (timedelta(days=1), True),  # a gap larger than the window
    (-STEP, True),  # the end went back
])
def test_a_gap_or_a_clock_that_went_back_reads_it_all(moved: timedelta, full: bool) -> None:
    source, window = Recording(_series()), _window()
    basis = _basis(source)
    window.read(source, basis, T0, T0)
    end = T0 + moved
    _check(window.read(source, basis, end, end), source, end)
    assert window.full_reads == (2 if full else 1)


def test_a_failed_tail_read_raises_and_keeps_the_window() -> None:
    source, window = Recording(_series()), _window()
    basis = _basis(source)
    window.read(source, basis, T0, T0)
    source.fail = RetryableError("prometheus: connection refused")
    with pytest.raises(RetryableError, match="connection refused"):
        window.read(source, basis, T0 + STEP, T0 + STEP)
    source.fail = None
    end = T0 + 3 * STEP  # the steps the failure missed are in the next tail
    _check(window.read(source, basis, end, end), source, end)
    assert window.full_reads == 1 and source.points() == 3 + overlap_steps(STEP)


def test_the_window_keeps_its_length_and_one_float_per_point() -> None:
    source, window = Recording(_series()), _window()
    basis = _basis(source)
    for minute in range(0, 200, 7):
        end = T0 + timedelta(minutes=minute)
        got = window.read(source, basis, end, end)
        assert len(got) == LENGTH / STEP and got.index[-1] == end - STEP
    assert window.series is not None and window.series.to_numpy().nbytes == 8 * LENGTH / STEP
    other = _window()
    other.read(source, basis, end, end)
    assert other.series is not None and other.series.index is window.series.index  # one grid object, shared


class OffGrid(Recording):
    """Answers a short read on a grid of its own (half a step off): the window cannot merge it."""

    def history(self, start: datetime, end: datetime, step: timedelta) -> pd.Series:
        got = super().history(start, end, step)
        if end - start < LENGTH:
            got.index = got.index + step / 2
        return got


def test_a_tail_on_another_grid_falls_back_to_a_full_read() -> None:
    source, window = OffGrid(_series()), _window()
    basis = _basis(source)
    window.read(source, basis, T0, T0)
    end = T0 + STEP
    _check(window.read(source, basis, end, end), source, end)
    assert window.full_reads == 2 and source.points(-2) == 1 + overlap_steps(STEP)


class Clipping(Recording):
    """Answers at most the last 2 hours of any window, as PrometheusSource clips a window to 14 days."""

    def history(self, start: datetime, end: datetime, step: timedelta) -> pd.Series:
        return super().history(max(start, end - timedelta(hours=2)), end, step)


def test_a_source_that_clips_the_window_keeps_its_clipped_length() -> None:
    source, window = Clipping(_series()), _window()
    basis = _basis(source)  # 6 hours asked, 2 answered
    for minute in (0, 1, 2, 30):
        end = T0 + timedelta(minutes=minute)
        _check(window.read(source, basis, end, end), source, end, length=timedelta(hours=2))
    assert window.full_reads == 1 and source.points() == 28 + overlap_steps(STEP)


def test_known_counts_follow_the_points_that_leave_and_enter() -> None:
    series = _series()
    series[(series.index >= T0 - LENGTH) & (series.index < T0 + timedelta(minutes=30))] = np.nan
    series[pd.Timestamp(T0 - LENGTH)] = 1.0  # the window's first point: it leaves after one step
    source, window = Recording(series), _window()
    basis = _basis(source)
    window.read(source, basis, T0, T0)
    assert window.known == 1
    window.read(source, basis, T0 + STEP, T0 + STEP)
    assert window.known == 0
    end = T0 + timedelta(minutes=40)
    window.read(source, basis, end, end)
    assert window.known == 10


# ---- the Reconciler ---------------------------------------------------------------------------------------
NS = "casino"


def _reconciler(source: DemandSource, store: InMemoryPolicyStore, clock: FakeClock) -> Reconciler:
    target = InMemoryScaleTarget()
    for name in ("slots-api", "poker-api"):
        target.add(TargetKey(NS, "Deployment", name), 4)

    def demand(policy: PolicyObject, spec: ScalingPolicySpec) -> DemandSource:
        return source

    return Reconciler(store=store, targets=target, recorder=RecordingEventRecorder(), demand=demand, clock=clock)


def test_a_steady_cycle_asks_the_source_for_the_tail_only() -> None:
    trace = Recording(casino_trace(days=4))
    store, clock = InMemoryPolicyStore(), FakeClock(EVENT_START - timedelta(hours=2))
    store.add_policy(NS, "slots", policy_spec(forecast={"model": "seasonal-naive", "step": "1m", "history": "2d",
                                                        "horizon": "1h"}))
    reconciler = _reconciler(trace, store, clock)
    first = reconciler.reconcile_all()
    assert first.outcomes[0].reason != "InternalError" and trace.points() == 2 * 24 * 60
    for _ in range(5):  # one cycle within the step, then the step moves
        clock.advance(timedelta(seconds=15))
        report = reconciler.reconcile_all()
        assert report.outcomes[0].reason == first.outcomes[0].reason
        assert trace.points() <= 1 + overlap_steps(STEP), trace.calls[-1]
    status = store.policies[(NS, "slots")].status or {}
    assert "only" not in str(status)  # the forecast had its history: no "only N demand point(s)"


def test_windows_of_policies_gone_are_dropped_and_too_little_history_still_says_so() -> None:
    trace = Recording(casino_trace(days=1))
    store, clock = InMemoryPolicyStore(), FakeClock(EVENT_START)
    spec = policy_spec(forecast={"model": "seasonal-naive", "step": "1m", "history": "2d", "horizon": "1h"})
    store.add_policy(NS, "slots", spec)
    store.add_policy(NS, "poker", {**spec, "targetRef": {"kind": "Deployment", "name": "poker-api"}})
    reconciler = _reconciler(trace, store, clock)
    reconciler.reconcile_all()
    assert len(reconciler.histories) == 2
    del store.policies[(NS, "poker")]
    reconciler.reconcile_all()
    assert len(reconciler.histories) == 1
    empty = Recording(pd.Series([np.nan, np.nan, 1.0], index=pd.date_range(EVENT_START - timedelta(days=5),
                                                                             periods=3, freq="1min", tz="UTC")))
    lone = _reconciler(empty, store, clock)
    for _ in range(2):  # a full read, then a tail: the same message
        lone.reconcile_all()
        message = str((store.policies[(NS, "slots")].status or {}).get("conditions"))
        assert "only 0 demand point(s) in the last 2d" in message
        clock.advance(timedelta(minutes=1))


# ---- a real Prometheus ------------------------------------------------------------------------------------
class CountingClient(PrometheusClient):
    """The real client, recording the points of every range query it sends."""

    def __init__(self, url: str) -> None:
        super().__init__(PrometheusConfig(url=url, timeout="5s", attempts=1))
        self.ranges: list[int] = []

    def query_range(self, promql: str, start: datetime, end: datetime, step: timedelta) -> list[Any]:
        self.ranges.append(int((end - start) / step) + 1)
        return super().query_range(promql, start, end, step)


@pytest.mark.prometheus
def test_over_a_real_prometheus_the_tails_read_what_full_reads_do(tmp_path: Path) -> None:
    end_s = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600  # in a block, not the head
    start_s = end_s - 3 * 3600
    lines, total = ["# TYPE demand counter"], 0.0
    for t in range(start_s, end_s, 15):  # a rate that moves (20-40/s), so every minute's point differs
        total += 15 * (30 + 10 * math.sin(t / 600))
        lines.append(f'demand_total{{service="slots"}} {total} {t}')
    (tmp_path / "history.om").write_text("\n".join([*lines, "# EOF"]) + "\n")
    subprocess.run([binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "-q",
                    str(tmp_path / "history.om"), str(tmp_path / "tsdb")], check=True, capture_output=True, timeout=120)
    prom = PrometheusServer(tmp_path / "prometheus", tsdb=tmp_path / "tsdb")
    prom.start()
    try:
        client = CountingClient(prom.url)
        source = PrometheusSource(client, "sum(rate(demand_total[1m]))")
        full = PrometheusSource(PrometheusClient(PrometheusConfig(url=prom.url)), source.query)
        window, length = _window(), timedelta(hours=1)
        basis = _basis(source, length=length)
        first = datetime.fromtimestamp(start_s, UTC) + timedelta(minutes=90)
        for minute in range(0, 12):  # a step at a time, then within the step (the same end)
            end = first + timedelta(minutes=minute // 2)
            got = window.read(source, basis, end, end + timedelta(seconds=15 * (minute % 2)))
            want = full.history(end - length, end, STEP)
            assert got.index.equals(want.index)
            np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, equal_nan=True)
            assert int(np.isnan(got.to_numpy()).sum()) == 0
        overlap = overlap_steps(STEP)  # one full query of 60 points, then one of the overlap (+ 1 new step)
        assert client.ranges == [60] + [overlap + (1 if m % 2 == 0 else 0) for m in range(1, 12)]
    finally:
        prom.stop()
