"""Incident bookkeeping of one policy's cycle: forecast check, rules, engine.

``evaluate_cycle`` is what every shell does once per policy per cycle after
deciding and acting: remember this forecast step's (actual, upper quantile)
at the configured ``forecast_miss_quantile`` in the policy's memory, build
the ``CycleInput`` from the cycle's facts and the memory (scale failures,
forecast checks), evaluate the pure rules and hand the signals to the
engine under the policy's scope; ``EngineSink`` is the cycle's
``IncidentSink`` port over an engine. Called by the local cycle
(``controller.cycle.run``) and the operator's ``IncidentReporter``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta

from controller.core.decision import Decision, ObservedState
from controller.core.policy import Policy
from controller.cycle.feed import value_at
from controller.cycle.memory import ForecastChecks, PolicyMemory
from controller.incidents.engine import CycleResult, IncidentEngine
from controller.incidents.model import Incident
from controller.incidents.rules import SLO, CycleInput, RuleSettings, evaluate
from forecasting.base import Event, Forecast


def new_memory(namespace: str, policy: str, settings: RuleSettings) -> PolicyMemory:
    """A policy's empty memory, keeping as many forecast checks as ``ForecastMiss`` reads."""
    return PolicyMemory({"namespace": namespace, "policy": policy},
                        checks=ForecastChecks(steps=settings.forecast_miss_steps))


def evaluate_cycle(
    engine: IncidentEngine, settings: RuleSettings, memory: PolicyMemory, *, policy: Policy, state: ObservedState,
    decision: Decision, step: timedelta, forecast: Forecast | None, events: Sequence[Event] = (),
    metrics_error: str | None = None, error_ratios: Mapping[str, Mapping[timedelta, float | None]] | None = None,
    slos: Sequence[SLO] | None = None, deliver: bool = True,
) -> CycleResult:
    """Check the forecast for this step, evaluate every rule and apply the signals to ``engine``."""
    upper = value_at(forecast, settings.forecast_miss_quantile, state.now)
    memory.checks.check(state.now, step, state.observed_demand, upper)
    cycle = CycleInput(
        policy_name=memory.scope["policy"], namespace=memory.scope["namespace"], policy=policy, state=state,
        decision=decision, events=events, forecast_checks=memory.checks.pairs(),
        scale_failures=memory.scale.count, last_scale_error=memory.scale.last_error,
        error_ratios=error_ratios, slos=slos, metrics_error=metrics_error,
    )
    return engine.process(state.now, evaluate(cycle, settings), memory.scope, deliver=deliver)


class EngineSink:
    """The ``IncidentSink`` port over an engine: evaluate each cycle, hand each changed incident to ``changed``."""

    def __init__(self, engine: IncidentEngine, settings: RuleSettings, *, deliver: bool = True,
                 changed: Callable[[Incident, datetime], None] | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.deliver = deliver
        self.changed = changed

    def observe(self, memory: PolicyMemory, *, policy: Policy, state: ObservedState, decision: Decision,
                step: timedelta, forecast: Forecast | None, events: Sequence[Event],
                metrics_error: str | None) -> tuple[list[str], list[str]]:
        """Evaluate and apply; (alertnames fired, alertnames resolved)."""
        result = evaluate_cycle(self.engine, self.settings, memory, policy=policy, state=state, decision=decision,
                                step=step, forecast=forecast, events=events, metrics_error=metrics_error,
                                deliver=self.deliver)
        if self.changed is not None:
            for incident in result.fired + result.resolved:
                self.changed(incident, state.now)
        return [i.alertname for i in result.fired], [i.alertname for i in result.resolved]


__all__ = ["EngineSink", "evaluate_cycle", "new_memory"]
