"""The write half of one policy's cycle, on the write pool: act, record, then the effects applied once.

``controller.operator.reconcile.Reconciler`` observes and plans each policy
on the cycle's thread (its ``_begin`` returns a ``Planned``: the ports, the
observation and the plan, nothing written yet) and hands the rest to the
``WritePool``, one policy's writes in order. This is that rest, the seam
between plan and apply:

* ``_act``: the shared cycle's ``act`` (the one place /scale is written,
  Active only; a 409 re-reads and decides again), a target gone or forbidden
  ending the policy (``unable``), a retryable write failure as
  ``AbleToScale=False``, then ``record`` (the memory's changes and the
  incident rules) translated into the ``Effects`` (``recorded``);
* ``_apply``: the accumulated ``Effects`` applied once, in order (incident
  calls, status with the memory dumped into it, Events, metrics), each
  failure logged and losing none of the others; what this replica dumped is
  kept by uid so a failed status write loses nothing (``_memory``);
* ``_incidents_call``: every call into the ``IncidentReporter``, guarded,
  locked (it is not thread-safe) and timed.

A mixin of the ``Reconciler``: it reads the Reconciler's collaborators when
it runs (tests swap its metrics and incident reporter after construction).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from controller.core.policy import Policy
from controller.cycle.memory import PolicyMemory
from controller.cycle.run import Observation, Plan, Ports, act, record
from controller.errors import RetryableError
from controller.operator import status as st
from controller.operator.effects import Effects, emit, recorded, unable
from controller.operator.incidents import IncidentReporter
from controller.operator.kube import EventRecorder
from controller.operator.policy_ports import fragment
from controller.operator.report import PolicyOutcome, Timings
from controller.operator.resources import ScalingPolicySpec
from controller.operator.status_writes import StatusWriter
from controller.targets.base import TargetForbidden, TargetNotFound
from controller.telemetry.metrics import OperatorMetrics
from forecasting.base import Event

log = logging.getLogger("controller.operator.reconcile")  # the Reconciler's logger, as before the split


@dataclass(frozen=True)
class Planned:
    """One policy observed and planned on the cycle's thread, its writes still to come."""

    spec: ScalingPolicySpec
    core: Policy
    memory: PolicyMemory
    matching: list[Event]
    ports: Ports
    obs: Observation
    planned: Plan


class PolicyWrites:
    """``_act`` then ``_apply``: one policy's writes, on the write pool (the Reconciler's second half)."""

    recorder: EventRecorder
    metrics: OperatorMetrics
    incidents: IncidentReporter | None
    status: StatusWriter
    _api: Callable[[], AbstractContextManager[object]]
    _timings: Timings
    _incidents_lock: threading.RLock
    # Each policy's memory as this replica last dumped it, by uid: (the fragment its status is known to
    # hold, the latest dumped), so a failed status write loses nothing (``Reconciler._load_memory``).
    _memory: dict[str, tuple[dict[str, Any], dict[str, Any]]]

    def _act(self, fx: Effects, p: Planned) -> PolicyOutcome:
        """Write the planned replicas (a 409 re-reads and decides again), then record; on the write pool."""
        policy, builder, spec, core, memory, ports = fx.policy, fx.status, p.spec, p.core, p.memory, p.ports
        obs, planned, matching = p.obs, p.planned, p.matching
        acted = act(ports, obs, planned, memory)  # Active only: the one place /scale is written
        failure = acted.failure
        if isinstance(failure, (TargetNotFound, TargetForbidden)):
            return unable(fx, memory, failure)
        if failure is not None and not isinstance(failure, RetryableError):
            raise failure  # NotLeader (abandon the policy) or a bug (InternalError)
        if failure is not None:
            builder.ok(st.ABLE_TO_SCALE, False, "ScaleFailed", str(failure))
            fx.errors.append("ScaleFailed")
        if acted.scaled:
            fx.scales.append(ports.key.kind)
        if acted.database_scaled and ports.database is not None:
            fx.scales.append(ports.database.key.kind)

        out = record(ports, memory, obs, planned, acted)  # the memory's changes, then the incident rules
        recorded(fx, spec, core, out, matching,
                 incident_events=self.incidents is not None and self.incidents.emits_events)
        decision = acted.decision
        return PolicyOutcome(policy.namespace, policy.name, decision.reason, decision.message, acted.after.replicas,
                             acted.desired, acted.scaled)

    def _apply(self, fx: Effects) -> None:
        """Incident calls, status (with the memory), Events, metrics: each failure logged, none losing the others."""
        policy = fx.policy
        for what, call in fx.incidents:
            self._incidents_call(what, call)
        # status.openIncidents: what a new owner adopts without Alertmanager (IncidentReporter._adopt)
        self._incidents_call("open_incidents", lambda r: fx.status.set(openIncidents=r.open_incidents(policy)))
        dumped = fx.dump_memory()
        written = self.status.write(policy, fx.status.build(), fx.status.now, quiet=fx.quiet) in ("same", "written")
        if dumped is not None and policy.uid:
            latest = fragment(dumped)
            kept = self._memory.get(policy.uid)
            known = latest if written else (kept[0] if kept is not None else fragment(policy.status))
            self._memory[policy.uid] = (known, latest)
        for event in fx.events:
            emit(self.recorder, self._api, policy, event, fx.status.now)
        try:
            fx.observe_metrics(self.metrics)
        except Exception:  # a metrics bug never loses the status or the Events written above
            log.exception("%s/%s: metrics not updated", policy.namespace, policy.name)

    def _incidents_call(self, what: str, call: Callable[[IncidentReporter], object]) -> None:
        """``call(reporter)`` when incidents are wired; its failure is logged, never fails the policy or the cycle."""
        if self.incidents is None:
            return
        reporter = self.incidents
        with self._incidents_lock:
            pit, src = reporter.seconds, reporter.source_seconds
            try:
                call(reporter)
            except Exception:
                log.exception("incidents: %s failed", what)
            finally:
                self._timings.add(incident_seconds=reporter.seconds - pit,
                                  source_seconds=reporter.source_seconds - src)


__all__ = ["Planned", "PolicyWrites"]
