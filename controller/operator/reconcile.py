"""Reconcile one ScalingPolicy: a thin shell over the shared cycle (``controller.cycle.run``).

``Reconciler.reconcile_all()`` runs one level-triggered cycle over every
policy (with ``owns``: this replica's shards); ``reconcile(policy, events)``
does one policy and never raises (one bad policy never stops the others).
What the operator keeps to itself:

* the spec, validated and cached per (uid, generation): an invalid one gets
  InvalidSpec naming the field; Paused runs no phase (its own status only,
  its incidents resolved);
* the ports (``controller.operator.policy_ports``): the targets' /scale (and
  the database's), the demand source with its history (its tail read, ``history``), the ``ForecastCache``
  (cached until the history grid or the events move), the lag query, the
  ``IncidentReporter``; ForecastOnly is ``Ports.writes`` off;
* the policy's ``PolicyMemory``, loaded from status at the start of the
  cycle (or from what this replica dumped when its last status write failed)
  and dumped back into it, so a restarted operator or a new shard owner
  continues the recommendations, scale failures and forecast checks;
* the translation (``controller.operator.effects``) of what the phases
  return into status conditions, Kubernetes Events and metrics, accumulated
  as an ``Effects`` value and applied once at the end (incident calls, status,
  Events, metrics; one failing is logged and loses none of the others;
  ``controller.operator.policy_writes``, the write half on the pool); the
  status through ``controller.operator.status_writes.StatusWriter``, which
  holds back volatile-only changes for at most ``status_max_age``;
* when a cycle fits: ``fit_deadline`` (``controller.cycle.deadline``) or a
  fixed ``fit_budget``, told of the cycle's start, each policy and its end.

The phases themselves are shared with the local run and the simulator:
``observe`` (a 404/403 or an unreachable API ends the policy's cycle here),
pure ``plan`` (``decide`` and the safeguard), ``act`` (the one place
replicas are written; a 409 re-reads and decides again), ``record`` (the
memory's changes, then the incident rules, evaluated here and delivered on
another thread: a sink never slows the cycle). All I/O goes through small
protocols, so tests and the benchmark plug in fakes or the real client; the
time spent in the Kubernetes adapters is measured apart
(``CycleReport.api_seconds``). Called by the loop and the CLI.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from datetime import datetime, timedelta
from typing import Any, Protocol, TypeVar

import pandas as pd

from controller.core.decision import Decision, ObservedState
from controller.core.policy import Policy
from controller.cycle.deadline import CycleDeadline
from controller.cycle.memory import PolicyMemory
from controller.cycle.ports import LagSource
from controller.cycle.run import At, Ports, observe, plan
from controller.errors import PermanentError, RetryableError
from controller.incidents.rules import RuleSettings
from controller.operator import database as db
from controller.operator import status as st
from controller.operator.clock import Clock
from controller.operator.effects import Effects, hold, invalid, observed, unable
from controller.operator.fence import NotLeader
from controller.operator.forecasts import ForecastCache, ForecasterFactory
from controller.operator.history import DemandHistories
from controller.operator.incidents import IncidentReporter
from controller.operator.kube import EventRecorder, PolicyObject, PolicyStore
from controller.operator.policy_ports import PolicyDemand, PolicyForecasts, ReporterSink, TimedLags, fragment
from controller.operator.policy_writes import Planned, PolicyWrites
from controller.operator.report import CycleReport, PolicyOutcome, Timings
from controller.operator.resources import ScalingPolicySpec, parse_event, parse_policy_spec
from controller.operator.status_writes import StatusWriter
from controller.operator.writes import WritePool
from controller.sources.base import DemandSource
from controller.targets.base import ScaleTarget, TargetForbidden, TargetKey, TargetNotFound
from controller.telemetry.metrics import OperatorMetrics
from forecasting.base import Event, Forecast

log = logging.getLogger(__name__)

DecideFn = Callable[[Policy, Forecast | None, ObservedState], Decision]
_T = TypeVar("_T")


class DemandFactory(Protocol):
    """The DemandSource of one policy (Prometheus, scrape or, in tests, a trace)."""

    def __call__(self, policy: PolicyObject, spec: ScalingPolicySpec) -> DemandSource: ...


LagFactory = Callable[[PolicyObject, ScalingPolicySpec], LagSource | None]


def _default_decide() -> DecideFn:
    from controller.core.decide import decide

    return decide


def _default_forecaster() -> ForecasterFactory:
    from forecasting import registry

    return registry.create


class Reconciler(PolicyWrites):
    """Runs the per-policy reconcile against injected adapters."""

    def __init__(
        self,
        *,
        store: PolicyStore,
        targets: ScaleTarget,
        recorder: EventRecorder,
        demand: DemandFactory,
        clock: Clock,
        namespace: str | None = None,
        forecaster: ForecasterFactory | None = None,
        decide: DecideFn | None = None,
        lag: LagFactory | None = None,
        metrics: OperatorMetrics | None = None,
        incidents: IncidentReporter | None = None,
        fit_budget: timedelta | None = None,
        fit_deadline: CycleDeadline | None = None,
        spread_updates: timedelta | None = None,
        owns: Callable[[PolicyObject], bool] | None = None,
        writes: WritePool | None = None,
        status_max_age: timedelta | None = None,
    ) -> None:
        self.store = store
        self.targets = targets
        self.recorder = recorder
        self.demand = demand
        self.clock = clock
        self.namespace = namespace
        self.forecaster = forecaster or _default_forecaster()
        self.decide = decide or _default_decide()
        self.lag = lag
        self.metrics = metrics or OperatorMetrics()
        self.incidents = incidents
        self.owns = owns  # sharded: the policies of this replica's shards (None: every policy listed)
        # None: fit whatever is due; spread_updates (the sync period): each policy's per-step update waits for
        # its phase of the step, so a step's updates (and the status writes they cause) spread over its cycles.
        # fit_deadline (the operator's default) or a fixed fit_budget (which wins) spreads fits over cycles.
        self.forecasts = ForecastCache(self.forecaster, fit_budget, spread_updates, fit_deadline)
        self.histories = DemandHistories()  # each policy's demand window: a cycle reads only its tail
        self._fit_deadline = fit_deadline  # its limit also holds back new policies' first statuses when late
        # Parsed specs by uid, valid while metadata.generation (bumped on every spec change) holds.
        self._specs: dict[str, tuple[int, Any, ScalingPolicySpec, Policy]] = {}
        # Each policy's memory as this replica last dumped it, by uid: (the fragment its status is known to
        # hold, the latest dumped), so a failed status write loses nothing (``_load_memory``).
        self._memory: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
        self._miss_steps = (incidents.settings if incidents is not None else RuleSettings()).forecast_miss_steps
        self._timings = Timings()  # where this cycle's time went, summed from any thread (the write pool's too)
        self._api, self._source = self._timings.api, self._timings.source
        # Each policy's writes (act, then status and Events) on a pool, one policy's in order (writes.py).
        self.writes = writes or WritePool(1)
        self._incidents_lock = threading.RLock()  # the IncidentReporter is not thread-safe
        # /status: material changes at once, volatile-only ones at most every status_max_age (None: at once)
        self.status = StatusWriter(store, self._timings, self.metrics, status_max_age)

    # ---- cycle ----------------------------------------------------------
    def reconcile_all(self, should_continue: Callable[[], bool] | None = None) -> CycleReport:
        """One level-triggered pass over every policy (with ``owns``: those it accepts); never raises for one policy.

        ``should_continue`` is asked before each policy (the loop passes "still the leader?").
        """
        self._timings.report = report = CycleReport()
        t0 = time.perf_counter()
        try:
            with self._api():
                listed = self.store.list_policies(self.namespace)
                raw_events = self.store.list_events(self.namespace)
        except (PermanentError, RetryableError) as exc:
            log.warning("cannot list policies/events: %s", exc)
            report.seconds = time.perf_counter() - t0
            return report
        owns = self.owns
        policies = listed if owns is None else [p for p in listed if owns(p)]
        events_by_ns: dict[str, list[tuple[dict[str, str], Event]]] = {}
        for raw in raw_events:
            try:
                event = parse_event(raw)
            except ValueError as exc:
                log.warning("skipping %s", exc)
                continue
            ns = str((raw.get("metadata") or {}).get("namespace", ""))
            events_by_ns.setdefault(ns, []).append((event.labels, event))
        pool, tasks = self.writes, list[Future[PolicyOutcome]]()
        pool.start_cycle()
        self.forecasts.start_cycle(len(policies))
        self.status.start_cycle(t0, None if self._fit_deadline is None else self._fit_deadline.limit)
        for policy in policies:
            if (should_continue is not None and not should_continue()) or pool.stopped:
                log.warning("leadership lost: stopping the cycle after %d policies", len(tasks))
                break
            self.forecasts.next_policy()
            tasks.append(self._submit(policy, events_by_ns.get(policy.namespace, []), should_continue))
        pool.drain()  # every policy's writes are done before the cycle ends
        self.forecasts.end_cycle()
        self.status.start_cycle(None, None)  # a lone reconcile() between cycles is never late
        report.outcomes = [task.result() for task in tasks]
        report.wait_seconds, report.worker_seconds = pool.wait_seconds, pool.worker_seconds
        if len(tasks) == len(policies) and not pool.stopped:
            # a complete pass: forget what belongs to deleted policies and to other replicas' shards
            seen = {p.uid for p in policies}
            self.forecasts.forget_except(seen)
            self.histories.forget_except(seen)
            for uid in set(self._specs) - seen:
                del self._specs[uid]
            for uid in set(self._memory) - seen:
                del self._memory[uid]
            self.status.forget_except(seen)
            # Only a deleted policy's incidents resolve; another shard's are handed off silently.
            self._incidents_call("forget_except", lambda r: r.forget_except(
                policies, self.clock.now(), self.namespace, existing=listed))
            self.metrics.forget_except({(p.namespace, p.name) for p in policies})
        self._incidents_call("end_cycle", lambda r: r.end_cycle(self.clock.now()))
        if self.incidents is not None:  # open incidents by alert, time to resolve (the dashboards)
            self.metrics.observe_incidents(list(self.incidents.engine.active.values()), self.clock.now())
        report.seconds = time.perf_counter() - t0
        self.metrics.reconcile_seconds.labels("cycle").observe(report.seconds)
        self.metrics.heartbeat = time.monotonic()
        return report

    def reconcile(self, policy: PolicyObject, events: list[tuple[dict[str, str], Event]]) -> PolicyOutcome:
        """Reconcile one policy and wait for its writes; failures become conditions, never exceptions."""
        return self._submit(policy, events, None).result()

    def _submit(self, policy: PolicyObject, events: list[tuple[dict[str, str], Event]],
                should_continue: Callable[[], bool] | None) -> Future[PolicyOutcome]:
        """Observe and plan here; the policy's writes (act, status, Events) to the write pool, in their order."""
        t0 = time.perf_counter()
        begun = self._guarded(policy, lambda: self._begin(policy, events))
        planned = time.perf_counter() - t0

        def writes() -> PolicyOutcome:
            t1 = time.perf_counter()
            try:
                if isinstance(begun, PolicyOutcome):
                    return begun
                if should_continue is not None and not should_continue():
                    return dropped()
                outcome = self._guarded(policy, begun)
                if outcome.reason == "NotLeader":
                    self.writes.stop()  # the fence closed: no other policy's writes start this cycle
                return outcome
            finally:
                self.metrics.reconcile_seconds.labels("policy").observe(planned + time.perf_counter() - t1)

        def dropped() -> PolicyOutcome:
            why = "not written: the write fence closed during this cycle"
            return PolicyOutcome(policy.namespace, policy.name, "NotLeader", why, error=why)

        return self.writes.submit(writes, dropped)

    def _guarded(self, policy: PolicyObject, fn: Callable[[], _T]) -> _T | PolicyOutcome:
        """``fn()``, its failure as the policy's outcome: NotLeader (abandoned) or InternalError."""
        try:
            return fn()
        except NotLeader as exc:  # the write fence closed mid-policy: abandon it, write nothing more
            log.warning("%s/%s: %s", policy.namespace, policy.name, exc)
            return PolicyOutcome(policy.namespace, policy.name, "NotLeader", str(exc), error=str(exc))
        except Exception as exc:  # one bad policy never stops the others
            log.exception("reconcile %s/%s failed", policy.namespace, policy.name)
            reason = "InternalError"
            self.metrics.errors.labels(policy.namespace, policy.name, reason).inc()
            return PolicyOutcome(policy.namespace, policy.name, reason, str(exc), error=str(exc))

    # ---- one policy -------------------------------------------------------
    def _begin(self, policy: PolicyObject,
               events: list[tuple[dict[str, str], Event]]) -> Callable[[], PolicyOutcome]:
        """Parse, observe and plan now; returns the policy's writes: act (Active), then the effects, applied once.

        A failure here (a bug: InternalError) applies nothing, as a NotLeader in the writes abandons the rest.
        """
        now = self.clock.now()
        fx = Effects(policy, st.StatusBuilder(policy.status, policy.generation, now))
        step = self._cycle(policy, events, fx, now)

        def writes() -> PolicyOutcome:
            outcome = step if isinstance(step, PolicyOutcome) else self._act(fx, step)
            self._apply(fx)
            return outcome

        return writes

    def _cycle(self, policy: PolicyObject, events: list[tuple[dict[str, str], Event]], fx: Effects,
               now: datetime) -> PolicyOutcome | Planned:
        builder = fx.status
        try:
            spec, core = self._parse(policy)
        except ValueError as exc:
            fx.incident("hold", lambda r: r.hold(policy, now))
            return invalid(fx, str(exc))
        builder.ok(st.INVALID_SPEC, False, "SpecValid", "the spec is valid")
        builder.set(mode=spec.mode)
        if spec.mode == "Paused":  # no phase runs: the target is left alone, incidents resolve
            builder.ok(st.READY, False, "Paused", "mode is Paused: the target is left alone")
            fx.incident("resolve", lambda r: r.resolve(policy, now))
            return PolicyOutcome(policy.namespace, policy.name, "Paused", "paused")
        memory = self._load_memory(policy, spec)
        fx.memory = (memory, core, spec.forecast.step)
        matching = [e for labels, e in events if spec.event_selector is None or spec.event_selector.matches(labels)]
        ports = self._ports(policy, spec, core, matching, fx, now)

        try:  # observe
            obs = observe(ports)
        except (TargetNotFound, TargetForbidden) as exc:
            return unable(fx, memory, exc)
        except RetryableError as exc:
            hold(fx, memory, str(exc))
            builder.ok(st.READY, False, "APIUnavailable", str(exc))
            fx.errors.append("APIUnavailable")
            fx.quiet = True
            return PolicyOutcome(policy.namespace, policy.name, "APIUnavailable", str(exc), error=str(exc))
        observed(fx, spec, ports.key, obs, matching)

        planned = plan(core, obs, memory, self.decide)  # decide (pure)
        if planned.uncovered:  # a forecast that misses now is a bug, not a gap (issue 9)
            log.error("%s/%s: %s", policy.namespace, policy.name, planned.decision.message)
        return Planned(spec, core, memory, matching, ports, obs, planned)

    def _ports(self, policy: PolicyObject, spec: ScalingPolicySpec, core: Policy, matching: list[Event],
               fx: Effects, now: datetime) -> Ports:
        """The cycle's adapters for one policy (the operator's part of the cycle)."""
        demand = PolicyDemand(lambda: self.demand(policy, spec), spec, self._source,
                              window=self.histories.window(policy.uid))
        forecasts = PolicyForecasts(lambda history: self._forecast(policy, spec, history, matching, fx), demand)
        database = None
        if spec.database_replicas is not None:
            source = None if self.lag is None else self.lag(policy, spec)
            database = db.target(policy.namespace, spec.database_replicas,
                                 None if source is None else TimedLags(source, self._source))
        key = TargetKey(policy.namespace, spec.target_ref.kind, spec.target_ref.name, spec.target_ref.api_version)
        sink = None if self.incidents is None else ReporterSink(self._incidents_call, policy, spec)
        return Ports(policy=core, target=self.targets, key=key, demand=demand, forecasts=forecasts, clock=At(now),
                     step=spec.forecast.step, events=matching, incidents=sink, decide=self.decide,
                     database=database, writes=spec.mode == "Active", timed=self._api)

    def _load_memory(self, policy: PolicyObject, spec: ScalingPolicySpec) -> PolicyMemory:
        """The policy's memory, from its status (a restart, a new shard owner) or, when the last status write
        failed, from what this replica dumped since."""
        in_status = fragment(policy.status)
        kept = self._memory.get(policy.uid) if policy.uid else None
        source = kept[1] if kept is not None and kept[0] == in_status else in_status
        return PolicyMemory.load({"namespace": policy.namespace, "policy": policy.name}, source,
                                 steps=self._miss_steps, step=spec.forecast.step)

    def _parse(self, policy: PolicyObject) -> tuple[ScalingPolicySpec, Policy]:
        """The validated spec and its core Policy, cached per (uid, generation)."""
        cached = self._specs.get(policy.uid)
        if cached is not None and cached[0] == policy.generation and cached[1] == policy.spec:
            return cached[2], cached[3]
        spec = parse_policy_spec(policy.spec)
        core = spec.to_policy()
        if policy.uid:
            self._specs[policy.uid] = (policy.generation, policy.spec, spec, core)
        return spec, core

    def _forecast(
        self, policy: PolicyObject, spec: ScalingPolicySpec, history: pd.Series | None, events: list[Event],
        fx: Effects,
    ) -> tuple[Forecast | None, str | None]:
        if history is None:
            return None, "no demand history"
        fits, updates, deferred = self.forecasts.fits, self.forecasts.updates, self.forecasts.deferred
        t0 = time.perf_counter()
        result = self.forecasts.get(policy.uid, policy.generation, spec, history, events, fx.status.now)
        self._timings.add(fits=self.forecasts.fits - fits, updates=self.forecasts.updates - updates,
                          deferred_fits=self.forecasts.deferred - deferred)
        if self.forecasts.fits > fits or self.forecasts.updates > updates:
            fx.fits.append(("fit" if self.forecasts.fits > fits else "update", time.perf_counter() - t0))
        return result


__all__ = ["CycleReport", "PolicyOutcome", "Reconciler"]
