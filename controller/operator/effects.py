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
closed: ``NotLeader``) applies nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from controller.core.policy import Policy
from controller.cycle.memory import PolicyMemory
from controller.operator import status as st
from controller.operator.incidents import IncidentReporter
from controller.operator.kube import PolicyObject
from controller.telemetry.accounting import CycleFacts
from controller.telemetry.metrics import OperatorMetrics

IncidentCall = Callable[[IncidentReporter], object]


@dataclass(frozen=True)
class Event:
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
    events: list[Event] = field(default_factory=list)
    incidents: list[tuple[str, IncidentCall]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # pitboss_operator_errors_total reasons
    scales: list[str] = field(default_factory=list)  # kinds written (pitboss_operator_scale_total)
    fits: list[tuple[str, float]] = field(default_factory=list)  # (fit or update, seconds)
    gauges: Gauges | None = None

    def event(self, event_type: str, reason: str, message: str) -> None:
        self.events.append(Event("Warning" if event_type == "Warning" else "Normal", reason, message))

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
        metrics.decisions.labels(ns, name, g.reason).inc()
        metrics.desired.labels(ns, name).set(g.desired)
        metrics.current.labels(ns, name).set(g.current)
        metrics.observe_policy(g.facts)


__all__ = ["Effects", "Event", "Gauges", "IncidentCall"]
