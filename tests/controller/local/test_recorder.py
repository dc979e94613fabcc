"""The run recorder's summary numbers and its JSON round trip, on hand-made timelines."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from controller.local.recorder import CycleRecord, EventSpan, RunRecord

T0 = pd.Timestamp("2026-02-02T12:00:00Z")
MIN = pd.Timedelta(minutes=1)


def cycle(i: int, *, current: int, desired: int, ready: int, offered: int = 10, served: int = 10,
          rejected: int = 0, unserved: int = 0, reason: str = "Hold") -> CycleRecord:
    return CycleRecord(t=T0 + i * MIN, elapsed=float(i), trace_rate=10.0, observed=10.0, offered=offered,
                       served=served, rejected=rejected, unserved=unserved, current=current, ready=ready,
                       desired=desired, q50=10.0, q95=12.0, q99=13.0, reason=reason, message=f"cycle {i}",
                       scaled=desired != current)


def record(cycles: list[CycleRecord], peak: float = 40.0) -> RunRecord:
    event = EventSpan("cup", "tournament", T0 + 10 * MIN, T0 + 20 * MIN, 3.5)
    trace = [(T0 + i * MIN, peak if 10 <= i < 20 else 10.0) for i in range(30)]
    return RunRecord(meta={"capacity_per_replica": 15.0, "speed": 60.0, "max_replicas": 4},
                     cycles=cycles, events=[event], trace=trace,
                     plan=[(T0 + i * MIN, 10.0, 12.0, 13.0) for i in range(30)])


def timeline(scale_at: int, ready_at: int) -> list[CycleRecord]:
    out = []
    for i in range(30):
        desired = 3 if i >= scale_at else 1
        current = 3 if i > scale_at else 1
        ready = 3 if i >= ready_at else 1
        out.append(cycle(i, current=current, desired=desired, ready=ready, reason="ScaleUpForecast"
                         if i == scale_at else "Hold"))
    return out


@pytest.mark.parametrize(
    ("scale_at", "ready_at", "scale_lead", "ready_lead"),
    [
        (4, 7, 6.0, 3.0),  # pre-scaled: ready 3 minutes before the start
        (9, 12, 1.0, -2.0),  # decided just before, ready 2 minutes late
        (12, 14, -2.0, -4.0),  # reactive: scaled up after the start (negative lead)
    ],
)
def test_leads_before_the_event(scale_at: int, ready_at: int, scale_lead: float, ready_lead: float) -> None:
    s = record(timeline(scale_at, ready_at)).summary()
    assert s.scale_up_lead_min["cup"] == pytest.approx(scale_lead)
    assert s.ready_lead_min["cup"] == pytest.approx(ready_lead)
    # demand needs 3 replicas (40 req/s at 15 each) from the start: ready that long ahead (or behind)
    assert s.ahead_of_demand_min["cup"] == pytest.approx(ready_lead)
    assert s.scale_ups == 1 and s.scale_downs == 0 and s.peak_ready == 3


def test_never_ready_for_the_peak_is_none() -> None:
    cycles = [cycle(i, current=1, desired=1, ready=1) for i in range(30)]
    s = record(cycles).summary()
    assert s.ready_lead_min["cup"] is None and s.scale_up_lead_min["cup"] is None
    assert s.ahead_of_demand_min["cup"] is None


def test_capacity_ahead_is_the_worst_replica_step() -> None:
    # 2 replicas ready at minute 5, the third only at minute 12; demand needs 2 from minute 8, 3 from 15
    trace_need = {i: 20.0 if 8 <= i < 15 else 40.0 if 15 <= i < 20 else 10.0 for i in range(30)}
    cycles = [cycle(i, current=1, desired=1, ready=1 + (i >= 5) + (i >= 12)) for i in range(30)]
    rec = record(cycles)
    rec.trace = [(T0 + i * MIN, v) for i, v in trace_need.items()]
    rec.events[0] = EventSpan("cup", "tournament", T0 + 8 * MIN, T0 + 20 * MIN)
    assert rec.summary().ahead_of_demand_min["cup"] == pytest.approx(3.0)  # min(8 - 5, 15 - 12)


def test_unserved_share_and_replica_seconds() -> None:
    cycles = [cycle(0, current=1, desired=1, ready=1, offered=100, served=90, rejected=8, unserved=10),
              cycle(1, current=1, desired=2, ready=2, offered=100, served=100),
              cycle(3, current=2, desired=2, ready=4, offered=0, served=0)]
    s = record(cycles).summary()
    assert (s.offered, s.served, s.unserved) == (200, 190, 10)
    assert s.unserved_share == pytest.approx(0.05)
    assert s.replica_seconds == pytest.approx(1 * 1 + 2 * 2)  # ready x real seconds until the next cycle
    assert s.replica_minutes_sim == pytest.approx(5.0)  # at 60x, one real second is one simulated minute


def test_decisions_keep_changes_only() -> None:
    cycles = [cycle(0, current=1, desired=1, ready=1), cycle(1, current=1, desired=1, ready=1),
              cycle(2, current=1, desired=3, ready=1, reason="ScaleUpForecast"),
              cycle(3, current=3, desired=3, ready=3), cycle(4, current=3, desired=3, ready=3)]
    assert [c.t for c in record(cycles).decisions()] == [T0, T0 + 2 * MIN, T0 + 3 * MIN]


def test_json_round_trip(tmp_path: Path) -> None:
    original = record(timeline(4, 7))
    original.incidents.append({"alertname": "ForecastMiss", "at": T0.isoformat()})
    path = original.save(tmp_path / "run" / "run.json")
    loaded = RunRecord.load(path)
    assert loaded.cycles == original.cycles and loaded.events == original.events
    assert loaded.trace == original.trace and loaded.plan == original.plan
    assert loaded.summary() == original.summary()
    assert not list(tmp_path.glob("run/*.tmp"))
