"""The side effects of one policy's reconcile, as values: status, Kubernetes Events, incident calls, metrics.

The reconcile (``controller.operator.reconcile``) runs the shared cycle's
phases and translates what they return into an ``Effects``: the status being
built (``StatusBuilder``, with the policy's ``PolicyMemory`` dumped into it
when the cycle loaded one), the Events to record, the incident calls to make
(hold, resolve: the rules' evaluation itself is the cycle's ``record``
phase), and the metrics to set. ``Reconciler._apply`` applies them once at
the end of the policy, as kopf applies its accumulated patches once, in this
order: incident calls, status, Events, metrics; each one's failure is logged
and never loses the others. A policy abandoned midway (the write fence
closed: ``NotLeader``) applies nothing. ``observed`` and ``recorded`` are the
translation: the conditions of what the cycle observed, then the status
fields, Events and metrics of a policy that decided.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.core.policy import Policy
from controller.cycle.feed import value_at
from controller.cycle.memory import PolicyMemory
from controller.cycle.run import CycleOutcome, Observation
from controller.errors import PermanentError, RetryableError
from controller.operator import database as db
from controller.operator import status as st
from controller.operator.incidents import IncidentReporter
from controller.operator.kube import EventRecorder, PolicyObject
from controller.operator.report import PolicyOutcome
from controller.operator.resources import ScalingPolicySpec
from controller.targets.base import TargetKey, TargetNotFound
from controller.telemetry.accounting import CycleFacts
from controller.telemetry.metrics import OperatorMetrics
from forecasting.base import Event

log = logging.getLogger(__name__)

IncidentCall = Callable[[IncidentReporter], object]


@dataclass(frozen=True)
class KubeEvent:
    """A Kubernetes Event about the policy."""

    type: str  # Normal or Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Gauges:
    """The per-policy series of a policy that decided this cycle."""

    reason: str
    desired: int
    current: int
    facts: CycleFacts
    forecast_error: float | None = None  # |observed - median| / observed, when both are known


@dataclass
class Effects:
    """Everything one policy's reconcile will change, applied once by the Reconciler."""

    policy: PolicyObject
    status: st.StatusBuilder
    memory: tuple[PolicyMemory, Policy, timedelta] | None = None  # (memory, core policy, forecast step) to dump
    quiet: bool = False  # a failed status write is expected (the API is down): not a warning
    events: list[KubeEvent] = field(default_factory=list)
    incidents: list[tuple[str, IncidentCall]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # pitboss_operator_errors_total reasons
    scales: list[str] = field(default_factory=list)  # kinds written (pitboss_operator_scale_total)
    fits: list[tuple[str, float]] = field(default_factory=list)  # (fit or update, seconds)
    gauges: Gauges | None = None

    def event(self, event_type: str, reason: str, message: str) -> None:
        self.events.append(KubeEvent("Warning" if event_type == "Warning" else "Normal", reason, message))

    def incident(self, what: str, call: IncidentCall) -> None:
        self.incidents.append((what, call))

    def dump_memory(self) -> dict[str, object] | None:
        """Write the memory into the status being built; the fields written (None: no memory this cycle)."""
        if self.memory is None:
            return None
        memory, core, step = self.memory
        fields = memory.dump(core, self.status.now, step)
        self.status.set(**fields)
        return fields

    def observe_metrics(self, metrics: OperatorMetrics) -> None:
        """Set the metrics this policy's cycle accumulated."""
        ns, name = self.policy.namespace, self.policy.name
        for kind, seconds in self.fits:
            metrics.forecast_fit.labels(kind).observe(seconds)
        for kind in self.scales:
            metrics.scales.labels(kind).inc()
        for reason in self.errors:
            metrics.errors.labels(ns, name, reason).inc()
        g = self.gauges
        if g is None:
            return
        if g.forecast_error is not None:
            metrics.forecast_error.labels(ns, name).set(g.forecast_error)
        metrics.observe_decision(ns, name, g.reason, g.desired, g.current)  # cached children (issue 14)
        metrics.observe_policy(g.facts)


def observed(fx: Effects, spec: ScalingPolicySpec, key: TargetKey, obs: Observation, matching: list[Event]) -> None:
    """The conditions of what the cycle observed."""
    builder = fx.status
    builder.ok(st.ABLE_TO_SCALE, True, "ScaleReadable" if spec.mode == "Active" else "ForecastOnly",
               f"read {key}" + ("" if spec.mode == "Active" else "; mode ForecastOnly: not writing /scale"))
    if obs.metrics_error:
        builder.ok(st.METRICS_AVAILABLE, False, "MetricsUnavailable", obs.metrics_error)
    else:
        builder.ok(st.METRICS_AVAILABLE, True, "MetricsOK", f"demand now {_fmt(obs.observed)}/s")
    if obs.forecast is None:
        builder.ok(st.FORECAST_READY, False, "ForecastUnavailable", obs.forecast_note or "no forecast")
    else:  # a note: the previous forecast, kept while the refit of a changed spec or calendar waits
        known = f"{spec.forecast.model}: {len(matching)} event(s) known"
        builder.ok(st.FORECAST_READY, True, "ForecastOK", known if obs.forecast_note is None
                   else f"{known}; {obs.forecast_note}")
    if obs.database is not None and obs.database.lags.error:
        log.warning("%s/%s: replica lag unknown: %s", fx.policy.namespace, fx.policy.name,
                    obs.database.lags.error)

def recorded(fx: Effects, spec: ScalingPolicySpec, core: Policy, out: CycleOutcome, matching: list[Event], *,
             incident_events: bool) -> None:
    """Status, Events and metrics of a policy that decided (``incident_events``: the sink emits its Warnings)."""
    policy, builder, obs, acted = fx.policy, fx.status, out.observation, out.acted
    decision, state, now, old = acted.decision, acted.state, obs.now, policy.status
    current, db_current = acted.after.replicas, acted.database_replicas
    if spec.database_replicas is not None and acted.database is not None:
        builder.set(databaseReadyReplicas=db.replicas(spec.database_replicas, acted.database.ready_replicas))
        assert obs.database is not None
        db.set_condition(builder, decision, obs.database.lags)
    builder.remember(decision, state, after=current, spec=spec, events=matching)  # pitboss explain
    ready_ok = decision.metrics_available
    builder.ok(st.READY, ready_ok, decision.reason if ready_ok else "Holding", decision.message)
    builder.ok(st.CAPACITY_LIMITED, decision.capacity_limited,
               "MaxReplicasReached" if decision.capacity_limited else "WithinLimits",
               f"forecast needs more than maxReplicas {spec.max_replicas}" if decision.capacity_limited
               else f"within [{spec.min_replicas}, {spec.max_replicas}]")
    desired = decision.desired_replicas
    if spec.mode == "ForecastOnly" and decision.recommended_replicas is not None:
        desired = decision.recommended_replicas  # what Active mode would ask for
    builder.set(currentReplicas=current, readyReplicas=acted.after.ready_replicas, desiredReplicas=desired,
                databaseCurrentReplicas=db_current, databaseDesiredReplicas=decision.database_desired_replicas,
                nextPeak=st.next_peak(obs.forecast, spec, now))
    builder.decision(decision, now)
    if acted.scaled:
        fx.event("Normal", decision.reason, st.scale_message(spec, decision, state.current_replicas, current,
                                                             matching, now))
    elif spec.mode == "ForecastOnly" and st.decision_changed(old, decision):
        fx.event("Normal", decision.reason, f"{spec.target_ref.name}: {decision.message}")
    if obs.metrics_error and not incident_events and st.transitioned(old, st.METRICS_AVAILABLE, "False"):
        fx.event("Warning", "MetricsUnavailable", f"holding {current} replicas: {obs.metrics_error}")
    forecast, observed = obs.forecast, obs.observed
    median = None if forecast is None else value_at(forecast, 0.5, now)
    sized_at = decision.headroom_quantile or core.headroom_quantile  # newsvendor when costs are set
    fx.gauges = Gauges(decision.reason, acted.desired, current, CycleFacts(
        namespace=policy.namespace, policy=policy.name, now=now, wall_now=now.timestamp(),
        capacity_per_replica=core.capacity_per_replica, min_replicas=core.min_replicas,
        max_replicas=core.max_replicas, headroom_quantile=sized_at, current=current,
        ready=acted.after.ready_replicas, desired=acted.desired, observed=observed, forecast_median=median,
        forecast_headroom=None if forecast is None else value_at(forecast, sized_at, now),
        forecast_peak=decision.forecast_peak, events=matching,
        database_desired=decision.database_desired_replicas, database_current=db_current,
        database_lags=() if obs.database is None else obs.database.lags.series),
        forecast_error=abs(observed - median) / observed
        if observed is not None and observed > 0 and median is not None else None)


def hold(fx: Effects, memory: PolicyMemory, scale_error: str) -> None:
    """The cycle stopped before deciding: count the failed call, keep the open incidents."""
    memory.scale.record(scale_error)
    policy, now = fx.policy, fx.status.now
    fx.incident("hold", lambda r: r.hold(policy, now, scale_error=scale_error, memory=memory))


def invalid(fx: Effects, message: str) -> PolicyOutcome:
    """An invalid spec: InvalidSpec naming the field, a Warning when it is new."""
    policy, builder = fx.policy, fx.status
    builder.ok(st.INVALID_SPEC, True, "InvalidSpec", message)
    builder.ok(st.READY, False, "InvalidSpec", message)
    if st.transitioned(policy.status, st.INVALID_SPEC, "True", message):
        fx.event("Warning", "InvalidSpec", message)
    fx.errors.append("InvalidSpec")
    return PolicyOutcome(policy.namespace, policy.name, "InvalidSpec", message, error=message)


def unable(fx: Effects, memory: PolicyMemory, exc: Exception) -> PolicyOutcome:
    """The target cannot be read or written (404, 403): AbleToScale=False, the failed call counted."""
    hold(fx, memory, str(exc))
    policy, builder = fx.policy, fx.status
    reason = "TargetNotFound" if isinstance(exc, TargetNotFound) else "Forbidden"
    builder.ok(st.ABLE_TO_SCALE, False, reason, str(exc))
    builder.ok(st.READY, False, reason, str(exc))
    if st.transitioned(policy.status, st.ABLE_TO_SCALE, "False", str(exc)):
        fx.event("Warning", reason, str(exc))
    fx.errors.append(reason)
    return PolicyOutcome(policy.namespace, policy.name, reason, str(exc), error=str(exc))


def emit(recorder: EventRecorder, timed: Callable[[], AbstractContextManager[object]], policy: PolicyObject,
         event: KubeEvent, now: datetime) -> None:
    """Record one Event on the policy (inside ``timed``, the API's time); a failure is logged, never raised."""
    try:
        with timed():
            recorder.record(namespace=policy.namespace, kind="ScalingPolicy", name=policy.name,
                            event_type="Warning" if event.type == "Warning" else "Normal", reason=event.reason,
                            message=event.message, at=now)
    except (PermanentError, RetryableError) as exc:
        log.warning("%s/%s: event not recorded: %s", policy.namespace, policy.name, exc)


def _fmt(x: float | None) -> str:
    return "unknown" if x is None else f"{x:.4g}"


__all__ = ["Effects", "Gauges", "IncidentCall", "KubeEvent", "emit", "hold", "invalid", "observed", "recorded",
           "unable"]
