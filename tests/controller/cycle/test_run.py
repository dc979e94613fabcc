"""run_cycle's phases on the cycle's fakes: plan is pure, the memory changes once in apply, act writes once.

Fakes of every port (``controller.cycle.fakes``): what is tested is the order and the hand-over between
the phases; the real adapters are exercised through the shells' tests (operator, local, simulate).
"""

from __future__ import annotations

from copy import deepcopy
from datetime import timedelta

import numpy as np
import pandas as pd

from controller.core.policy import Policy
from controller.cycle.fakes import FakeClock, FakeDemand, FakeForecasts, FakeIncidentSink, FakeRecorder
from controller.cycle.memory import PolicyMemory
from controller.cycle.run import Ports, observe, plan, run_cycle
from controller.targets.base import TargetKey
from controller.targets.fake import InMemoryScaleTarget
from forecasting.base import REQUIRED_QUANTILES, Forecast
from tests.controller.local.test_loop import FailingTarget

KEY = TargetKey("ns", "Deployment", "api")
T0 = pd.Timestamp("2026-02-02T12:00:00Z")
POLICY = Policy(capacity_per_replica=10, min_replicas=1, max_replicas=10, lead_time=timedelta(minutes=2),
                sync_period=timedelta(minutes=1))


def _forecast(level: float) -> Forecast:
    index = pd.date_range(T0 - pd.Timedelta(minutes=5), periods=30, freq="1min")
    mean = np.full(len(index), level)
    return Forecast(index=index, mean=mean, quantiles={q: mean for q in REQUIRED_QUANTILES}, model="flat")


def _ports(target: InMemoryScaleTarget, demand: float | None = 50.0, level: float = 50.0, **kw: object) -> Ports:
    return Ports(policy=POLICY, target=target, key=KEY, demand=FakeDemand(value=demand),
                 forecasts=FakeForecasts(_forecast(level)), clock=FakeClock(T0.to_pydatetime()),
                 step=timedelta(minutes=1), **kw)  # type: ignore[arg-type]


def _target(replicas: int) -> InMemoryScaleTarget:
    target = InMemoryScaleTarget()
    target.add(KEY, replicas)
    return target


def test_plan_is_pure_and_apply_changes_the_memory_once() -> None:
    target = _target(2)
    ports = _ports(target, recorder=FakeRecorder(), incidents=FakeIncidentSink(fire=["X"]))
    memory = PolicyMemory({"namespace": "ns", "policy": "p"})
    obs = observe(ports)
    before = deepcopy(memory)
    planned = plan(POLICY, obs, memory)
    assert memory == before  # plan changes nothing
    assert planned.desired == 5 and planned.decision.reason.startswith("ScaleUp")
    out = run_cycle(ports, memory)
    assert out.acted.scaled and target.get_scale(KEY).replicas == 5 and target.writes == [(KEY, 5)]
    assert memory.last_scale_time == T0.to_pydatetime() == memory.last_scale_up_time
    assert [r.replicas for r in memory.recommendations.runs] == [5]
    assert out.fired == ["X"] and ports.recorder.outcomes == [out]  # type: ignore[union-attr]


def test_a_scale_down_moves_the_last_scale_time_but_not_the_last_scale_up_time() -> None:
    target = _target(8)
    memory = PolicyMemory({"namespace": "ns", "policy": "p"})
    earlier = (T0 - pd.Timedelta(hours=1)).to_pydatetime()
    memory.last_scale_up_time = earlier
    out = run_cycle(_ports(target, demand=20.0, level=20.0), memory)
    assert out.acted.scaled and target.get_scale(KEY).replicas == 4  # one 50 % step
    assert memory.last_scale_time == T0.to_pydatetime() and memory.last_scale_up_time == earlier


def test_a_failing_source_is_unknown_demand_and_never_a_scale_down() -> None:
    target = _target(6)
    ports = _ports(target, level=10.0)
    ports.demand = FakeDemand(error="scrape: every replica stale")
    sink = FakeIncidentSink()
    ports.incidents = sink
    memory = PolicyMemory({"namespace": "ns", "policy": "p"})
    out = run_cycle(ports, memory)
    assert out.observation.observed is None and out.observation.metrics_error == "scrape: every replica stale"
    assert out.plan.desired == 6 and not out.acted.scaled and target.writes == []
    assert sink.seen[0][2] == "scrape: every replica stale"


def test_a_failed_write_counts_in_the_memory_before_the_rules_see_it() -> None:
    target = FailingTarget()  # every write refused
    target.add(KEY, 1)
    sink = FakeIncidentSink()
    memory = PolicyMemory({"namespace": "ns", "policy": "p"})
    for _ in range(2):
        out = run_cycle(_ports(target, incidents=sink), memory)
    assert out.acted.scale_error == "scale: connection refused" and not out.acted.scaled
    assert [count for *_, count in sink.seen] == [1, 2] and memory.last_scale_time is None


def test_without_writes_the_cycle_decides_and_remembers_but_writes_nothing() -> None:
    target = _target(2)
    ports = _ports(target)
    ports.writes = False  # the operator's ForecastOnly
    memory = PolicyMemory({"namespace": "ns", "policy": "p"})
    out = run_cycle(ports, memory)
    assert out.acted.desired == 5 and not out.acted.scaled and target.writes == []
    assert [r.replicas for r in memory.recommendations.runs] == [5] and memory.last_scale_time is None


def test_the_database_is_read_decided_and_written_after_the_app_with_its_memory() -> None:
    from controller.cycle.database import DatabaseTarget
    from controller.cycle.fakes import FakeLagSource

    db_key = TargetKey("ns", "Cluster", "pg")
    policy = POLICY.model_copy(update={"database_replicas": Policy.model_validate(
        {"capacity_per_replica": 10, "database_replicas": {"capacity_per_replica": 20, "max_replicas": 5}}
    ).database_replicas})
    target = _target(2)
    target.add(db_key, 2)  # one primary, one read replica
    ports = _ports(target)
    ports.policy = policy
    ports.database = DatabaseTarget(db_key, primary_instances=1, lags=FakeLagSource())
    memory = PolicyMemory({"namespace": "ns", "policy": "p"})
    out = run_cycle(ports, memory)
    assert out.observation.database is not None and out.plan.state.database_current_replicas == 1
    wanted = out.acted.decision.database_desired_replicas
    assert wanted is not None and wanted > 1 and out.acted.database_scaled
    assert target.writes == [(KEY, 5), (db_key, wanted + 1)]  # the app first; the primary counted back in
    assert memory.database.current == wanted and out.acted.database_replicas == wanted
    assert memory.database.recommendations.runs[0].replicas == 1  # first sight remembered
