"""The local control loop on fakes: in-memory target, fake demand source, fake clock, a fixed forecaster.

Fakes are used here (the real processes are exercised in tests/controller/targets/test_local.py and the
demo end-to-end test) so the loop's timing and decisions can be checked to the simulated minute.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import ClassVar, Self

import numpy as np
import pandas as pd
import pytest

from controller.core.policy import Policy
from controller.errors import RetryableError
from controller.incidents.engine import IncidentEngine
from controller.local.loadgen import Tally
from controller.local.loop import ControlLoop, FakeClock, StepFeed, dwell_steps
from controller.local.recorder import EventSpan, RunRecord
from controller.sources.fakes import FakeDemandSource
from controller.targets.base import ScaleState, TargetKey
from controller.targets.fake import InMemoryScaleTarget
from forecasting.base import REQUIRED_QUANTILES, Event, Forecast

KEY = TargetKey("local", "Deployment", "casino")
START = pd.Timestamp("2026-02-02T12:00:00Z")
EVENT = Event("cup", "tournament", START + pd.Timedelta(minutes=30), START + pd.Timedelta(minutes=60), 3.5)
STEP = pd.Timedelta(minutes=1)


def demand_at(ts: pd.Timestamp) -> float:
    return 50.0 if EVENT.start <= ts < EVENT.end else 10.0


class StepForecaster:
    """A fixed forecast: 10 req/s, 50 during EVENT; q95 = 1.1 x mean. Records the points it absorbs."""

    name: ClassVar[str] = "fixed"

    def __init__(self, fail_updates: bool = False) -> None:
        self.end = START - STEP
        self.absorbed: list[pd.Series] = []
        self.fail_updates = fail_updates

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        self.end = history.index[-1]
        return self

    def update(self, new_points: pd.Series) -> Self:
        if self.fail_updates:
            raise ValueError("new_points: broken on purpose")
        self.absorbed.append(new_points)
        self.end = new_points.index[-1]
        return self

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        index = pd.date_range(self.end + STEP, periods=horizon, freq=STEP)
        mean = np.array([demand_at(t) for t in index])
        quantiles = {q: mean * (1 + (q - 0.5) / 4.5) for q in REQUIRED_QUANTILES}
        return Forecast(index=index, mean=mean, quantiles=quantiles, model="fixed")


def make_loop(lead_min: int, *, target: InMemoryScaleTarget | None = None, source: FakeDemandSource | None = None,
              model: StepForecaster | None = None, incidents: IncidentEngine | None = None, covering: bool = False,
              **kwargs: object) -> tuple[ControlLoop, InMemoryScaleTarget, FakeDemandSource, RunRecord]:
    """The loop on fakes; ``covering``: its forecast reaches the scale-down guard's whole dwell (as the demo's)."""
    policy = Policy(capacity_per_replica=15, min_replicas=1, max_replicas=4, lead_time=timedelta(minutes=lead_min),
                    sync_period=timedelta(minutes=1))
    if target is None:
        target = InMemoryScaleTarget()
        target.add(KEY, 1)
    source = source or FakeDemandSource(value=10.0)
    model = model or StepForecaster()
    plan = model.predict(120, [EVENT])
    feed = StepFeed(model, [EVENT], START - STEP, STEP, plan,
                    horizon_steps=dwell_steps(policy, STEP) if covering else lead_min + 4)
    record = RunRecord(meta={"capacity_per_replica": 15, "speed": 60, "max_replicas": 4},
                       events=[EventSpan(EVENT.name, EVENT.kind, EVENT.start, EVENT.end, EVENT.expected_lift)])
    settings: dict[str, object] = {"speed": 60, **kwargs}
    loop = ControlLoop(policy=policy, feed=feed, target=target, key=KEY, source=source, record=record,
                       live_start=START, events=[EVENT], clock=FakeClock(), incidents=incidents,
                       **settings)  # type: ignore[arg-type]
    return loop, target, source, record


@pytest.mark.parametrize("lead_min", [2, 5, 10])
def test_prescales_exactly_lead_plus_sync_before_the_event(lead_min: int) -> None:
    loop, target, _, record = make_loop(lead_min)
    loop.run(70)
    first = next(c for c in record.cycles if c.desired == 4)
    assert first.scaled and first.reason == "ScaleUpForecast"
    # the forecast point at the event start enters the window [now, now + lead + sync] at this cycle
    assert first.t.floor("min") == EVENT.start - pd.Timedelta(minutes=lead_min + 1)
    assert (KEY, 4) in target.writes
    assert record.summary().scale_up_lead_min["cup"] == pytest.approx(lead_min + 1, abs=0.01)
    # scale-down only after the event, bounded and stabilized (5 min window, 50 % steps)
    downs = [c for c in record.cycles if c.scaled and c.desired < c.current]
    assert downs and downs[0].t >= EVENT.end - pd.Timedelta(minutes=lead_min + 1) + pd.Timedelta(minutes=5)
    assert downs[0].desired >= 2


def test_runs_one_cycle_per_cycle_seconds_after_one_priming_read() -> None:
    loop, _, source, record = make_loop(3)
    loop.run(10.5)
    assert len(record.cycles) == 10  # t = 1 .. 10 s: cycle 0 is the priming read
    assert len(source.calls) == 11
    assert [round(c.elapsed) for c in record.cycles] == list(range(1, 11))
    assert record.cycles[0].t == START + pd.Timedelta(minutes=1)


def test_metrics_unavailable_holds_and_raises_an_incident_then_resolves() -> None:
    engine = IncidentEngine()
    target = InMemoryScaleTarget()
    target.add(KEY, 3)
    loop, _, source, record = make_loop(3, target=target, incidents=engine)
    source.fail_retryable("scrape: every replica stale")
    first = loop.cycle()
    assert first.reason == "MetricsUnavailable" and first.desired == 3 and not first.scaled
    assert first.fired == ["MetricsUnavailable"]
    assert "every replica stale" in record.incidents[0]["description"]
    source.recover()
    loop.clock.sleep(1)
    second = loop.cycle()
    assert second.resolved == ["MetricsUnavailable"]
    assert second.observed == 10.0


class FailingTarget(InMemoryScaleTarget):
    def set_replicas(self, key: TargetKey, replicas: int, resource_version: str | None = None) -> ScaleState:
        raise RetryableError("scale: connection refused")


def test_failed_scale_calls_raise_scaling_failing_after_three() -> None:
    target = FailingTarget()
    target.add(KEY, 1)
    loop, _, source, _ = make_loop(3, target=target, incidents=IncidentEngine())
    source.value = 55.0  # needs 4 now
    fired: list[str] = []
    for _ in range(3):
        rec = loop.cycle()
        assert not rec.scaled and rec.desired == 4
        fired += rec.fired
        loop.clock.sleep(1)
    assert "ScalingFailing" in fired
    assert loop.scale_failures == 3 and "connection refused" in (loop.last_scale_error or "")


def test_feed_absorbs_completed_steps_and_falls_back_to_the_plan() -> None:
    model = StepForecaster()
    plan = model.predict(60, [EVENT])
    feed = StepFeed(model, [EVENT], START - STEP, STEP, plan, horizon_steps=8)
    assert feed.at(START + pd.Timedelta(seconds=30), 10.0) is plan  # no step completed yet
    got = feed.at(START + pd.Timedelta(minutes=3, seconds=5), 12.0)
    # 12:00, 12:01 and 12:02 have fully passed at 12:03:05
    assert list(model.absorbed[0].index) == list(pd.date_range(START, periods=3, freq=STEP))
    assert (model.absorbed[0] == 12.0).all() and len(got.index) == 8 and got.index[0] == START + 3 * STEP
    feed.at(START + pd.Timedelta(minutes=4, seconds=5), None)
    assert model.absorbed[-1].isna().all()  # unknown demand is a gap, never zero
    broken = StepForecaster(fail_updates=True)
    feed = StepFeed(broken, [EVENT], START - STEP, STEP, plan, horizon_steps=8)
    for minute in range(2, 7):
        assert feed.at(START + pd.Timedelta(minutes=minute), 10.0) is plan
    assert len(feed.failures) == 3  # then it stops trying


def test_lead_time_grows_with_slower_measured_startups() -> None:
    leads = iter([timedelta(minutes=2), timedelta(minutes=6), timedelta(minutes=4)])
    loop, _, _, _ = make_loop(3, lead_time=lambda: next(leads))
    for _ in range(3):
        loop.cycle()
        loop.clock.sleep(1)
    assert loop.policy.lead_time == timedelta(minutes=6)  # never shortened
    assert [d for _, d in loop.lead_changes] == [timedelta(minutes=6)]


def test_records_load_deltas_per_cycle() -> None:
    tallies = iter([Tally(offered=10, sent=10, served=9, rejected=1), Tally(offered=25, sent=24, served=20,
                                                                            rejected=3, unrouted=1)])
    loop, _, _, record = make_loop(3, load=lambda: next(tallies))
    loop.cycle()
    loop.cycle()
    assert [(c.offered, c.served, c.rejected, c.unserved) for c in record.cycles] == [(10, 9, 1, 1), (15, 11, 2, 3)]
    loop.settle(Tally(offered=27, sent=26, served=23, rejected=3, unrouted=1))  # 2 late answers, 2 late arrivals
    assert (record.cycles[-1].offered, record.cycles[-1].served) == (17, 14)
    assert record.summary().offered == 27 and record.summary().served == 23


@pytest.mark.parametrize(("kwargs", "message"), [({"speed": 0}, "speed"), ({"cycle_seconds": 0}, "cycle")])
def test_refuses_bad_settings(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_loop(3, **kwargs)  # type: ignore[arg-type]


class UnitForecaster(StepForecaster):
    """The fixed forecast with its stamps at another resolution (pandas 3 parses text at s or us),
    or (with ``shift``) a forecast of another day: one that exists but does not cover now."""

    def __init__(self, unit: str = "ns", shift: pd.Timedelta = pd.Timedelta(0)) -> None:
        super().__init__()
        self.unit, self.shift = unit, shift

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        fc = super().predict(horizon, events)
        index = (fc.index + self.shift).as_unit(self.unit)
        return Forecast(index=index, mean=fc.mean, quantiles=fc.quantiles, model="fixed")


@pytest.mark.parametrize("unit", ["s", "us"])
def test_prescales_from_a_forecast_at_any_resolution(unit: str) -> None:
    loop, _, _, record = make_loop(5, model=UnitForecaster(unit))
    loop.run(70)
    assert loop.uncovered_cycles == 0
    assert not any(c.reason == "MetricsUnavailable" for c in record.cycles)
    first = next(c for c in record.cycles if c.desired == 4)
    assert first.reason == "ScaleUpForecast" and first.t.floor("min") == EVENT.start - pd.Timedelta(minutes=6)


def test_a_forecast_that_misses_now_is_logged_as_an_error(caplog: pytest.LogCaptureFixture) -> None:
    loop, _, _, _ = make_loop(5, model=UnitForecaster(shift=pd.Timedelta(days=-1)))
    with caplog.at_level("ERROR", logger="controller.local.loop"):
        rec = loop.cycle()
    assert loop.uncovered_cycles == 1 and rec.reason == "MetricsUnavailable"
    message = next(r.getMessage() for r in caplog.records if r.levelname == "ERROR")
    assert "forecast does not cover" in message
    assert rec.t.isoformat() in message and (START - pd.Timedelta(days=1)).isoformat() in message


class RevisingForecaster(StepForecaster):
    """The fixed forecast, but revised down for four minutes after the event starts (demand there ramps up,
    and a model updated with the ramp pulls the whole plateau down, as the demo's calendar model did)."""

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        fc = super().predict(horizon, events)
        if EVENT.start <= self.end < EVENT.start + pd.Timedelta(minutes=4):
            fc = Forecast(index=fc.index, mean=np.minimum(fc.mean, 32.0),
                          quantiles={q: np.minimum(v, 32.0 * (1 + (q - 0.5) / 4.5)) for q, v in fc.quantiles.items()},
                          model="fixed")
        return fc


def test_a_forecast_covering_the_dwell_does_not_flap() -> None:
    """With a forecast over the whole dwell, a four-minute downward revision right after the pre-scale must not
    take a replica away and give it back: within lead + sync + window of the scale-up the backward window rules.
    The forecast-led scale-down still cuts the window short after the event."""
    ramp = pd.Series([10.0] * 30 + [15.0, 20.0, 25.0, 30.0, 35.0, 40.0] + [45.0] * 24 + [10.0] * 40,
                     index=pd.date_range(START, periods=100, freq=STEP))
    loop, _, _, record = make_loop(5, model=RevisingForecaster(), source=FakeDemandSource(ramp), covering=True)
    loop.run(90)
    counts = [c.desired for c in record.cycles]
    ups = [c.t.floor("min") for c in record.cycles if c.scaled and c.desired > c.current]
    assert ups == [EVENT.start - pd.Timedelta(minutes=6)], (ups, counts)
    peak = counts.index(4)
    assert min(counts[peak:counts.index(4) + 30]) == 4, counts
    downs = [c for c in record.cycles if c.scaled and c.desired < c.current]
    assert downs and downs[0].t < EVENT.end + pd.Timedelta(minutes=5), [(c.t, c.reason) for c in downs]
    assert "not holding the last 5m's 4" in downs[0].message, downs[0].message
