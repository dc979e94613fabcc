"""One cycle of one policy: observe() -> plan() -> act() -> record(), effects applied once.

``run_cycle(ports, memory)`` is the loop body every shell runs:

1. ``observe``: the target's scale, the demand now (a failing source is
   unknown demand with the reason), the forecast for now -> ``Observation``;
2. ``plan``: pure; the ``ObservedState`` (with the memory's stabilization
   window), ``decide`` and the safeguard -> ``Plan``;
3. ``act``: the one write to the target (a 409 re-reads and decides again,
   ``controller.cycle.act``) -> ``Acted``, whose ``scale_error`` says why not;
4. ``record``: the memory's changes (recommendation, scale failures, last
   scale time) applied in one place, ``apply``, as kopf applies its
   accumulated patches once; then the incident rules and the recorder.

``Plan.uncovered`` (a forecast that does not cover now: a bug, issue 9) is
for the shell to log and count, under its own name.

Time comes from the ports' ``Clock``: the local run's compressed clock, the
simulator's step. The operator's reconcile builds its own richer state
(status, database replicas, lags) and shares ``plan``, ``act`` and the
memory and incident pieces. Called by ``controller.local.loop`` and
``controller.simulate.predictive``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from controller.core.decide import FORECAST_NOT_COVERING
from controller.core.decide import decide as core_decide
from controller.core.decision import Decision, ObservedState
from controller.core.policy import Policy
from controller.cycle.act import safeguarded, write_replicas
from controller.cycle.memory import PolicyMemory
from controller.cycle.ports import Clock, DemandSource, Forecasts, IncidentSink, Recorder
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


@dataclass(frozen=True)
class Observation:
    """What a cycle saw."""

    now: datetime
    scale: ScaleState
    observed: float | None
    metrics_error: str | None
    forecast: Forecast | None


@dataclass(frozen=True)
class Plan:
    """What the cycle means to do (pure)."""

    state: ObservedState
    decision: Decision
    desired: int  # what to write: the decision, never a scale-down without metrics
    uncovered: bool  # a forecast exists but does not cover now (a bug, logged)


@dataclass(frozen=True)
class Acted:
    """What the write did."""

    decision: Decision  # decided again from the fresh scale after a 409
    scaled: bool
    after: ScaleState
    scale_error: str | None = None


@dataclass(frozen=True)
class CycleOutcome:
    """One cycle, end to end."""

    observation: Observation
    plan: Plan
    acted: Acted
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)


def observe(ports: Ports) -> Observation:
    """Read the target, the demand and the forecast for now."""
    now = ports.clock.now()
    scale = ports.target.get_scale(ports.key)
    metrics_error: str | None = None
    try:
        observed = ports.demand.current(now)
    except PitbossError as exc:
        observed, metrics_error = None, str(exc)
    forecast = ports.forecasts.at(now, observed) if ports.forecasts is not None else None
    return Observation(now, scale, observed, metrics_error, forecast)


def plan(policy: Policy, obs: Observation, memory: PolicyMemory, decide: DecideFn = core_decide) -> Plan:
    """Decide from the observation and the memory; changes nothing."""
    window = policy.scale_down.stabilization_window
    state = ObservedState(now=obs.now, current_replicas=obs.scale.replicas, ready_replicas=obs.scale.ready_replicas,
                          observed_demand=obs.observed,
                          recommendations=memory.recommendations.view(obs.now, window),
                          last_scale_time=memory.last_scale_time)
    return plan_state(policy, obs.forecast, state, decide)


def plan_state(policy: Policy, forecast: Forecast | None, state: ObservedState,
               decide: DecideFn = core_decide) -> Plan:
    """The plan for a state a shell built itself (the operator's, with status and database replicas)."""
    decision = decide(policy, forecast, state)
    return Plan(state, decision, safeguarded(decision, state.current_replicas),
                FORECAST_NOT_COVERING in decision.flags)


def act(ports: Ports, obs: Observation, planned: Plan) -> Acted:
    """Write the planned replicas (the cycle's one write); a failure is the ``scale_error``."""
    final = planned.decision

    def desired_for(fresh: ScaleState | None) -> int:
        nonlocal final
        if fresh is None:
            return planned.desired
        state = replace(planned.state, current_replicas=fresh.replicas, ready_replicas=fresh.ready_replicas)
        final = ports.decide(ports.policy, obs.forecast, state)
        return safeguarded(final, fresh.replicas)

    try:
        after, scaled = write_replicas(ports.target, ports.key, obs.scale, desired_for)
    except PitbossError as exc:
        return Acted(final, False, obs.scale, str(exc))
    return Acted(final, scaled, after)


def apply(memory: PolicyMemory, policy: Policy, planned: Plan, acted: Acted) -> None:
    """The memory's changes of one cycle, in one place."""
    now, window = planned.state.now, policy.scale_down.stabilization_window
    memory.recommendations.add(planned.decision.recommended_replicas, now)
    memory.recommendations.forget_before(now, window)
    memory.scale.record(acted.scale_error)
    if acted.scaled:
        memory.last_scale_time = now


def record(ports: Ports, memory: PolicyMemory, obs: Observation, planned: Plan, acted: Acted) -> CycleOutcome:
    """Apply the memory's changes, evaluate the incident rules, hand the outcome to the recorder."""
    apply(memory, ports.policy, planned, acted)
    fired: list[str] = []
    resolved: list[str] = []
    if ports.incidents is not None:
        fired, resolved = ports.incidents.observe(
            memory, policy=ports.policy, state=planned.state, decision=acted.decision, step=ports.step,
            forecast=obs.forecast, events=ports.events, metrics_error=obs.metrics_error)
    outcome = CycleOutcome(obs, planned, acted, fired, resolved)
    if ports.recorder is not None:
        ports.recorder.record(outcome)
    return outcome


def run_cycle(ports: Ports, memory: PolicyMemory) -> CycleOutcome:
    """observe -> plan -> act -> record, once."""
    obs = observe(ports)
    planned = plan(ports.policy, obs, memory, ports.decide)
    return record(ports, memory, obs, planned, act(ports, obs, planned))


__all__ = ["Acted", "At", "CycleOutcome", "Observation", "Plan", "Ports", "act", "apply", "observe", "plan",
           "plan_state", "record", "run_cycle"]
