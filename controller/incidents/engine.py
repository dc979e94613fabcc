"""The incident engine: signals in, deduplicated incidents with a lifecycle out.

Called once per cycle per policy by the reconcile loop and the local run
(``process(now, signals, scope)``). A signal's fingerprint (alertname plus
identity labels) is the incident id: the same finding on the next cycle
updates the open incident instead of opening another; an open incident of the
same scope that no rule reports any more is resolved. Every transition is
written to the local log (when there is one: what ``pitboss incidents list``
reads) and handed to the sinks:

* sinks that want re-sends (Alertmanager) get Prometheus' treatment
  (``controller.incidents.delivery.ResendDelivery``): every firing incident
  evaluated in this term, each ``resend_interval``, and every incident
  resolved in this term with its real end, for ``resolved_retention``;
  nothing is queued, so nothing stale can be replayed;
* the others (Kubernetes Events) get each transition once, from an in-memory
  queue (``controller.incidents.queue.DeliveryQueue``).

A *term* is one stretch of leadership (``begin_term``): a new leader sends only
what its own evaluation found. Incidents it inherits (reloaded from its log, or
left from an earlier term) stay open but unsent until their scope is evaluated
again; then they update or resolve. A scope another instance watches now (its
policy's shard moved) is handed off (``hand_off``): dropped without a resolve,
marked ``handed_off`` in the local log, so the new owner's re-sends carry the
alert on; the new owner *adopts* what the old one announced (``adopt``: open
here without a transition, so no sink hears of it twice) and its first
evaluation updates or resolves it. The operator evaluates on its loop thread
(``process(..., deliver=False)``) and delivers on a thread of its own
(``flush``): ``process``/``hold`` share one lock, concurrent ``flush`` calls
are serialized by another.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Protocol

from controller.incidents.delivery import QueueStats, ResendDelivery, Sink
from controller.incidents.model import Incident, Signal
from controller.incidents.queue import DeliveryQueue, MemoryOutbox, Outbox
from controller.incidents.store import IncidentLog
from controller.sources.retry import Backoff

DEFAULT_RUNBOOK_BASE = "docs/runbooks.md"


class Delivery(Protocol):
    """One sink's delivery: a transition queue or a re-sending delivery."""

    sink: Sink
    stats: QueueStats

    @property
    def name(self) -> str: ...
    def submit(self, incident: Incident) -> None: ...
    def reset(self) -> None: ...
    def pending(self) -> int: ...
    def flush(self, now: datetime, *, force: bool = False) -> int: ...


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
    """Deduplicates signals into incidents, tracks firing -> resolved, feeds the sinks."""

    def __init__(
        self,
        sinks: Sequence[Sink] = (),
        *,
        log: IncidentLog | None = None,
        outbox: Outbox | None = None,
        resend_interval: timedelta = timedelta(minutes=1),
        resolved_retention: timedelta = timedelta(minutes=15),
        runbook_base: str = DEFAULT_RUNBOOK_BASE,
        max_queue: int = 1000,
        backoff: Backoff | None = None,
    ) -> None:
        self.log = log
        self.resend_interval = resend_interval
        self.resolved_retention = resolved_retention
        self.runbook_base = runbook_base
        store: Outbox = outbox or MemoryOutbox()
        self.queues: list[Delivery] = [
            ResendDelivery(s, self._resend_state, resend_interval=resend_interval, backoff=backoff) if s.resend
            else DeliveryQueue(s, store, max_items=max_queue, backoff=backoff)
            for s in sinks
        ]
        self.active: dict[str, Incident] = {i.id: i for i in log.active()} if log else {}
        self.resolved: dict[str, Incident] = {}  # resolved in this term, re-sent until resolved_retention
        self._term: set[str] = set()  # open incidents evaluated (reported) in this term
        # An incident belongs to the scope it was raised in; incidents reloaded from the log
        # join a scope the first time a matching scope is processed.
        self._members: dict[ScopeKey, set[str]] = {}
        self._unscoped: set[str] = set(self.active)
        self._adopted: set[str] = set()  # announced elsewhere, not yet evaluated here (``adopt``)
        self._lock = threading.RLock()  # process / hold (the loop thread) vs the state snapshot of flush
        self._flush_lock = threading.Lock()  # one flush at a time (a delivery thread and a final flush)

    # ---- terms --------------------------------------------------------------------------------
    def begin_term(self) -> None:
        """Leadership (re)starts: deliver nothing from earlier terms; open incidents wait for evaluation.

        Not under the flush lock: a flush stuck in a hanging sink must not hold up the caller (the
        loop's lease renewer). A flush already in flight may still finish its send.
        """
        with self._lock:
            self._term.clear()
            self.resolved.clear()
            for queue in self.queues:
                queue.reset()

    def _resend_state(self, now: datetime) -> list[Incident]:
        """What a re-sending sink must hold now: this term's firing incidents and its recent resolves."""
        with self._lock:
            self._prune_resolved(now)
            firing = [self.active[fp] for fp in sorted(self._term) if fp in self.active]
            return firing + sorted(self.resolved.values(), key=lambda i: (i.updated_at, i.id))

    # ---- evaluation ---------------------------------------------------------------------------
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

    def _emit(self, incident: Incident, *, transition: bool) -> None:
        """Log it, and tell every sink it changed."""
        if self.log is not None:
            self.log.record(incident, transition=transition)
        for queue in self.queues:
            queue.submit(incident)

    def process(self, now: datetime, signals: Sequence[Signal], scope: Mapping[str, str] | None = None,
                *, deliver: bool = True) -> CycleResult:
        """Apply this cycle's ``signals``; resolve open incidents in ``scope`` that were not reported.

        ``deliver=False`` only records (the caller flushes, e.g. on a delivery thread); then
        ``delivered`` and ``pending`` stay empty.
        """
        with self._lock:
            result = self._process(now, signals, scope)
        if deliver:
            result.delivered = self.flush(now)
            result.pending = {q.name: q.pending() for q in self.queues}
        return result

    def hold(self, now: datetime, scope: Mapping[str, str]) -> list[Incident]:
        """This cycle could not evaluate ``scope``: keep its open incidents firing, resolve none.

        Those evaluated earlier in this term are still re-sent (so Alertmanager does not let them
        expire meanwhile). Returns the open incidents of the scope. Nothing is delivered here.
        """
        with self._lock:
            members = self._scope_members(scope)
            return [self.active[fp] for fp in sorted(members) if fp in self.active]

    def adopt(self, incidents: Iterable[Incident]) -> list[Incident]:
        """Open incidents another instance already announced (its policy's shard moved here): no transition.

        They open here without reaching any sink or the log, join their scope when it is processed,
        and the first evaluation of that scope decides: a signal with the same fingerprint takes it
        over silently (its labels and text from the signal, ``starts_at`` kept, logged as firing,
        re-sent from then on), no signal resolves it (the Resolved Event and resolve are sent: the
        announcement was real). Incidents open here already are left alone. Returns those adopted.
        """
        with self._lock:
            taken = [i for i in incidents if i.firing and i.id not in self.active]
            for incident in taken:
                self.active[incident.id] = incident
                self._unscoped.add(incident.id)
                self._adopted.add(incident.id)
            return taken

    def open_in(self, scope: Mapping[str, str]) -> list[Incident]:
        """The open incidents of ``scope`` (by id): what a policy's status lists for its next owner to adopt."""
        with self._lock:
            return [self.active[fp] for fp in sorted(self._scope_members(scope)) if fp in self.active
                    and self.active[fp].firing]

    def hand_off(self, now: datetime, scope: Mapping[str, str]) -> list[Incident]:
        """Another instance watches ``scope`` now: drop its incidents silently (no sink hears of it).

        Its open incidents leave this engine without a resolve (the new owner re-sends them: one
        continuous alert) and are marked ``handed_off`` in the local log, so a restart does not
        reload them. This term's resolves in the scope stop being re-sent: after the new owner
        re-raises one, an old resolve replayed from here would end a live alert. Returns the
        incidents handed off.
        """
        with self._lock:
            members = self._scope_members(scope)
            gone = [self.active.pop(fp) for fp in sorted(members) if fp in self.active]
            for fp in list(members):
                self._term.discard(fp)
                self._unscoped.discard(fp)
                self._adopted.discard(fp)
                for group in self._members.values():
                    group.discard(fp)
            for fp in [fp for fp, i in self.resolved.items() if _in_scope(i, scope)]:
                del self.resolved[fp]
            handed = [incident.hand_off(now) for incident in gone]
            if self.log is not None:
                for incident in handed:
                    self.log.record(incident, transition=True)
            return handed

    def _process(self, now: datetime, signals: Sequence[Signal], scope: Mapping[str, str] | None) -> CycleResult:
        result = CycleResult()
        members = self._scope_members(scope)
        seen: dict[str, Signal] = {}
        for signal in signals:
            seen.setdefault(signal.fingerprint(), signal)
        for fp, signal in seen.items():
            prev = self.active.get(fp)
            self.resolved.pop(fp, None)
            if prev is None:
                incident = self._new(signal, fp, now)
                self.active[fp] = incident
                if scope is None:
                    self._unscoped.add(fp)
                else:
                    members.add(fp)
                self._term.add(fp)
                result.fired.append(incident)
                self._emit(incident, transition=True)
                continue
            if fp in self._adopted:  # announced by its former owner: take it over without telling anyone again
                self._adopted.discard(fp)
                incident = replace(self._new(signal, fp, now), starts_at=prev.starts_at)
                self.active[fp] = incident
                self._term.add(fp)
                if self.log is not None:
                    self.log.record(incident, transition=True)
                continue
            changed = (prev.summary, prev.severity) != (signal.summary, signal.severity)
            incident = replace(prev, summary=signal.summary, description=signal.description,
                               severity=signal.severity, value=signal.value, updated_at=now)
            self.active[fp] = incident
            self._term.add(fp)  # inherited ones join this term: a re-sending sink gets them at the next flush
            if changed:
                self._emit(incident, transition=False)
        for fp in [fp for fp in members if fp not in seen and fp in self.active]:
            done = self.active.pop(fp).resolve(now)
            self._term.discard(fp)
            self._unscoped.discard(fp)
            self._adopted.discard(fp)
            for group in self._members.values():
                group.discard(fp)
            self.resolved[fp] = done
            result.resolved.append(done)
            self._emit(done, transition=True)
        self._prune_resolved(now)
        open_ids = self.active if scope is None else members
        result.active = sorted((self.active[fp] for fp in open_ids if fp in self.active),
                               key=lambda i: (i.starts_at, i.id))
        return result

    def _prune_resolved(self, now: datetime) -> None:
        cutoff = now - self.resolved_retention
        for fp in [fp for fp, i in self.resolved.items() if i.ends_at is not None and i.ends_at < cutoff]:
            del self.resolved[fp]

    # ---- delivery -----------------------------------------------------------------------------
    def flush(self, now: datetime, *, force: bool = False) -> dict[str, int]:
        """Try every sink (respecting backoff unless ``force``); delivered counts by sink."""
        with self._flush_lock:
            return {queue.name: queue.flush(now, force=force) for queue in self.queues}
