"""One cycle of one policy: observe() -> plan() -> act() -> record(), effects applied once.

``run_cycle(ports, memory)`` is the loop body every shell runs:

1. ``observe``: the target's scale (and its database's, with the replicas'
   lag, ``controller.cycle.database``), the demand now (a failing source is
   unknown demand with the reason; ``DemandUnavailable`` keeps what it read),
   the forecast for now -> ``Observation``;
2. ``plan``: pure; the ``ObservedState`` (with the memory's stabilization
   windows, last scale time and database memory), ``decide`` and the
   safeguard (never a scale-down without metrics) -> ``Plan``;
3. ``act``: the cycle's writes, the app's then the database's (a 409 re-reads
   and decides again, ``controller.cycle.act``); nothing when ``Ports.writes``
   is off (the operator's ForecastOnly) -> ``Acted``, whose ``scale_error``
   (and ``failure``, the exception) says why not;
4. ``record``: the memory's changes (recommendations, scale failures, last
   scale time and last scale-up time, database memory) applied in one place, ``apply``, as kopf
   applies its accumulated patches once; then the incident rules and the
   recorder.

``Plan.uncovered`` (a forecast that does not cover now: a bug, issue 9) is
for the shell to log and count, under its own name.

Time comes from the ports' ``Clock``: the local run's compressed clock, the
simulator's step, the operator's clock. The shells only build the ports and
translate the ``CycleOutcome``: ``controller.local.loop`` into its run
record and metrics, ``controller.simulate.predictive`` into the engine's
step, ``controller.operator.reconcile`` into status (the memory dumped into
it, ``PolicyMemory.dump``), Kubernetes Events and metrics; the operator runs
the phases one by one (``observe``, ``plan``, ``act``, ``record``) because a
target it cannot read or write (404/403, a lost lease) ends its policy's
cycle between them. Paused is the operator's alone: it runs no phase.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from controller.core.decide import FORECAST_NOT_COVERING
from controller.core.decide import decide as core_decide
from controller.core.decision import Decision, ObservedState
from controller.core.policy import Policy
from controller.cycle import database as db
from controller.cycle.act import safeguarded, write_replicas
from controller.cycle.database import DatabaseTarget, LagReading
from controller.cycle.memory import PolicyMemory
from controller.cycle.ports import Clock, DemandSource, DemandUnavailable, Forecasts, IncidentSink, Recorder
from controller.errors import PitbossError
from controller.targets.base import ScaleState, ScaleTarget, TargetKey
from forecasting.base import Event, Forecast

DecideFn = Callable[[Policy, Forecast | None, ObservedState], Decision]


@dataclass(frozen=True)
class At:
    """A ``Clock`` standing at the time a shell computed for this cycle (compressed or simulated)."""

    at: datetime

    def now(self) -> datetime:
        return self.at


@dataclass
class Ports:
    """The adapters of one policy's cycle."""

    policy: Policy
    target: ScaleTarget
    key: TargetKey
    demand: DemandSource
    forecasts: Forecasts | None
    clock: Clock
    step: timedelta  # the forecast step (ForecastMiss counts these)
    events: Sequence[Event] = ()
    incidents: IncidentSink | None = None
    recorder: Recorder | None = None
    decide: DecideFn = core_decide
    database: DatabaseTarget | None = None  # the policy's database read replicas, a second target
    writes: bool = True  # False: decide and record, never write a target (the operator's ForecastOnly)
    timed: Callable[[], AbstractContextManager[object]] = contextlib.nullcontext  # wraps every target call


@dataclass(frozen=True)
class DatabaseView:
    """What a cycle saw of the database: its /scale and its replicas' lag."""

    scale: ScaleState
    lags: LagReading
    primary_instances: int = 0


@dataclass(frozen=True)
class Observation:
    """What a cycle saw."""

    now: datetime
    scale: ScaleState
    observed: float | None
    metrics_error: str | None
    forecast: Forecast | None
    database: DatabaseView | None = None
    forecast_note: str | None = None  # the port's note: why no forecast, or why it is not a fit (a queued refit)


@dataclass(frozen=True)
class Plan:
    """What the cycle means to do (pure)."""

    state: ObservedState
    decision: Decision
    desired: int  # what to write: the decision, never a scale-down without metrics
    uncovered: bool  # a forecast exists but does not cover now (a bug, logged)


@dataclass(frozen=True)
class Acted:
    """What the writes did."""

    decision: Decision  # decided again from the fresh scale after a 409
    state: ObservedState  # what that decision saw
    desired: int  # the app replicas that decision asks for (safeguarded)
    scaled: bool  # the app target was written
    after: ScaleState
    scale_error: str | None = None
    failure: Exception | None = None  # the exception behind ``scale_error`` (the operator sorts 404/403 out)
    database: ScaleState | None = None  # the database's /scale after
    database_replicas: int | None = None  # its read replicas after (without the primaries)
    database_scaled: bool = False


@dataclass(frozen=True)
class CycleOutcome:
    """One cycle, end to end."""

    observation: Observation
    plan: Plan
    acted: Acted
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


def observe(ports: Ports) -> Observation:
    """Read the target (and the database's), the demand, the forecast for now and the replicas' lag."""
    now = ports.clock.now()
    with ports.timed():
        scale = ports.target.get_scale(ports.key)
        db_scale = None if ports.database is None else ports.target.get_scale(ports.database.key)
    metrics_error: str | None = None
    try:
        observed = ports.demand.current(now)
    except DemandUnavailable as exc:
        observed, metrics_error = exc.value, str(exc)
    except PitbossError as exc:
        observed, metrics_error = None, str(exc)
    forecast = note = None
    if ports.forecasts is not None:
        forecast, note = ports.forecasts.at(now, observed), ports.forecasts.note
    database = None
    if ports.database is not None and db_scale is not None:
        database = DatabaseView(db_scale, db.read_lags(ports.database, now), ports.database.primary_instances)
    return Observation(now, scale, observed, metrics_error, forecast, database, note)


def _database_fields(policy: Policy, seen: DatabaseView | None, scale: ScaleState | None, memory: PolicyMemory,
                     now: datetime) -> dict[str, Any]:
    if seen is None or scale is None or policy.database_replicas is None:
        return {}
    return db.state_fields(policy.database_replicas, seen.primary_instances, scale, seen.lags, memory.database, now)


def plan(policy: Policy, obs: Observation, memory: PolicyMemory, decide: DecideFn = core_decide) -> Plan:
    """Decide from the observation and the memory; changes nothing."""
    window = policy.scale_down.stabilization_window
    state = ObservedState(now=obs.now, current_replicas=obs.scale.replicas, ready_replicas=obs.scale.ready_replicas,
                          observed_demand=obs.observed,
                          recommendations=memory.recommendations.view(obs.now, window),
                          last_scale_time=memory.last_scale_time, last_scale_up_time=memory.last_scale_up_time,
                          forecast_note=obs.forecast_note,
                          **_database_fields(policy, obs.database, None if obs.database is None
                                             else obs.database.scale, memory, obs.now))
    decision = decide(policy, obs.forecast, state)
    return Plan(state, decision, safeguarded(decision, state.current_replicas),
                FORECAST_NOT_COVERING in decision.flags)


def act(ports: Ports, obs: Observation, planned: Plan, memory: PolicyMemory) -> Acted:
    """Write the planned replicas, the app's then the database's; a failure is the ``scale_error``.

    After a 409 the target is read again and the policy decided again from the fresh state
    (stabilization and all), never the stale count; ``Acted`` carries that decision and state.
    """
    state, final = planned.state, planned.decision
    seen = obs.database
    reads = ports.policy.database_replicas

    def decide_again(**fresh: Any) -> None:
        nonlocal state, final
        state = replace(state, **fresh)
        final = ports.decide(ports.policy, obs.forecast, state)

    def app_for(fresh: ScaleState | None) -> int:
        if fresh is not None:
            decide_again(current_replicas=fresh.replicas, ready_replicas=fresh.ready_replicas)
        return safeguarded(final, state.current_replicas)  # never scale down without metrics

    def database_for(fresh: ScaleState | None) -> int:
        assert seen is not None
        if fresh is not None:
            decide_again(**_database_fields(ports.policy, seen, fresh, memory, obs.now))
        target = final.database_desired_replicas
        if target is None:
            target = state.database_current_replicas or 0
        return target + seen.primary_instances

    after, scaled = obs.scale, False
    db_after, db_scaled = (None, False) if seen is None else (seen.scale, False)
    error: str | None = None
    failure: Exception | None = None
    if ports.writes:
        try:
            after, scaled = write_replicas(ports.target, ports.key, obs.scale, app_for, timed=ports.timed)
            if ports.database is not None and seen is not None and reads is not None \
                    and final.database_desired_replicas is not None:
                db_after, db_scaled = write_replicas(ports.target, ports.database.key, seen.scale, database_for,
                                                     timed=ports.timed)
        except PitbossError as exc:
            error, failure = str(exc), exc
    db_count = None if seen is None or db_after is None else db.replicas(seen.primary_instances, db_after.replicas)
    return Acted(final, state, app_for(None), scaled, after, error, failure, db_after, db_count, db_scaled)


def apply(memory: PolicyMemory, policy: Policy, acted: Acted) -> None:
    """The memory's changes of one cycle, in one place."""
    now, window = acted.state.now, policy.scale_down.stabilization_window
    memory.recommendations.add(acted.decision.recommended_replicas, now)
    memory.recommendations.forget_before(now, window)
    memory.scale.record(acted.scale_error)
    if acted.scaled:
        memory.last_scale_time = now
        if acted.desired > acted.state.current_replicas:
            memory.last_scale_up_time = now
    if policy.database_replicas is not None and acted.database_replicas is not None:
        db.apply(memory.database, policy.database_replicas, acted.decision,
                 acted.state.database_current_replicas or 0, acted.database_replicas, now)


def record(ports: Ports, memory: PolicyMemory, obs: Observation, planned: Plan, acted: Acted) -> CycleOutcome:
    """Apply the memory's changes, evaluate the incident rules, hand the outcome to the recorder."""
    apply(memory, ports.policy, acted)
    fired: list[str] = []
    resolved: list[str] = []
    if ports.incidents is not None:
        fired, resolved = ports.incidents.observe(
            memory, policy=ports.policy, state=acted.state, decision=acted.decision, step=ports.step,
            forecast=obs.forecast, events=ports.events, metrics_error=obs.metrics_error)
    outcome = CycleOutcome(obs, planned, acted, fired, resolved)
    if ports.recorder is not None:
        ports.recorder.record(outcome)
    return outcome


def run_cycle(ports: Ports, memory: PolicyMemory) -> CycleOutcome:
    """observe -> plan -> act -> record, once."""
    obs = observe(ports)
    planned = plan(ports.policy, obs, memory, ports.decide)
    return record(ports, memory, obs, planned, act(ports, obs, planned, memory))


__all__ = ["Acted", "At", "CycleOutcome", "DatabaseView", "Observation", "Plan", "Ports", "act", "apply", "observe",
           "plan", "record", "run_cycle"]
