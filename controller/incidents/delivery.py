"""Delivery to sinks that want the whole firing state re-sent (Alertmanager), Prometheus-style.

No outbox: like Prometheus' rule manager, the leader re-sends every firing
incident each ``resend_interval`` with an ``endsAt`` a few intervals ahead
(the sink's ttl), and every incident resolved in this term with its real
end, for ``resolved_retention``; Alertmanager deduplicates by label set. A
send that fails is not stored anywhere: the next flush sends the state of
that moment (after a failure, everything at once: the receiver may have
restarted and forgotten). So a restart or a new leader loses nothing: it
rebuilds the firing state from its own rule evaluation, and what the old
leader sent stays valid in Alertmanager until its ``endsAt``.

``deliver`` is shared with the transition queues (``controller.incidents.queue``):
a permanent error for a batch (e.g. a 400 for one bad label set) is bisected
so only the offending incidents are rejected and the others still go out.
Called by ``IncidentEngine.flush``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from controller.errors import PermanentError, RetryableError
from controller.incidents.model import Incident
from controller.sources.retry import Backoff


class Sink(Protocol):
    """Somewhere incidents go. ``send`` raises RetryableError when it is down, PermanentError when it refuses."""

    name: str
    resend: bool  # wants the firing state re-sent periodically (Alertmanager does)

    def send(self, incidents: Sequence[Incident], now: datetime) -> None:
        """Deliver a batch (latest state of each incident)."""
        ...


class Rejected(PermanentError):
    """A sink delivered a batch except ``ids`` (it knows which: no bisection needed)."""

    def __init__(self, message: str, ids: Sequence[str]) -> None:
        super().__init__(message)
        self.ids = list(ids)


@dataclass
class QueueStats:
    """Counters a delivery exposes (status, metrics, tests)."""

    delivered: int = 0
    failures: int = 0  # consecutive retryable failures
    evicted: int = 0
    rejected: int = 0
    last_error: str | None = None
    rejected_ids: list[str] = field(default_factory=list)  # the last permanent rejections


def deliver(send: Callable[[Sequence[Incident], datetime], None], batch: Sequence[Incident],
            now: datetime) -> tuple[list[Incident], list[tuple[Incident, str]]]:
    """Send ``batch``; on a permanent error bisect it. Returns (delivered, [(rejected, why)]).

    A RetryableError propagates (what was delivered before it may be sent again: receivers dedup).
    """
    if not batch:
        return [], []
    try:
        send(batch, now)
    except Rejected as exc:
        bad = set(exc.ids)
        return [i for i in batch if i.id not in bad], [(i, str(exc)) for i in batch if i.id in bad]
    except PermanentError as exc:
        if len(batch) == 1:
            return [], [(batch[0], str(exc))]
        mid = len(batch) // 2
        ok1, bad1 = deliver(send, batch[:mid], now)
        ok2, bad2 = deliver(send, batch[mid:], now)
        return ok1 + ok2, bad1 + bad2
    return list(batch), []


class ResendDelivery:
    """The re-sending delivery of one sink: state in, no queue."""

    def __init__(
        self,
        sink: Sink,
        state: Callable[[datetime], list[Incident]],
        *,
        resend_interval: timedelta,
        batch: int = 100,
        backoff: Backoff | None = None,
    ) -> None:
        self.sink = sink
        self.state = state  # what to send now: firing incidents and recently resolved ones
        self.resend_interval = resend_interval
        self.batch = batch
        self.backoff = backoff or Backoff(base=1.0, cap=60.0, attempts=1)
        self.stats = QueueStats()
        self.next_attempt: datetime | None = None
        self._sent: dict[str, datetime] = {}  # id -> last successful send
        self._dirty: dict[str, int] = {}  # id -> change number, for those changed since their last send
        self._changes = 0
        self._lock = threading.Lock()  # submit (the loop thread) vs flush (the delivery thread)
        self._rejected: set[str] = set()  # permanently refused, not retried until they change
        self._all = False  # send everything next time (after a failure)

    @property
    def name(self) -> str:
        """The sink's name."""
        return self.sink.name

    def submit(self, incident: Incident) -> None:
        """``incident`` changed (fired, changed severity or summary, resolved): send it at the next flush."""
        with self._lock:
            self._changes += 1
            self._dirty[incident.id] = self._changes
            self._rejected.discard(incident.id)

    def reset(self) -> None:
        """A new term: forget what was sent and what failed (the next flush sends the term's state)."""
        with self._lock:
            self._sent.clear()
            self._dirty.clear()
            self._rejected.clear()
        self._all = False
        self.next_attempt = None
        self.stats.failures = 0

    def pending(self) -> int:
        """Incidents changed since they were last delivered."""
        with self._lock:
            return len(set(self._dirty) - self._rejected)

    def due(self, now: datetime) -> list[tuple[Incident, int]]:
        """(incident, change number) the next flush sends: changed, or not sent for a resend interval.

        Everything after a failure (the receiver may have restarted and forgotten).
        """
        state = self.state(now)
        out = []
        with self._lock:
            dirty = dict(self._dirty)
        for incident in state:
            if incident.id in self._rejected:
                continue
            last = self._sent.get(incident.id)
            if self._all or incident.id in dirty or last is None or now - last >= self.resend_interval:
                out.append((incident, dirty.get(incident.id, 0)))
        return out

    def _clean(self, incident_id: str, change: int) -> None:
        """Delivered (or refused) as of ``change``: clean unless it changed again since."""
        if self._dirty.get(incident_id) == change:
            del self._dirty[incident_id]

    def flush(self, now: datetime, *, force: bool = False) -> int:
        """Send what is due unless backing off; return how many were delivered."""
        if not force and self.next_attempt is not None and now < self.next_attempt:
            return 0
        due = self.due(now)
        change = {incident.id: n for incident, n in due}
        batch = [incident for incident, _ in due]
        send = self.sink.send
        delivered = 0
        try:
            for start in range(0, len(batch), self.batch):
                ok, bad = deliver(send, batch[start:start + self.batch], now)
                with self._lock:
                    for incident in ok:
                        self._sent[incident.id] = now
                        self._clean(incident.id, change[incident.id])
                    for incident, _ in bad:
                        self._rejected.add(incident.id)
                        self._clean(incident.id, change[incident.id])
                for incident, why in bad:
                    self.stats.rejected += 1
                    self.stats.last_error = f"{incident.alertname} {incident.id}: {why}"
                    self.stats.rejected_ids.append(incident.id)
                delivered += len(ok)
        except RetryableError as exc:
            self.stats.failures += 1
            self.stats.last_error = str(exc)
            self.next_attempt = now + timedelta(seconds=self.backoff.delay(self.stats.failures))
            self._all = True
            self.stats.delivered += delivered
            return delivered
        live = {i.id for i in self.state(now)}
        with self._lock:
            for gone in [k for k in self._sent if k not in live]:
                del self._sent[gone]
            for gone in [k for k in self._dirty if k not in live]:  # e.g. a resolve past its retention
                del self._dirty[gone]
            self._rejected &= live
        self.stats.delivered += delivered
        self.stats.failures = 0
        self.next_attempt = None
        self._all = False
        return delivered
