"""Reconcile one ScalingPolicy: observe -> forecast -> decide -> act -> record.

``Reconciler.reconcile_all()`` runs one level-triggered cycle over every
policy; ``reconcile(policy, events)`` does one policy and never raises (one
bad policy never stops the others). Per policy it validates the spec (an
invalid one gets InvalidSpec naming the field), reads the targets' /scale,
reads demand, gathers the TrafficEvents the policy's eventSelector matches,
forecasts (cached until the history grid or the events move), calls the pure
``decide``, patches /scale in Active mode (the one place replicas are
written; a 409 re-reads and retries), and writes status with conditions and,
on a change, a Kubernetes Event that says why. Paused touches nothing but its
own status; ForecastOnly writes status and Events only; without metrics it
holds. Then, when incidents are wired (``controller.operator.incidents``), the
same facts become the policy's ``CycleInput`` and the rules are evaluated
(queued for delivery on another thread: a sink never slows the cycle). All
I/O goes through small protocols, so tests and the benchmark plug
in fakes or the real client; the time spent in the Kubernetes adapters is
measured apart (``CycleReport.api_seconds``). Called by the loop and the CLI.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

import numpy as np
import pandas as pd

from controller.core.decision import Decision, ObservedState
from controller.core.durations import format_duration
from controller.core.policy import Policy
from controller.cycle.act import safeguarded, write_replicas
from controller.cycle.run import plan_state
from controller.errors import PermanentError, RetryableError
from controller.operator import database as db
from controller.operator import status as st
from controller.operator.clock import Clock
from controller.operator.database import LagSource
from controller.operator.fence import NotLeader
from controller.operator.forecasts import ForecastCache, ForecasterFactory, value_at
from controller.operator.incidents import IncidentReporter
from controller.operator.kube import EventRecorder, PolicyObject, PolicyStore
from controller.operator.report import CycleReport, PolicyOutcome
from controller.operator.resources import ScalingPolicySpec, parse_event, parse_policy_spec
from controller.sources.base import DemandSource
from controller.sources.observe import read_current
from controller.targets.base import ScaleState, ScaleTarget, TargetForbidden, TargetKey, TargetNotFound
from controller.telemetry.accounting import CycleFacts
from controller.telemetry.metrics import OperatorMetrics
from forecasting.base import Event, Forecast

log = logging.getLogger(__name__)

DecideFn = Callable[[Policy, Forecast | None, ObservedState], Decision]


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


class Reconciler:
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
        owns: Callable[[PolicyObject], bool] | None = None,
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
        self.forecasts = ForecastCache(self.forecaster, fit_budget)  # None: fit whatever is due
        # Parsed specs by uid, valid while metadata.generation (bumped on every spec change) holds.
        self._specs: dict[str, tuple[int, Any, ScalingPolicySpec, Policy]] = {}
        self._report = CycleReport()

    # ---- timing -----------------------------------------------------------
    @contextmanager
    def _api(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._report.api_seconds += time.perf_counter() - t0

    @contextmanager
    def _source(self) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self._report.source_seconds += time.perf_counter() - t0

    # ---- cycle ----------------------------------------------------------
    def reconcile_all(self, should_continue: Callable[[], bool] | None = None) -> CycleReport:
        """One level-triggered pass over every policy (with ``owns``: those it accepts); never raises for one policy.

        ``should_continue`` is asked before each policy (the loop passes "still the leader?").
        """
        self._report = report = CycleReport()
        self.forecasts.start_cycle()
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
        for policy in policies:
            if should_continue is not None and not should_continue():
                log.warning("leadership lost: stopping the cycle after %d policies", len(report.outcomes))
                break
            report.outcomes.append(self.reconcile(policy, events_by_ns.get(policy.namespace, [])))
        else:  # a complete pass: forget what belongs to deleted policies and to other replicas' shards
            seen = {p.uid for p in policies}
            self.forecasts.forget_except(seen)
            for uid in set(self._specs) - seen:
                del self._specs[uid]
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
        """Reconcile one policy; failures become conditions, never exceptions."""
        t0 = time.perf_counter()
        try:
            return self._reconcile(policy, events)
        except NotLeader as exc:  # the write fence closed mid-policy: abandon it, write nothing more
            log.warning("%s/%s: %s", policy.namespace, policy.name, exc)
            return PolicyOutcome(policy.namespace, policy.name, "NotLeader", str(exc), error=str(exc))
        except Exception as exc:  # one bad policy never stops the others
            log.exception("reconcile %s/%s failed", policy.namespace, policy.name)
            reason = "InternalError"
            self.metrics.errors.labels(policy.namespace, policy.name, reason).inc()
            return PolicyOutcome(policy.namespace, policy.name, reason, str(exc), error=str(exc))
        finally:
            self.metrics.reconcile_seconds.labels("policy").observe(time.perf_counter() - t0)

    # ---- one policy -------------------------------------------------------
    def _reconcile(self, policy: PolicyObject, events: list[tuple[dict[str, str], Event]]) -> PolicyOutcome:
        now = self.clock.now()
        gen = policy.generation
        old = policy.status
        builder = st.StatusBuilder(old, gen, now)
        try:
            spec, core_policy = self._parse(policy)
        except ValueError as exc:
            self._hold(policy, now)
            return self._invalid(policy, builder, str(exc))
        builder.ok(st.INVALID_SPEC, False, "SpecValid", "the spec is valid")
        builder.set(mode=spec.mode)
        key = TargetKey(policy.namespace, spec.target_ref.kind, spec.target_ref.name, spec.target_ref.api_version)

        if spec.mode == "Paused":
            builder.ok(st.READY, False, "Paused", "mode is Paused: the target is left alone")
            self._incidents_call("resolve", lambda r: r.resolve(policy, now))
            self._write_status(policy, builder)
            return PolicyOutcome(policy.namespace, policy.name, "Paused", "paused")

        # observe: targets
        try:
            with self._api():
                scale = self.targets.get_scale(key)
                db_key, db_scale = self._db_scale(policy, spec)
        except (TargetNotFound, TargetForbidden) as exc:
            self._hold(policy, now, scale_error=str(exc))
            return self._unable(policy, builder, exc)
        except RetryableError as exc:
            self._hold(policy, now, scale_error=str(exc))
            builder.ok(st.READY, False, "APIUnavailable", str(exc))
            self.metrics.errors.labels(policy.namespace, policy.name, "APIUnavailable").inc()
            self._write_status(policy, builder, quiet=True)
            return PolicyOutcome(policy.namespace, policy.name, "APIUnavailable", str(exc), error=str(exc))
        builder.ok(st.ABLE_TO_SCALE, True, "ScaleReadable" if spec.mode == "Active" else "ForecastOnly",
                   f"read {key}" + ("" if spec.mode == "Active" else "; mode ForecastOnly: not writing /scale"))

        # observe: demand and events
        matching = [e for labels, e in events if spec.event_selector is None or spec.event_selector.matches(labels)]
        history, observed, metrics_error = self._demand(policy, spec, now)
        if metrics_error:
            builder.ok(st.METRICS_AVAILABLE, False, "MetricsUnavailable", metrics_error)
        else:
            builder.ok(st.METRICS_AVAILABLE, True, "MetricsOK", f"demand now {_fmt(observed)}/s")

        # forecast
        forecast, forecast_error = self._forecast(policy, spec, history, matching)
        if forecast is None:
            builder.ok(st.FORECAST_READY, False, "ForecastUnavailable", forecast_error or "no forecast")
        else:
            builder.ok(st.FORECAST_READY, True, "ForecastOK", f"{spec.forecast.model}: {len(matching)} event(s) known")
            self._forecast_error_metric(policy, forecast, observed, now)

        # decide
        lag = self._lags(policy, spec, now)
        state = ObservedState(
            now=now,
            current_replicas=scale.replicas,
            ready_replicas=scale.ready_replicas,
            observed_demand=observed,
            recommendations=st.window_recommendations(old, now, spec.scale_down.stabilization_window),
            last_scale_time=st.parse_time((old or {}).get("lastScaleTime")),
            **({} if db_scale is None or spec.database_replicas is None
               else db.observed_fields(spec.database_replicas, db_scale, lag, old, now)),
        )
        planned = plan_state(core_policy, forecast, state, self.decide)
        decision = planned.decision
        if planned.uncovered:  # a forecast that misses now is a bug, not a gap (issue 9)
            log.error("%s/%s: %s", policy.namespace, policy.name, decision.message)

        def redecide(**fresh: Any) -> Decision:
            """After a 409: decide again from the fresh /scale (stabilization and all), never the stale count."""
            nonlocal state, decision
            state = replace(state, **fresh)
            decision = self.decide(core_policy, forecast, state)
            return decision

        def app_replicas(fresh: ScaleState | None) -> int:
            if fresh is not None:
                redecide(current_replicas=fresh.replicas, ready_replicas=fresh.ready_replicas)
            return safeguarded(decision, state.current_replicas)  # never scale down without metrics

        def db_replicas(fresh: ScaleState | None) -> int:
            assert spec.database_replicas is not None
            if fresh is not None:
                redecide(**db.observed_fields(spec.database_replicas, fresh, lag, old, now))
            target = decision.database_desired_replicas
            if target is None:
                target = state.database_current_replicas or 0
            return target + spec.database_replicas.primary_instances

        # act (Active only: the one place /scale is written)
        scaled, current, db_current = False, scale.replicas, None if db_scale is None else db_scale.replicas
        scale_error: str | None = None
        if spec.mode == "Active":
            try:
                scale, scaled = self._set_replicas(key, scale, app_replicas)
                current = scale.replicas
                if db_key is not None and db_scale is not None and decision.database_desired_replicas is not None:
                    db_scale, _ = self._set_replicas(db_key, db_scale, db_replicas)
                    db_current = db_scale.replicas
            except (TargetNotFound, TargetForbidden) as exc:
                self._hold(policy, now, scale_error=str(exc))
                return self._unable(policy, builder, exc)
            except RetryableError as exc:
                builder.ok(st.ABLE_TO_SCALE, False, "ScaleFailed", str(exc))
                scale_error = str(exc)
                self.metrics.errors.labels(policy.namespace, policy.name, "ScaleFailed").inc()

        # record
        desired = app_replicas(None)
        if spec.database_replicas is not None and db_scale is not None and db_current is not None:
            reads = spec.database_replicas
            db_current = db.replicas(reads, db_current)
            db.record(builder, reads, decision, lag, state.database_current_replicas or 0, db_current,
                      db.replicas(reads, db_scale.ready_replicas), now)
        builder.remember(decision, state, after=current, spec=spec, events=matching)  # pitboss explain
        self._record(policy, spec, builder, decision, scale, current, db_current, forecast, scaled, now)
        if scaled:
            self._scaled_event(policy, spec, decision, state.current_replicas, current, matching, now)
        elif spec.mode == "ForecastOnly" and st.decision_changed(old, decision):
            self._emit(policy, "Normal", decision.reason, f"{spec.target_ref.name}: {decision.message}", now)
        # incidents: the same facts, once per policy per cycle (evaluated here, delivered on another thread)
        self._incidents_call("observe", lambda r: r.observe(
            policy, spec, core_policy, state, decision, events=matching, forecast=forecast,
            metrics_error=metrics_error, scale_error=scale_error))
        incident_events = self.incidents is not None and self.incidents.emits_events
        if metrics_error and not incident_events and st.transitioned(old, st.METRICS_AVAILABLE, "False"):
            self._emit(policy, "Warning", "MetricsUnavailable", f"holding {current} replicas: {metrics_error}", now)
        self.metrics.observe_decision(policy.namespace, policy.name, decision.reason, desired, current)
        sized_at = decision.headroom_quantile or core_policy.headroom_quantile  # newsvendor when costs are set
        self.metrics.observe_policy(CycleFacts(
            namespace=policy.namespace, policy=policy.name, now=now, wall_now=now.timestamp(),
            capacity_per_replica=core_policy.capacity_per_replica, min_replicas=core_policy.min_replicas,
            max_replicas=core_policy.max_replicas, headroom_quantile=sized_at, current=current,
            ready=scale.ready_replicas, desired=desired, observed=observed,
            forecast_median=None if forecast is None else value_at(forecast, 0.5, now),
            forecast_headroom=None if forecast is None else value_at(forecast, sized_at, now),
            forecast_peak=decision.forecast_peak, events=matching,
            database_desired=decision.database_desired_replicas, database_current=db_current, database_lags=lag.series))
        return PolicyOutcome(policy.namespace, policy.name, decision.reason, decision.message, scale.replicas, desired,
                             scaled)

    def _incidents_call(self, what: str, call: Callable[[IncidentReporter], object]) -> None:
        """``call(reporter)`` when incidents are wired; its failure is logged, never fails the policy or the cycle."""
        if self.incidents is None:
            return
        reporter = self.incidents
        pit, src = reporter.seconds, reporter.source_seconds
        try:
            call(reporter)
        except Exception:
            log.exception("incidents: %s failed", what)
        finally:
            self._report.incident_seconds += reporter.seconds - pit
            self._report.source_seconds += reporter.source_seconds - src

    def _hold(self, policy: PolicyObject, now: datetime, *, scale_error: str | None = None) -> None:
        """The cycle stopped before deciding: keep the policy's open incidents (``IncidentReporter.hold``)."""
        self._incidents_call("hold", lambda r: r.hold(policy, now, scale_error=scale_error))

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

    # ---- observe helpers ----------------------------------------------------
    def _db_scale(self, policy: PolicyObject, spec: ScalingPolicySpec) -> tuple[TargetKey | None, ScaleState | None]:
        if spec.database_replicas is None:
            return None, None
        ref = spec.database_replicas.target_ref
        db_key = TargetKey(policy.namespace, ref.kind, ref.name, ref.api_version)
        return db_key, self.targets.get_scale(db_key)

    def _demand(
        self, policy: PolicyObject, spec: ScalingPolicySpec, now: datetime
    ) -> tuple[pd.Series | None, float | None, str | None]:
        step = spec.forecast.step
        end = _floor(now, step)
        try:
            source = self.demand(policy, spec)
            with self._source():
                history = source.history(end - spec.forecast.history, end, step)
                reading = read_current(source, now)  # a retryable failure -> unknown, with the reason
        except (RetryableError, PermanentError, OSError, TimeoutError) as exc:
            return None, None, f"demand source failed: {exc}"
        # numpy, not Series.notna().sum(): ~1 ms over 20,160 points, every policy every cycle (issue 14)
        known = int(np.count_nonzero(~np.isnan(history.to_numpy(dtype=float)))) if history is not None else 0
        if known < 2:
            window = format_duration(spec.forecast.history)
            why = "" if reading.value is not None or not reading.error else f"; {reading.error}"
            return None, reading.value, f"only {known} demand point(s) in the last {window}{why}"
        if reading.value is None:
            return history, None, f"current demand unavailable: {reading.error or 'stale or missing'}"
        return history, reading.value, None

    def _lags(self, policy: PolicyObject, spec: ScalingPolicySpec, now: datetime) -> db.LagReading:
        """This cycle's lag reading; unknown (with the error) when the query fails, unmeasured without one."""
        if spec.database_replicas is None:
            return db.LagReading(measured=False)
        source = None if self.lag is None else self.lag(policy, spec)
        with self._source():
            reading = db.read_lags(source, spec.database_replicas, now)
        if reading.error:
            log.warning("%s/%s: replica lag unknown: %s", policy.namespace, policy.name, reading.error)
        return reading

    def _forecast(
        self, policy: PolicyObject, spec: ScalingPolicySpec, history: pd.Series | None, events: list[Event],
    ) -> tuple[Forecast | None, str | None]:
        if history is None:
            return None, "no demand history"
        fits, updates, deferred = self.forecasts.fits, self.forecasts.updates, self.forecasts.deferred
        t0 = time.perf_counter()
        result = self.forecasts.get(policy.uid, policy.generation, spec, history, events)
        self._report.fits += self.forecasts.fits - fits
        self._report.updates += self.forecasts.updates - updates
        self._report.deferred_fits += self.forecasts.deferred - deferred
        if self.forecasts.fits > fits or self.forecasts.updates > updates:
            kind = "fit" if self.forecasts.fits > fits else "update"
            self.metrics.forecast_fit.labels(kind).observe(time.perf_counter() - t0)
        return result

    def _forecast_error_metric(
        self, policy: PolicyObject, forecast: Forecast, observed: float | None, now: datetime
    ) -> None:
        predicted = value_at(forecast, 0.5, now)
        if observed is not None and observed > 0 and predicted is not None:
            self.metrics.forecast_error.labels(policy.namespace, policy.name).set(abs(observed - predicted) / observed)

    # ---- act helpers ----------------------------------------------------------
    def _set_replicas(
        self, key: TargetKey, scale: ScaleState, desired_for: Callable[[ScaleState | None], int]
    ) -> tuple[ScaleState, bool]:
        """Patch /scale (409: re-read and decide again, ``controller.cycle.act``): (scale after, written?)."""
        result, written = write_replicas(self.targets, key, scale, desired_for, timed=self._api)
        if written:
            self.metrics.scales.labels(key.kind).inc()
        return result, written

    # ---- record helpers ------------------------------------------------------
    def _record(
        self, policy: PolicyObject, spec: ScalingPolicySpec, builder: st.StatusBuilder, decision: Decision,
        scale: ScaleState, current: int, db_current: int | None, forecast: Forecast | None, scaled: bool,
        now: datetime,
    ) -> None:
        ready_ok = decision.metrics_available
        builder.ok(st.READY, ready_ok, decision.reason if ready_ok else "Holding", decision.message)
        builder.ok(st.CAPACITY_LIMITED, decision.capacity_limited,
                   "MaxReplicasReached" if decision.capacity_limited else "WithinLimits",
                   f"forecast needs more than maxReplicas {spec.max_replicas}" if decision.capacity_limited
                   else f"within [{spec.min_replicas}, {spec.max_replicas}]")
        desired = decision.desired_replicas
        if spec.mode == "ForecastOnly" and decision.recommended_replicas is not None:
            desired = decision.recommended_replicas  # what Active mode would ask for
        builder.set(
            currentReplicas=current,
            readyReplicas=scale.ready_replicas,
            desiredReplicas=desired,
            databaseCurrentReplicas=db_current,
            databaseDesiredReplicas=decision.database_desired_replicas,
            nextPeak=st.next_peak(forecast, spec, now),
        )
        builder.decision(decision, now)
        if scaled:
            builder.set(lastScaleTime=st.iso(now))
        builder.recommend(decision.recommended_replicas, now, spec.scale_down.stabilization_window)
        self._write_status(policy, builder)

    def _write_status(self, policy: PolicyObject, builder: st.StatusBuilder, *, quiet: bool = False) -> None:
        status = builder.build()
        if status == policy.status:
            return
        try:
            with self._api():
                self.store.write_status(policy, status)
        except (PermanentError, RetryableError) as exc:
            if not quiet:
                log.warning("%s/%s: status write failed: %s", policy.namespace, policy.name, exc)

    def _emit(self, policy: PolicyObject, event_type: str, reason: str, message: str, now: datetime) -> None:
        try:
            with self._api():
                self.recorder.record(
                    namespace=policy.namespace, kind="ScalingPolicy", name=policy.name,
                    event_type="Warning" if event_type == "Warning" else "Normal", reason=reason, message=message,
                    at=now,
                )
        except (PermanentError, RetryableError) as exc:
            log.warning("%s/%s: event not recorded: %s", policy.namespace, policy.name, exc)

    def _scaled_event(
        self, policy: PolicyObject, spec: ScalingPolicySpec, decision: Decision, before: int, after: int,
        events: list[Event], now: datetime,
    ) -> None:
        self._emit(policy, "Normal", decision.reason,
                   st.scale_message(spec, decision, before, after, events, now), now)

    def _invalid(self, policy: PolicyObject, builder: st.StatusBuilder, message: str) -> PolicyOutcome:
        builder.ok(st.INVALID_SPEC, True, "InvalidSpec", message)
        builder.ok(st.READY, False, "InvalidSpec", message)
        if st.transitioned(policy.status, st.INVALID_SPEC, "True", message):
            self._emit(policy, "Warning", "InvalidSpec", message, builder.now)
        self._write_status(policy, builder)
        self.metrics.errors.labels(policy.namespace, policy.name, "InvalidSpec").inc()
        return PolicyOutcome(policy.namespace, policy.name, "InvalidSpec", message, error=message)

    def _unable(self, policy: PolicyObject, builder: st.StatusBuilder, exc: Exception) -> PolicyOutcome:
        reason = "TargetNotFound" if isinstance(exc, TargetNotFound) else "Forbidden"
        builder.ok(st.ABLE_TO_SCALE, False, reason, str(exc))
        builder.ok(st.READY, False, reason, str(exc))
        if st.transitioned(policy.status, st.ABLE_TO_SCALE, "False", str(exc)):
            self._emit(policy, "Warning", reason, str(exc), builder.now)
        self._write_status(policy, builder)
        self.metrics.errors.labels(policy.namespace, policy.name, reason).inc()
        return PolicyOutcome(policy.namespace, policy.name, reason, str(exc), error=str(exc))


def _floor(now: datetime, step: timedelta) -> datetime:
    """``now`` down to a whole ``step`` since the epoch (what ``pd.Timestamp.floor`` gives, without pandas)."""
    if now.tzinfo is None:
        ts = pd.Timestamp(now)
        return ts.floor(pd.Timedelta(step)).to_pydatetime()
    return now - (now - _EPOCH) % step


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _fmt(x: float | None) -> str:
    return "unknown" if x is None else f"{x:.4g}"


__all__ = ["CycleReport", "PolicyOutcome", "Reconciler"]
