"""Incidents from the reconcile loop: one CycleInput per policy per cycle, one engine per process.

The Reconciler calls ``IncidentReporter.observe`` once per policy after it has
decided and acted (the facts it already holds: decision, observed state,
forecast, demand error, scale-call failures, replica lags, and the error
ratios of the SLIs the policy names in ``spec.slo``); the pure rules
(``controller.incidents.rules.evaluate``) turn them into signals and the
``IncidentEngine`` (scoped per policy) into incidents, written to the local
SQLite log at once. Delivery to the sinks (Alertmanager, Kubernetes Events)
happens on a ``DeliveryWorker`` thread, kicked at the end of each leader cycle,
so a sink that is slow or down never holds up or fails a cycle: Alertmanager
gets the whole firing state re-sent each resend interval (nothing to queue),
Events wait in an in-memory queue, both retried with backoff. Only the leader
runs cycles, so only the leader evaluates; the worker sends only while it
leads and can prove its lease. Each leadership term starts clean
(``begin_term``): what an earlier term left undelivered is never replayed.
A policy this replica sees for the first time (its shard moved here, or the
leader changed) may have open incidents its former owner already announced:
with ``announced`` (the alerts in Alertmanager, ``alertmanager_announced``)
the reporter adopts them before the first evaluation (``IncidentEngine.adopt``),
so the new owner carries them on instead of announcing them again (no second
Warning Event), and resolves them when they clear. Without Alertmanager the
policy's status says the same: the Reconciler writes each policy's open
incidents into ``status.openIncidents`` (``open_incidents``: id, alertname,
severity, labels, summary, startsAt) and a replica that sees the policy for
the first time adopts them from there too (``from_status``), so a new owner or
a restarted operator with a fresh log does not send the Warning Event again.
Built by ``controller.operator.app.build_incidents``; tests build it directly.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from controller.core.decision import Decision, ObservedState
from controller.core.policy import Policy
from controller.cycle.incidents import evaluate_cycle, new_memory
from controller.cycle.memory import PolicyMemory, iso, parse_time
from controller.errors import PermanentError, RetryableError
from controller.incidents.alertmanager import AlertmanagerClient, from_alert
from controller.incidents.engine import CycleResult, IncidentEngine
from controller.incidents.model import Incident, Severity
from controller.incidents.rules import ALL_WINDOWS, RuleSettings
from controller.operator.clock import Clock
from controller.operator.kube import PolicyObject
from controller.operator.resources import ScalingPolicySpec
from controller.sources.sli import Ratios, SLISource
from controller.telemetry.metrics import OperatorMetrics
from forecasting.base import Event, Forecast

log = logging.getLogger(__name__)

SLIFactory = Callable[[PolicyObject, ScalingPolicySpec], SLISource | None]
Announced = Callable[[], Sequence[Incident]]  # every open incident announced so far, by any replica
OPEN_INCIDENTS = "openIncidents"  # the status field a new owner adopts the open incidents from
MAX_SUMMARY = 256


def status_entries(incidents: Sequence[Incident], old: Mapping[str, Any] | None) -> list[dict[str, Any]] | None:
    """``status.openIncidents`` for these open incidents (None: none): what ``from_status`` adopts.

    An entry already in ``old`` is kept as it was (its summary as first written), so an incident whose
    numbers move every cycle does not rewrite the status every cycle.
    """
    before = {e.get("id"): e for e in (old or {}).get(OPEN_INCIDENTS) or [] if isinstance(e, Mapping)}
    out = []
    for incident in incidents:
        kept = before.get(incident.id)
        out.append(dict(kept) if kept is not None else {
            "id": incident.id, "alertname": incident.alertname, "severity": str(incident.severity),
            "labels": dict(incident.labels), "summary": incident.summary[:MAX_SUMMARY],
            "startsAt": iso(incident.starts_at)})
    return out or None


def from_status(status: Mapping[str, Any] | None) -> list[Incident]:
    """The open incidents a policy's status lists (``status_entries``), to adopt; malformed entries skipped."""
    out = []
    for entry in (status or {}).get(OPEN_INCIDENTS) or []:
        if not isinstance(entry, Mapping):
            continue
        starts = parse_time(entry.get("startsAt"))
        labels = entry.get("labels")
        try:
            severity = Severity(str(entry.get("severity", "")))
        except ValueError:
            continue
        if starts is None or not isinstance(labels, Mapping) or not entry.get("id") or not entry.get("alertname"):
            continue
        out.append(Incident(id=str(entry["id"]), alertname=str(entry["alertname"]), severity=severity,
                            labels={str(k): str(v) for k, v in labels.items()}, summary=str(entry.get("summary", "")),
                            description="", runbook_url="", state="firing", starts_at=starts, updated_at=starts))
    return out


def alertmanager_announced(client: AlertmanagerClient) -> Announced:
    """The open incidents in Alertmanager that Pitboss sent (alerts carrying ``pitboss_id``)."""

    def announced() -> list[Incident]:
        alerts = client.alerts(filters=['pitboss_id=~".+"'])
        return [i for i in (from_alert(a) for a in alerts) if i is not None]

    return announced


@dataclass
class _CachedRatios:
    at: float
    ratios: Ratios | None


class IncidentReporter:
    """Builds each policy's CycleInput, evaluates the rules and feeds the engine (no delivery here)."""

    def __init__(
        self,
        engine: IncidentEngine,
        *,
        settings: RuleSettings | None = None,
        sli: SLIFactory | None = None,
        sli_interval: timedelta = timedelta(minutes=1),
        emits_events: bool = False,
        announced: Announced | None = None,
    ) -> None:
        self.engine = engine
        self.settings = settings or RuleSettings()
        self.sli = sli
        self.sli_interval = sli_interval.total_seconds()
        self.emits_events = emits_events  # a KubernetesEventSink is wired: the loop need not repeat its Warnings
        self.announced = announced
        self.adopted = 0  # incidents taken over from a former owner so far (tests, logs)
        self.worker: DeliveryWorker | None = None
        self._memory: dict[str, PolicyMemory] = {}
        self._announced: dict[tuple[str, str], list[Incident]] | None = None  # this cycle's read, by policy
        self._sli_cache: dict[int, _CachedRatios] = {}  # by id() of the SLI source (the factory keeps them)
        self.seconds = 0.0  # in the rules, the engine and the local log (Pitboss time, for the benchmark)
        self.source_seconds = 0.0  # in SLI queries (source time)

    # ---- per policy -------------------------------------------------------------------------
    def _mem(self, policy: PolicyObject, memory: PolicyMemory | None = None) -> PolicyMemory:
        """The policy's memory: the Reconciler's (``memory``, loaded from status) or, alone, one kept here."""
        key = policy.uid or f"{policy.namespace}/{policy.name}"
        mem = self._memory.get(key)
        first = mem is None
        if memory is not None:
            mem = self._memory[key] = memory
        elif mem is None:
            mem = self._memory[key] = new_memory(policy.namespace, policy.name, self.settings)
        if first:
            self._adopt(policy)
        return mem

    def _adopt(self, policy: PolicyObject) -> None:
        """First sight of ``policy`` here: take over the open incidents already announced for it.

        From Alertmanager when it is wired (``announced``), and from the policy's status (``from_status``):
        the former owner's last status write, the only record there is without Alertmanager. Alertmanager's
        copy wins for an incident both hold (it carries the whole text)."""
        found = {i.id: i for i in from_status(policy.status)}
        if self.announced is not None:
            found.update((i.id, i) for i in self._read_announced().get((policy.namespace, policy.name), ()))
        taken = self.engine.adopt(found.values()) if found else []
        if taken:
            self.adopted += len(taken)
            log.info("incidents: %s/%s: adopted %d open incident(s) its former owner announced (%s)",
                     policy.namespace, policy.name, len(taken), ", ".join(sorted(i.alertname for i in taken)))

    def _read_announced(self) -> dict[tuple[str, str], list[Incident]]:
        """What is announced in Alertmanager, by (namespace, policy): read once a cycle."""
        assert self.announced is not None
        if self._announced is None:  # one read per cycle, however many policies are new in it
            self._announced = {}
            t0 = time.perf_counter()
            try:
                for incident in self.announced():
                    where = (incident.labels.get("namespace", ""), incident.labels.get("policy", ""))
                    self._announced.setdefault(where, []).append(incident)
            except (RetryableError, PermanentError, OSError) as exc:
                log.warning("incidents: cannot read what is already announced (%s); new policies may announce "
                            "their open incidents again", exc)
            finally:
                self.source_seconds += time.perf_counter() - t0
        return self._announced

    def open_incidents(self, policy: PolicyObject) -> list[dict[str, Any]] | None:
        """The policy's ``status.openIncidents`` after this cycle's evaluation (``status_entries``)."""
        key = policy.uid or f"{policy.namespace}/{policy.name}"
        mem = self._memory.get(key)
        scope = mem.scope if mem is not None else {"namespace": policy.namespace, "policy": policy.name}
        return status_entries(self.engine.open_in(scope), policy.status)

    def scale_call(self, policy: PolicyObject, error: str | None) -> None:
        """Record the outcome of this cycle's calls to the scale target (None: they all succeeded)."""
        self._mem(policy).scale.record(error)

    def observe(
        self,
        policy: PolicyObject,
        spec: ScalingPolicySpec,
        core: Policy,
        state: ObservedState,
        decision: Decision,
        *,
        events: Sequence[Event],
        forecast: Forecast | None,
        metrics_error: str | None,
        scale_error: str | None = None,
        memory: PolicyMemory | None = None,
    ) -> CycleResult:
        """Evaluate every rule for this policy now and apply the signals (queued, not delivered).

        ``scale_error`` is this cycle's failed call to the scale target (None: the calls succeeded);
        with ``memory`` (the cycle's, which already counted the calls) it is not counted again.
        """
        t0 = time.perf_counter()
        if memory is None:
            self.scale_call(policy, scale_error)
        mem = self._mem(policy, memory)
        slo = getattr(spec, "slo", None)  # the policy's own SLIs; none: no burn-rate incident for it
        ratios = self._ratios(policy, spec, state.now) if metrics_error is None and slo is not None else None
        t1 = time.perf_counter()
        self.source_seconds += t1 - t0
        result = evaluate_cycle(self.engine, self.settings, mem, policy=core, state=state, decision=decision,
                                step=spec.forecast.step, forecast=forecast, events=events,
                                metrics_error=metrics_error, error_ratios=ratios,
                                slos=() if slo is None else slo.objectives(), deliver=False)
        self.seconds += time.perf_counter() - t1
        return result

    def hold(self, policy: PolicyObject, now: datetime, *, scale_error: str | None = None,
             memory: PolicyMemory | None = None) -> list[Incident]:
        """The cycle stopped before deciding (target unreadable, invalid spec): keep open incidents, resolve none.

        With ``memory`` (the cycle's) the failed call is counted there (by the caller), not here."""
        t0 = time.perf_counter()
        if scale_error is not None and memory is None:
            self.scale_call(policy, scale_error)
        try:
            return self.engine.hold(now, self._mem(policy, memory).scope)
        finally:
            self.seconds += time.perf_counter() - t0

    def resolve(self, policy: PolicyObject, now: datetime) -> CycleResult:
        """Stop watching this policy (Paused): resolve its open incidents."""
        t0 = time.perf_counter()
        try:
            return self.engine.process(now, [], self._mem(policy).scope, deliver=False)
        finally:
            self.seconds += time.perf_counter() - t0

    def forget_except(self, policies: Iterable[PolicyObject], now: datetime, namespace: str | None = None, *,
                      existing: Iterable[PolicyObject] | None = None) -> None:
        """After a complete pass: drop the memory of every policy but ``policies`` (the ones this replica keeps).

        A policy that is gone gets its incidents resolved, also those reloaded from the log for
        policies deleted while the operator was down (in ``namespace`` when the operator watches
        only one). A policy still in ``existing`` (every policy listed; default ``policies``) but
        kept by another replica now (its shard moved) is handed off: its incidents are dropped
        without a resolve, so the new owner's re-sends carry the alert on (``IncidentEngine.hand_off``).
        """
        t0 = time.perf_counter()
        current = list(policies)
        keep = {p.uid or f"{p.namespace}/{p.name}" for p in current}
        live = {(p.namespace, p.name) for p in current}
        elsewhere = set() if existing is None else {(p.namespace, p.name) for p in existing} - live
        for key in [k for k in self._memory if k not in keep]:
            scope = self._memory.pop(key).scope
            where = (scope["namespace"], scope["policy"])
            if where in elsewhere:
                self._hand_off(scope, now)
            elif where not in live:  # deleted (not re-created under the same name)
                self.engine.process(now, [], scope, deliver=False)
        active = list(self.engine.active.values())
        orphans = {(i.labels.get("namespace", ""), i.labels.get("policy", "")) for i in active}
        for ns, name in sorted(orphans - live):
            if name and (namespace is None or ns == namespace):
                scope = {"namespace": ns, "policy": name}
                if (ns, name) in elsewhere:
                    self._hand_off(scope, now)
                else:
                    self.engine.process(now, [], scope, deliver=False)
        self.seconds += time.perf_counter() - t0

    def _hand_off(self, scope: dict[str, str], now: datetime) -> None:
        handed = self.engine.hand_off(now, scope)
        if handed:
            log.info("incidents: %s/%s is another replica's now; handed off %d open incident(s) without a resolve",
                     scope["namespace"], scope["policy"], len(handed))

    def begin_term(self, now: datetime) -> None:
        """This instance just became leader: send only what this term evaluates (called by the loop)."""
        self.engine.begin_term()
        self._announced = None
        log.info("incidents: new leadership term at %s; %d open incident(s) wait for re-evaluation",
                 now.isoformat(), len(self.engine.active))

    def end_cycle(self, now: datetime) -> None:
        """Hand the queued changes to the delivery worker (or deliver inline when there is none)."""
        self._announced = None  # the next cycle reads what is announced afresh
        if self.worker is not None:
            self.worker.kick()
        else:
            self.flush(now)

    def flush(self, now: datetime) -> dict[str, int]:
        """Deliver what is queued now, on this thread (``--once``, shutdown, tests)."""
        try:
            return self.engine.flush(now)
        except Exception:  # a sink bug must never take the loop down; the queue keeps the incidents
            log.exception("incident delivery failed")
            return {}

    # ---- helpers ---------------------------------------------------------------------------
    def _ratios(self, policy: PolicyObject, spec: ScalingPolicySpec, now: datetime) -> Ratios | None:
        """SLI error ratios from the policy's source, refreshed at most every ``sli_interval`` per source."""
        if self.sli is None:
            return None
        source = self.sli(policy, spec)
        if source is None:
            return None
        cached = self._sli_cache.get(id(source))
        mono = time.monotonic()
        if cached is not None and mono - cached.at < self.sli_interval:
            return cached.ratios
        try:
            ratios: Ratios | None = source.error_ratios(now, ALL_WINDOWS)
        except (RetryableError, PermanentError, OSError) as exc:
            log.warning("%s/%s: SLI error ratios unavailable: %s", policy.namespace, policy.name, exc)
            ratios = None
        self._sli_cache[id(source)] = _CachedRatios(mono, ratios)
        return ratios


class DeliveryWorker:
    """A daemon thread that flushes the engine's queues when kicked, and retries while anything is pending."""

    def __init__(self, engine: IncidentEngine, clock: Clock, *, leading: Callable[[], bool] = lambda: True,
                 retry_every: timedelta = timedelta(seconds=1), metrics: OperatorMetrics | None = None) -> None:
        self.engine = engine
        self.metrics = metrics
        self.clock = clock
        self.leading = leading
        self.retry_every = retry_every.total_seconds()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.flushes = 0
        self.delivered = 0

    def start(self) -> DeliveryWorker:
        """Start the thread (idempotent)."""
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="incident-delivery", daemon=True)
            self._thread.start()
        return self

    def kick(self) -> None:
        """Deliver now (called at the end of each leader cycle)."""
        self._wake.set()

    def pending(self) -> int:
        """Incidents changed and not yet delivered to some sink."""
        return sum(q.pending() for q in self.engine.queues)

    def _retrying(self) -> bool:
        return any(q.stats.failures for q in self.engine.queues) or self.pending() > 0

    def _run(self) -> None:
        while not self._stop.is_set():
            kicked = self._wake.wait(self.retry_every)
            self._wake.clear()
            if self._stop.is_set():
                break
            if not self.leading() or not (kicked or self._retrying()):
                continue
            try:
                counts = self.engine.flush(self.clock.now())
                self.flushes += 1
                self.delivered += sum(counts.values())
                if self.metrics is not None:
                    self.metrics.incidents_firing.set(len(self.engine.active))
                    for queue in self.engine.queues:
                        self.metrics.incident_queue.labels(queue.name).set(queue.pending())
            except Exception:  # never let the thread die: the queue keeps the incidents for the next try
                log.exception("incident delivery failed")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (the next leader re-sends what is still firing)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
