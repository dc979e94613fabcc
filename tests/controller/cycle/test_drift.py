"""The shells no longer drift: ForecastMiss, 409s and the metrics safeguard, the same in operator and local.

ForecastMiss must count forecast steps at the configured ``forecast_miss_quantile`` in both the
operator's incident path (``IncidentReporter.observe``, as the reconciler calls it every sync
period) and the local loop (every cycle of the compressed clock), whatever the demo speed. The
local loop runs on fakes (in-memory target, fake demand, fake clock: nothing real can run a
compressed clock to the second); the operator's reporter runs with the real engine and rules.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pandas as pd
import pytest

from controller.core.decide import decide
from controller.core.decision import Decision, ObservedState
from controller.core.policy import ScaleDown
from controller.incidents.engine import IncidentEngine
from controller.incidents.rules import RuleSettings
from controller.operator.incidents import IncidentReporter
from controller.operator.kube import PolicyObject
from controller.operator.resources import parse_policy_spec
from controller.sources.fakes import FakeDemandSource
from controller.targets.base import ScaleState, TargetKey
from controller.targets.fake import InMemoryScaleTarget
from tests.controller.local.test_loop import EVENT, KEY, START, STEP, StepForecaster, make_loop
from tests.controller.operator.harness import policy_spec

# Demand 10.5/s against a forecast of 10/s (q50 10, q99 ~11.1): a miss at q50, none at q99.
ABOVE_MEDIAN = 10.5
AT_MEDIAN = RuleSettings(forecast_miss_quantile=0.5, forecast_miss_steps=3)


def _first_miss_local(speed: float, settings: RuleSettings) -> pd.Timestamp | None:
    """Simulated time of the local loop's first ForecastMiss (None: none in 6 simulated minutes)."""
    loop, *_ = make_loop(3, incidents=IncidentEngine(), rules=settings, speed=speed,
                         source=FakeDemandSource(value=ABOVE_MEDIAN))
    while loop.sim_time(loop.clock.monotonic() - loop.t0) < START + pd.Timedelta(minutes=6):
        loop.clock.sleep(1)
        rec = loop.cycle()
        if "ForecastMiss" in rec.fired:
            return rec.t
    return None


def _first_miss_operator(sync: timedelta, settings: RuleSettings) -> pd.Timestamp | None:
    """Time of the operator's first ForecastMiss, the reporter called once per sync period."""
    reporter = IncidentReporter(IncidentEngine(), settings=settings)
    spec = parse_policy_spec(policy_spec(forecast={"model": "calendar", "step": "1m", "history": "3d",
                                                   "horizon": "1h"}))
    core = spec.to_policy()
    policy = PolicyObject("default", "slots", "uid-1", 1, {})
    forecast = StepForecaster().predict(120, [EVENT])
    now = START + sync
    while now < START + pd.Timedelta(minutes=6):
        state = ObservedState(now=now.to_pydatetime(), current_replicas=2, ready_replicas=2,
                              observed_demand=ABOVE_MEDIAN)
        result = reporter.observe(policy, spec, core, state, decide(core, forecast, state), events=[],
                                  forecast=forecast, metrics_error=None)
        if any(i.alertname == "ForecastMiss" for i in result.fired):
            return now
        now += sync
    return None


def _steps_missed(first_miss: pd.Timestamp | None, first_cycle: pd.Timestamp) -> int | None:
    """How many forecast steps (the first cycle's counted as one) it took to fire."""
    if first_miss is None:
        return None
    return int((first_miss.floor(STEP) - first_cycle.floor(STEP)) / STEP) + 1


@pytest.mark.parametrize("speed", [15, 30, 60])
def test_local_counts_forecast_miss_per_step_at_the_configured_quantile_at_any_speed(speed: float) -> None:
    first = START + pd.Timedelta(seconds=speed)  # the first cycle, one real second in
    assert _steps_missed(_first_miss_local(speed, AT_MEDIAN), first) == 3
    assert _first_miss_local(speed, RuleSettings()) is None  # below the default q99: no miss


@pytest.mark.parametrize("sync", [timedelta(seconds=15), timedelta(seconds=30), timedelta(minutes=1)])
def test_operator_counts_forecast_miss_the_same_way(sync: timedelta) -> None:
    first = START + sync
    assert _steps_missed(_first_miss_operator(sync, AT_MEDIAN), first) == 3
    assert _first_miss_operator(sync, RuleSettings()) is None


class ConflictOnce(InMemoryScaleTarget):
    """Someone else scales the workload between our read and our write, once."""

    def __init__(self, to: int) -> None:
        super().__init__()
        self.to, self.raced = to, False

    def set_replicas(self, key: TargetKey, replicas: int, resource_version: str | None = None) -> ScaleState:
        if not self.raced:
            self.raced = True
            super().set_replicas(key, self.to)  # the human's edit: bumps the resourceVersion
        return super().set_replicas(key, replicas, resource_version)


def test_local_loop_rereads_and_decides_again_on_a_409() -> None:
    target = ConflictOnce(to=20)
    target.add(KEY, 10)
    loop, _, _, _ = make_loop(3, target=target)  # 10 req/s needs 1
    loop.policy = loop.policy.model_copy(update={"max_replicas": 40, "scale_down": ScaleDown(max_step_percent=10)})
    rec = loop.cycle()
    # the stale read (10) asked for one 10% step down, 9; the write met the human's 20 (a 409) and was
    # decided again from it: 18, never the stale 9
    assert target.writes == [(KEY, 20), (KEY, 18)]
    assert target.get_scale(KEY).replicas == 18
    assert rec.scaled and rec.desired == 18 and loop.scale_failures == 0


def test_local_loop_never_scales_down_without_metrics() -> None:
    def reckless(policy: Any, forecast: Any, state: ObservedState) -> Decision:
        real = decide(policy, forecast, state)  # a decide() that would scale down blind (the safeguard's case)
        return replace(real, desired_replicas=1)

    target = InMemoryScaleTarget()
    target.add(KEY, 4)
    loop, _, source, _ = make_loop(3, target=target, decide=reckless)
    source.fail_retryable("scrape: every replica stale")
    loop.cycle()
    assert target.get_scale(KEY).replicas == 4 and (KEY, 1) not in target.writes
