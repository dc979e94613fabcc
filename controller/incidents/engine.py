"""The incident engine: signals in, deduplicated incidents with a lifecycle out.

Called once per cycle per policy by the reconcile loop and the local run
(``process(now, signals, scope)``). A signal's fingerprint (alertname plus
identity labels) is the incident id: the same finding on the next cycle
updates the open incident instead of opening another; an open incident of the
same scope that no rule reports any more is resolved. Every transition is
written to the local log (when there is one) *before* it is queued for the
sinks, and firing incidents are re-queued every ``resend_interval`` for sinks
that want re-sends (Alertmanager), so the local log and the queues together
never lose an incident while a sink is down.

The operator evaluates on its loop thread (``process(..., deliver=False)``)
and delivers on a thread of its own (``flush``), so a slow or dead sink never
holds up a reconcile cycle: ``process``/``hold`` share one lock, concurrent
``flush`` calls are serialized by another, and the outbox (the SQLite log) is
thread-safe.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from controller.incidents.model import Incident, Signal
from controller.incidents.queue import DeliveryQueue, MemoryOutbox, Outbox, Sink
from controller.incidents.store import IncidentLog
from controller.sources.retry import Backoff

DEFAULT_RUNBOOK_BASE = "docs/runbooks.md"


@dataclass
class CycleResult:
    """What changed in one ``process`` call."""

    fired: list[Incident] = field(default_factory=list)
    resolved: list[Incident] = field(default_factory=list)
    active: list[Incident] = field(default_factory=list)  # open incidents of this scope (all: scope None)
    delivered: dict[str, int] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)


ScopeKey = tuple[tuple[str, str], ...]


def _in_scope(incident: Incident, scope: Mapping[str, str] | None) -> bool:
    return scope is None or all(incident.labels.get(k) == v for k, v in scope.items())


class IncidentEngine:
    """Deduplicates signals into incidents, tracks firing -> resolved, feeds the sinks' queues."""

    def __init__(
        self,
        sinks: Sequence[Sink] = (),
        *,
        log: IncidentLog | None = None,
        outbox: Outbox | None = None,
        resend_interval: timedelta = timedelta(minutes=1),
        runbook_base: str = DEFAULT_RUNBOOK_BASE,
        max_queue: int = 1000,
        backoff: Backoff | None = None,
    ) -> None:
        self.log = log
        store: Outbox = outbox or log or MemoryOutbox()
        self.queues = [DeliveryQueue(s, store, max_items=max_queue, backoff=backoff) for s in sinks]
        self.resend_interval = resend_interval
        self.runbook_base = runbook_base
        self.active: dict[str, Incident] = {i.id: i for i in log.active()} if log else {}
        self._last_sent: dict[str, datetime] = {}
        # An incident belongs to the scope it was raised in; incidents reloaded from the log
        # join a scope the first time a matching scope is processed.
        self._members: dict[ScopeKey, set[str]] = {}
        self._unscoped: set[str] = set(self.active)
        self._lock = threading.RLock()  # process / hold (the loop thread) vs the open-incident snapshot of flush
        self._flush_lock = threading.Lock()  # one flush at a time (a delivery thread and a final flush)

    def _scope_members(self, scope: Mapping[str, str] | None) -> set[str]:
        if scope is None:
            return set(self.active)
        key: ScopeKey = tuple(sorted(scope.items()))
        members = self._members.setdefault(key, set())
        if self._unscoped:
            adopted = {fp for fp in self._unscoped if _in_scope(self.active[fp], scope)}
            members |= adopted
            self._unscoped -= adopted
        return members

    def _new(self, signal: Signal, fp: str, now: datetime) -> Incident:
        return Incident(
            id=fp,
            alertname=signal.alertname,
            severity=signal.severity,
            labels=dict(signal.labels),
            summary=signal.summary,
            description=signal.description,
            runbook_url=f"{self.runbook_base}#{signal.runbook}",
            state="firing",
            starts_at=now,
            updated_at=now,
            value=signal.value,
        )

    def _emit(self, incident: Incident, *, transition: bool, resend_only: bool = False) -> None:
        if self.log is not None:
            self.log.record(incident, transition=transition)
        for queue in self.queues:
            if not resend_only or queue.sink.resend:
                queue.submit(incident)

    def process(self, now: datetime, signals: Sequence[Signal], scope: Mapping[str, str] | None = None,
                *, deliver: bool = True) -> CycleResult:
        """Apply this cycle's ``signals``; resolve open incidents in ``scope`` that were not reported.

        ``deliver=False`` only queues (the caller flushes, e.g. on a delivery thread); then
        ``delivered`` and ``pending`` stay empty (counting the outbox every call costs queries).
        """
        with self._lock:
            result = self._process(now, signals, scope)
        if deliver:
            result.delivered = self.flush(now)
            result.pending = {q.name: q.pending() for q in self.queues}
        return result

    def hold(self, now: datetime, scope: Mapping[str, str]) -> list[Incident]:
        """This cycle could not evaluate ``scope``: keep its open incidents firing, resolve none.

        Firing incidents are still re-queued every ``resend_interval`` (so Alertmanager does not let
        them expire meanwhile). Returns the open incidents of the scope. Nothing is delivered here.
        """
        with self._lock:
            members = self._scope_members(scope)
            out = []
            for fp in sorted(members):
                incident = self.active.get(fp)
                if incident is None:
                    continue
                out.append(incident)
                last = self._last_sent.get(fp)
                if last is None or now - last >= self.resend_interval:
                    self._emit(incident, transition=False, resend_only=True)
                    self._last_sent[fp] = now
            return out

    def _process(self, now: datetime, signals: Sequence[Signal], scope: Mapping[str, str] | None) -> CycleResult:
        result = CycleResult()
        members = self._scope_members(scope)
        seen: dict[str, Signal] = {}
        for signal in signals:
            seen.setdefault(signal.fingerprint(), signal)
        for fp, signal in seen.items():
            prev = self.active.get(fp)
            if prev is None:
                incident = self._new(signal, fp, now)
                self.active[fp] = incident
                if scope is None:
                    self._unscoped.add(fp)
                else:
                    members.add(fp)
                result.fired.append(incident)
                self._emit(incident, transition=True)
                self._last_sent[fp] = now
                continue
            changed = (prev.summary, prev.severity) != (signal.summary, signal.severity)
            incident = replace(prev, summary=signal.summary, description=signal.description,
                               severity=signal.severity, value=signal.value, updated_at=now)
            self.active[fp] = incident
            last = self._last_sent.get(fp)
            if changed or last is None or now - last >= self.resend_interval:
                self._emit(incident, transition=False, resend_only=not changed)
                self._last_sent[fp] = now
        for fp in [fp for fp in members if fp not in seen and fp in self.active]:
            done = self.active.pop(fp).resolve(now)
            self._last_sent.pop(fp, None)
            self._unscoped.discard(fp)
            for group in self._members.values():
                group.discard(fp)
            result.resolved.append(done)
            self._emit(done, transition=True)
        open_ids = self.active if scope is None else members
        result.active = sorted((self.active[fp] for fp in open_ids if fp in self.active),
                               key=lambda i: (i.starts_at, i.id))
        return result

    def flush(self, now: datetime, *, force: bool = False) -> dict[str, int]:
        """Try every sink's queue (respecting backoff unless ``force``); delivered counts by sink.

        A re-sending sink that comes back after failures may have restarted and
        forgotten its alerts (Alertmanager keeps none on disk): every open
        incident is sent to it again at once, rather than at the next resend.
        """
        delivered: dict[str, int] = {}
        with self._flush_lock:
            for queue in self.queues:
                delivered[queue.name] = queue.flush(now, force=force)
                if queue.recovered and queue.sink.resend:
                    queue.recovered = False
                    with self._lock:
                        snapshot = list(self.active.values())
                    for incident in snapshot:
                        queue.submit(incident)
                    if snapshot:
                        delivered[queue.name] += queue.flush(now, force=True)
        return delivered
