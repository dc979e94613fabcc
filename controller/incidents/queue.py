"""Bounded, coalescing in-memory queue in front of each sink that wants every transition once.

Kubernetes Events get one Warning when an incident fires and one Normal when it
resolves: the engine ``submit``s each transition and ``flush(now)`` delivers
them. The queue keeps only the latest state of each incident, so its bound is
the number of distinct open incidents; past ``max_items`` the oldest entries
are evicted and counted (they remain in the local log). A retryable failure
backs off exponentially with jitter; a permanent one is bisected
(``controller.incidents.delivery.deliver``): only the refused incidents are
dropped. The queue lives in memory (``MemoryOutbox``): a new leader writes
the Events of its own term, there is no durable outbox to lose or to replay
stale states from. Sinks that want re-sends (Alertmanager) do not queue at
all: ``controller.incidents.delivery.ResendDelivery``.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from controller.errors import RetryableError
from controller.incidents.delivery import QueueStats, Sink, deliver
from controller.incidents.model import Incident
from controller.sources.retry import Backoff

__all__ = ["DeliveryQueue", "MemoryOutbox", "Outbox", "QueueStats", "Sink"]


class Outbox(Protocol):
    """Storage of queued incidents per sink, coalesced by incident id."""

    def put(self, sink: str, incident: Incident) -> None: ...
    def pending(self, sink: str, limit: int) -> list[tuple[int, Incident]]: ...
    def remove(self, sink: str, entries: Iterable[tuple[int, str]]) -> None: ...
    def size(self, sink: str) -> int: ...
    def evict_oldest(self, sink: str, keep: int) -> Sequence[str]: ...
    def clear(self, sink: str) -> None: ...


class MemoryOutbox:
    """An in-process Outbox."""

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

    def clear(self, sink: str) -> None:
        """Drop everything queued for ``sink``."""
        self._queues.pop(sink, None)


class DeliveryQueue:
    """One sink's queue: submit now, deliver when the sink is up."""

    def __init__(
        self,
        sink: Sink,
        outbox: Outbox | None = None,
        *,
        max_items: int = 1000,
        batch: int = 100,
        backoff: Backoff | None = None,
    ) -> None:
        if max_items < 1:
            raise ValueError(f"max_items: must be >= 1, got {max_items}")
        self.sink = sink
        self.outbox = outbox if outbox is not None else MemoryOutbox()
        self.max_items = max_items
        self.batch = batch
        self.backoff = backoff or Backoff(base=1.0, cap=60.0, attempts=1)
        self.stats = QueueStats()
        self.next_attempt: datetime | None = None

    @property
    def name(self) -> str:
        """The sink's name."""
        return self.sink.name

    def submit(self, incident: Incident) -> None:
        """Queue the latest state of ``incident``; evict the oldest past the bound."""
        self.outbox.put(self.name, incident)
        if self.outbox.size(self.name) > self.max_items:
            self.stats.evicted += len(self.outbox.evict_oldest(self.name, self.max_items))

    def reset(self) -> None:
        """A new term: drop what earlier terms left undelivered."""
        self.outbox.clear(self.name)
        self.next_attempt = None
        self.stats.failures = 0

    def pending(self) -> int:
        """How many incidents wait for this sink."""
        return self.outbox.size(self.name)

    def flush(self, now: datetime, *, force: bool = False) -> int:
        """Deliver what is queued unless backing off; return how many were delivered."""
        if not force and self.next_attempt is not None and now < self.next_attempt:
            return 0
        delivered = 0
        while True:
            entries = self.outbox.pending(self.name, self.batch)
            if not entries:
                break
            try:
                ok, bad = deliver(self.sink.send, [i for _, i in entries], now)
            except RetryableError as exc:
                self.stats.failures += 1
                self.stats.last_error = str(exc)
                self.next_attempt = now + timedelta(seconds=self.backoff.delay(self.stats.failures))
                return delivered
            for incident, why in bad:
                self.stats.rejected += 1
                self.stats.last_error = f"{incident.alertname} {incident.id}: {why}"
                self.stats.rejected_ids.append(incident.id)
            delivered += len(ok)
            self.stats.delivered += len(ok)
            self.outbox.remove(self.name, [(seq, i.id) for seq, i in entries])
        self.stats.failures = 0
        self.next_attempt = None
        return delivered
