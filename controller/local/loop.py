"""The local control loop: observe -> forecast -> decide -> act -> record, on a compressed clock.

Called by the local run (``controller.local.run``) and its tests. One cycle:

1. observe: the target's scale (replicas asked for, ready) and the demand
   source's current demand (a ``ScrapeSource`` over the ready replicas in a
   real run; None means unknown, never zero);
2. forecast: once a simulated step has completed, absorb it into the fitted
   model (``SupportsUpdate.update``) and predict the next lead time again; if
   that fails, the planning forecast made at start is used;
3. decide: ``controller.core.decide`` (pure) with the policy in simulated units;
4. act: one ``set_replicas`` on the target when the decision changes the count
   (a failure is counted for the ``ScalingFailing`` incident, never retried
   in a tight loop);
5. record: a ``CycleRecord`` and the incident rules through the engine; with
   ``metrics`` (an ``OperatorMetrics``) also the operator's own
   ``pitboss_operator_*`` series, under namespace ``local`` and policy
   ``casino``, so the Grafana dashboards read a local run as they read the
   operator (durations and integrals on the simulated clock).

Time: the clock is injected (``Clock``: ``monotonic()`` and ``sleep()``), and
simulated time is ``live_start + speed * elapsed``. Demand stays in real
requests/s (the trace is scaled to what the replicas see), so only the time
axis is compressed: the policy's lead time, sync period and stabilization
window are simulated durations.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Protocol

import numpy as np
import pandas as pd

from controller.core.decide import decide
from controller.core.decision import Decision, ObservedState
from controller.core.policy import Policy
from controller.errors import PitbossError
from controller.incidents.engine import IncidentEngine
from controller.incidents.rules import CycleInput, RuleSettings, evaluate
from controller.local.loadgen import Tally
from controller.local.recorder import CycleRecord, RunRecord
from controller.operator.accounting import CycleFacts
from controller.operator.metrics import OperatorMetrics
from controller.sources.base import DemandSource
from controller.targets.base import ScaleTarget, TargetKey
from forecasting.base import Event, Forecast, Forecaster, SupportsUpdate

LOCAL_SCOPE = ("local", "casino")  # (namespace, policy) of the local run, as its incidents are labelled
LOCAL_IDENTITY = "local"


class Clock(Protocol):
    """Real time, injected so tests can run the loop without waiting."""

    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(max(0.0, seconds))


@dataclass
class FakeClock:
    """A clock that moves only when slept on (tests)."""

    now: float = 0.0
    slept: list[float] = field(default_factory=list)

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += max(0.0, seconds)


class ForecastFeed:
    """The fitted model, kept current with observed demand each completed simulated step."""

    def __init__(self, model: Forecaster, events: Sequence[Event], fitted_end: pd.Timestamp, step: pd.Timedelta,
                 plan: Forecast, horizon_steps: int) -> None:
        self.model = model
        self.events = list(events)
        self.last = fitted_end  # the last step the model has absorbed
        self.step = step
        self.plan = plan  # the forecast made at start, over the whole run
        self.current: Forecast = plan
        self.horizon_steps = horizon_steps
        self.updates = 0
        self.failures: list[str] = []

    def at(self, now: pd.Timestamp, observed: float | None) -> Forecast:
        """The forecast to decide with at ``now``; absorbs completed steps with ``observed``."""
        complete = now.floor(self.step) - self.step  # the last step that has fully passed
        if complete <= self.last or not isinstance(self.model, SupportsUpdate) or len(self.failures) >= 3:
            return self.current
        index = pd.date_range(self.last + self.step, complete, freq=self.step)
        value = np.nan if observed is None else float(observed)
        points = pd.Series(value, index=index, dtype=float)
        try:
            self.model.update(points)
            self.current = self.model.predict(self.horizon_steps, self.events)
            self.updates += 1
        except ValueError as exc:
            self.failures.append(f"{now.isoformat()}: {exc}")
            self.current = self.plan
        self.last = complete
        return self.current


def _value_at(forecast: Forecast | None, q: float, now: pd.Timestamp) -> float | None:
    if forecast is None or len(forecast.index) == 0:
        return None
    pos = int(forecast.index.searchsorted(now, side="right")) - 1
    if pos < 0 or pos >= len(forecast.index):
        return None
    value = float(forecast.quantile(q)[pos])
    return None if np.isnan(value) else value


class ControlLoop:
    """One policy, one target, one demand source, on a compressed clock."""

    def __init__(
        self,
        *,
        policy: Policy,
        feed: ForecastFeed | None,
        target: ScaleTarget,
        key: TargetKey,
        source: DemandSource,
        record: RunRecord,
        live_start: pd.Timestamp,
        speed: float,
        trace_rate: Callable[[float], float] = lambda _: float("nan"),
        load: Callable[[], Tally] | None = None,
        incidents: IncidentEngine | None = None,
        rules: RuleSettings | None = None,
        events: Sequence[Event] = (),
        clock: Clock | None = None,
        cycle_seconds: float = 1.0,
        lead_time: Callable[[], timedelta] | None = None,
        metrics: OperatorMetrics | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError(f"speed: must be positive, got {speed}")
        if cycle_seconds <= 0:
            raise ValueError(f"cycle: must be positive, got {cycle_seconds}")
        self.policy = policy
        self.feed = feed
        self.target = target
        self.key = key
        self.source = source
        self.record = record
        self.live_start = live_start
        self.speed = speed
        self.trace_rate = trace_rate
        self.load = load
        self.incidents = incidents
        self.rules = rules or RuleSettings()
        self.events = list(events)
        self.clock = clock or SystemClock()
        self.cycle_seconds = cycle_seconds
        self.lead_time = lead_time
        self.metrics = metrics
        if metrics is not None:
            metrics.leader.labels(LOCAL_IDENTITY).set(1)  # the one and only instance leads
        self.lead_changes: list[tuple[pd.Timestamp, timedelta]] = []
        window = policy.scale_down.stabilization_window
        self._recs: deque[tuple[datetime, int]] = deque()
        self._window = window
        self._checks: deque[tuple[float | None, float | None]] = deque(maxlen=10)
        self._last_tally = Tally()
        self._last_scale: datetime | None = None
        self.scale_failures = 0
        self.last_scale_error: str | None = None
        self.t0 = self.clock.monotonic()
        self.wall0 = datetime.now(UTC)

    def sim_time(self, elapsed: float) -> pd.Timestamp:
        return (self.live_start + pd.Timedelta(seconds=elapsed * self.speed)).floor("us")

    def cycle(self) -> CycleRecord:
        """One observe -> forecast -> decide -> act -> record pass."""
        began = time.perf_counter()
        elapsed = self.clock.monotonic() - self.t0
        now = self.sim_time(elapsed)
        self._refresh_lead(now)
        # observe
        scale = self.target.get_scale(self.key)
        metrics_error: str | None = None
        try:
            observed = self.source.current(self.wall0 + timedelta(seconds=elapsed))
        except PitbossError as exc:
            observed, metrics_error = None, str(exc)
        # forecast
        updates, t_fc = (self.feed.updates if self.feed is not None else 0), time.perf_counter()
        forecast = self.feed.at(now, observed) if self.feed is not None else None
        if self.metrics is not None and self.feed is not None and self.feed.updates > updates:
            self.metrics.forecast_fit.labels("update").observe(time.perf_counter() - t_fc)
        # decide
        while self._recs and self._recs[0][0] < now - self._window:
            self._recs.popleft()
        state = ObservedState(now=now.to_pydatetime(), current_replicas=scale.replicas,
                              ready_replicas=scale.ready_replicas, observed_demand=observed,
                              recommendations=tuple(self._recs), last_scale_time=self._last_scale)
        decision = decide(self.policy, forecast, state)
        if decision.recommended_replicas is not None:
            self._recs.append((state.now, decision.recommended_replicas))
        # act
        scaled = self._act(decision, scale.replicas, state.now)
        # record
        q = self.policy.headroom_quantile
        q99 = _value_at(forecast, 0.99, now)
        self._checks.append((observed, q99))
        fired, resolved = self._incidents(state, decision, metrics_error)
        tally = self.load() if self.load is not None else Tally()
        delta, self._last_tally = tally - self._last_tally, tally
        rec = CycleRecord(
            t=now, elapsed=elapsed, trace_rate=float(self.trace_rate(elapsed)), observed=observed,
            offered=delta.offered, served=delta.served, rejected=delta.rejected, unserved=delta.unserved,
            current=scale.replicas, ready=scale.ready_replicas, desired=decision.desired_replicas,
            q50=_value_at(forecast, 0.5, now), q95=_value_at(forecast, q, now), q99=q99,
            reason=decision.reason, message=decision.message, scaled=scaled, fired=fired, resolved=resolved,
            flags=sorted(decision.flags), peak=decision.forecast_peak,
            peak_at=None if decision.forecast_peak_at is None else pd.Timestamp(decision.forecast_peak_at).isoformat(),
            metrics_error=metrics_error,
        )
        self.record.add(rec)
        if self.metrics is not None:
            self._export(rec, state, decision, forecast, elapsed, time.perf_counter() - began)
        return rec

    def _export(self, rec: CycleRecord, state: ObservedState, decision: Decision, forecast: Forecast | None,
                elapsed: float, seconds: float) -> None:
        """The operator's per-policy series for this cycle (the dashboards read them)."""
        m = self.metrics
        assert m is not None
        ns, name = LOCAL_SCOPE
        p = self.policy
        m.reconcile_seconds.labels("policy").observe(seconds)
        m.reconcile_seconds.labels("cycle").observe(seconds)
        m.decisions.labels(ns, name, decision.reason).inc()
        m.desired.labels(ns, name).set(decision.desired_replicas)
        m.current.labels(ns, name).set(rec.desired if rec.scaled else rec.current)
        if rec.scaled:
            m.scales.labels(self.key.kind).inc()
        if self.scale_failures:
            m.errors.labels(ns, name, "ScaleFailed").inc()
        if rec.observed is not None and rec.observed > 0 and rec.q50 is not None:
            m.forecast_error.labels(ns, name).set(abs(rec.observed - rec.q50) / rec.observed)
        m.observe_policy(CycleFacts(
            namespace=ns, policy=name, now=state.now, wall_now=self.wall0.timestamp() + elapsed,
            capacity_per_replica=p.capacity_per_replica, min_replicas=p.min_replicas, max_replicas=p.max_replicas,
            headroom_quantile=p.headroom_quantile, current=rec.desired if rec.scaled else rec.current,
            ready=rec.ready, desired=decision.desired_replicas, observed=rec.observed, forecast_median=rec.q50,
            forecast_headroom=rec.q95, forecast_peak=decision.forecast_peak, events=self.events),
            time_scale=self.speed)
        if self.incidents is not None:
            m.observe_incidents(list(self.incidents.active.values()), state.now)
            m.incidents_firing.set(len(self.incidents.active))
            for queue in self.incidents.queues:
                m.incident_queue.labels(queue.name).set(queue.pending())

    def _refresh_lead(self, now: pd.Timestamp) -> None:
        """Lengthen the policy's lead time when a slower replica start-up has been measured."""
        if self.lead_time is None:
            return
        lead = self.lead_time()
        if lead > self.policy.lead_time:
            self.policy = self.policy.model_copy(update={"lead_time": lead})
            self.lead_changes.append((now, lead))
            if self.feed is not None:
                self.feed.horizon_steps = max(self.feed.horizon_steps,
                                              math.ceil((lead + self.policy.sync_period) / self.feed.step) + 3)

    def _act(self, decision: Decision, current: int, now: datetime) -> bool:
        if decision.desired_replicas == current:
            return False
        try:
            self.target.set_replicas(self.key, decision.desired_replicas)
        except PitbossError as exc:
            self.scale_failures += 1
            self.last_scale_error = str(exc)
            return False
        self.scale_failures, self.last_scale_error = 0, None
        self._last_scale = now
        return True

    def _incidents(self, state: ObservedState, decision: Decision, metrics_error: str | None
                   ) -> tuple[list[str], list[str]]:
        if self.incidents is None:
            return [], []
        cycle = CycleInput(policy_name="casino", namespace="local", policy=self.policy, state=state,
                           decision=decision, events=self.events, forecast_checks=tuple(self._checks),
                           scale_failures=self.scale_failures, last_scale_error=self.last_scale_error,
                           metrics_error=metrics_error)
        result = self.incidents.process(state.now, evaluate(cycle, self.rules), cycle.scope())
        for incident in result.fired + result.resolved:
            self.record.incidents.append({**incident.to_dict(), "at": state.now.isoformat()})
        return [i.alertname for i in result.fired], [i.alertname for i in result.resolved]

    def settle(self, tally: Tally) -> None:
        """Book what happened after the last cycle (requests still in flight then) on the last record."""
        if not self.record.cycles:
            return
        delta, self._last_tally = tally - self._last_tally, tally
        last = self.record.cycles[-1]
        last.offered += delta.offered
        last.served += delta.served
        last.rejected += delta.rejected
        last.unserved += delta.unserved

    def run(self, duration: float, on_cycle: Callable[[CycleRecord], None] | None = None,
            should_stop: Callable[[], bool] = lambda: False) -> None:
        """Cycle every ``cycle_seconds`` of real time until ``duration`` real seconds have passed.

        The demand source is read once first (a rate needs two readings), so the
        first decision, one cycle in, already has an observed demand.
        """
        with contextlib.suppress(PitbossError):  # the first cycle reports a failing source
            self.source.current(self.wall0 + timedelta(seconds=self.clock.monotonic() - self.t0))
        n = 1
        self.clock.sleep(self.t0 + self.cycle_seconds - self.clock.monotonic())
        while True:
            elapsed = self.clock.monotonic() - self.t0
            if elapsed >= duration or should_stop():
                return
            rec = self.cycle()
            if on_cycle is not None:
                on_cycle(rec)
            n += 1
            self.clock.sleep(self.t0 + n * self.cycle_seconds - self.clock.monotonic())
