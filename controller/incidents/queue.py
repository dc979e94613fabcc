"""Bounded, coalescing delivery queue with backoff in front of each sink.

The engine ``submit``s every changed or re-sent incident to each sink's queue
and calls ``flush(now)`` once per cycle. The queue keeps only the latest state
of each incident (Alertmanager and Kubernetes Events want the latest state,
not every step), so its bound is the number of distinct open incidents; past
``max_items`` the oldest entries are evicted and counted (they remain in the
local log). A retryable sink failure backs off exponentially with jitter; a
permanent one drops the batch and records why. Storage is an ``Outbox``: the
SQLite incident log (durable across restarts) or ``MemoryOutbox``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from controller.errors import PermanentError, RetryableError
from controller.incidents.model import Incident
from controller.sources.retry import Backoff


class Sink(Protocol):
    """Somewhere incidents go. ``send`` raises RetryableError when it is down."""

    name: str
    resend: bool  # wants firing incidents re-sent periodically (Alertmanager does)

    def send(self, incidents: Sequence[Incident], now: datetime) -> None:
        """Deliver a batch (latest state of each incident)."""
        ...


class Outbox(Protocol):
    """Storage of queued incidents per sink, coalesced by incident id."""

    def put(self, sink: str, incident: Incident) -> None: ...
    def pending(self, sink: str, limit: int) -> list[tuple[int, Incident]]: ...
    def remove(self, sink: str, entries: Iterable[tuple[int, str]]) -> None: ...
    def size(self, sink: str) -> int: ...
    def evict_oldest(self, sink: str, keep: int) -> Sequence[str]: ...


class MemoryOutbox:
    """An in-process Outbox (lost on restart: use the SQLite log where that matters)."""

    def __init__(self) -> None:
        self._queues: dict[str, OrderedDict[str, tuple[int, Incident]]] = {}
        self._seq = 0

    def put(self, sink: str, incident: Incident) -> None:
        """Queue, replacing an older state of the same incident (moved to the back)."""
        q = self._queues.setdefault(sink, OrderedDict())
        self._seq += 1
        q.pop(incident.id, None)
        q[incident.id] = (self._seq, incident)

    def pending(self, sink: str, limit: int) -> list[tuple[int, Incident]]:
        """Oldest first."""
        return list(self._queues.get(sink, OrderedDict()).values())[:limit]

    def remove(self, sink: str, entries: Iterable[tuple[int, str]]) -> None:
        """Drop delivered entries unless a newer state was queued since."""
        q = self._queues.get(sink, OrderedDict())
        for seq, incident_id in entries:
            if incident_id in q and q[incident_id][0] == seq:
                del q[incident_id]

    def size(self, sink: str) -> int:
        """Queued entries for ``sink``."""
        return len(self._queues.get(sink, ()))

    def evict_oldest(self, sink: str, keep: int) -> Sequence[str]:
        """Trim to ``keep`` entries, oldest out first."""
        q = self._queues.get(sink, OrderedDict())
        evicted = []
        while len(q) > keep:
            evicted.append(q.popitem(last=False)[0])
        return evicted


@dataclass
class QueueStats:
    """Counters a queue exposes (status, metrics, tests)."""

    delivered: int = 0
    failures: int = 0  # consecutive retryable failures
    evicted: int = 0
    rejected: int = 0
    last_error: str | None = None


class DeliveryQueue:
    """One sink's queue: submit now, deliver when the sink is up."""

    def __init__(
        self,
        sink: Sink,
        outbox: Outbox,
        *,
        max_items: int = 1000,
        batch: int = 100,
        backoff: Backoff | None = None,
    ) -> None:
        if max_items < 1:
            raise ValueError(f"max_items: must be >= 1, got {max_items}")
        self.sink = sink
        self.outbox = outbox
        self.max_items = max_items
        self.batch = batch
        self.backoff = backoff or Backoff(base=1.0, cap=60.0, attempts=1)
        self.stats = QueueStats()
        self.next_attempt: datetime | None = None
        self.recovered = False  # set by a flush that succeeded after failures (the sink may have lost state)

    @property
    def name(self) -> str:
        """The sink's name."""
        return self.sink.name

    def submit(self, incident: Incident) -> None:
        """Queue the latest state of ``incident``; evict the oldest past the bound."""
        self.outbox.put(self.name, incident)
        if self.outbox.size(self.name) > self.max_items:
            self.stats.evicted += len(self.outbox.evict_oldest(self.name, self.max_items))

    def pending(self) -> int:
        """How many incidents wait for this sink."""
        return self.outbox.size(self.name)

    def flush(self, now: datetime, *, force: bool = False) -> int:
        """Deliver what is queued unless backing off; return how many were delivered."""
        if not force and self.next_attempt is not None and now < self.next_attempt:
            return 0
        delivered = 0
        was_failing = self.stats.failures > 0
        while True:
            entries = self.outbox.pending(self.name, self.batch)
            if not entries:
                break
            try:
                self.sink.send([i for _, i in entries], now)
            except RetryableError as exc:
                self.stats.failures += 1
                self.stats.last_error = str(exc)
                delay = self.backoff.delay(self.stats.failures)
                self.next_attempt = now + timedelta(seconds=delay)
                return delivered
            except PermanentError as exc:
                self.stats.rejected += len(entries)
                self.stats.last_error = str(exc)
            else:
                delivered += len(entries)
                self.stats.delivered += len(entries)
            self.outbox.remove(self.name, [(seq, i.id) for seq, i in entries])
        self.recovered = was_failing
        self.stats.failures = 0
        self.next_attempt = None
        return delivered
