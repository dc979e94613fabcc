"""What a reconcile cycle did: per-policy outcomes and where the time went.

Filled by ``controller.operator.reconcile.Reconciler`` (re-exported there);
``Timings`` adds to it from any thread; read by the loop's log line, ``pitboss operator run --once``, the tests and
``benchmarks/bench_operator.py``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field


@dataclass
class PolicyOutcome:
    """What one policy's reconcile did (for logs, tests and the benchmark)."""

    namespace: str
    name: str
    reason: str
    message: str
    current: int | None = None
    desired: int | None = None
    scaled: bool = False
    error: str | None = None


@dataclass
class CycleReport:
    """One cycle: outcomes plus where the time went."""

    outcomes: list[PolicyOutcome] = field(default_factory=list)
    seconds: float = 0.0
    api_seconds: float = 0.0  # inside Kubernetes adapters (client + HTTP + server)
    source_seconds: float = 0.0  # inside demand sources
    fits: int = 0  # full forecast fits this cycle
    updates: int = 0  # incremental forecast updates (model.update) this cycle
    deferred_fits: int = 0  # fits put off to a later cycle: this cycle's fit budget was spent
    status_writes: int = 0  # /status PATCHes sent
    status_skipped: int = 0  # /status changes held back: only volatile fields changed (--status-max-age)
    incident_seconds: float = 0.0  # rules + incident engine + local log (part of the Pitboss share)
    # --write-concurrency > 1: the policies' writes run on a pool (controller.operator.writes); api_seconds then
    # sums the calls of every thread, so Pitboss's share is the threads' busy time less the API's and sources'.
    worker_seconds: float = 0.0  # the write pool's threads busy with the policies' writes
    wait_seconds: float = 0.0  # the cycle's thread waiting for the pool (a free slot, the end of the writes)

    @property
    def pitboss_seconds(self) -> float:
        busy = self.seconds - self.wait_seconds + self.worker_seconds
        return max(0.0, busy - self.api_seconds - self.source_seconds)


class Timings:
    """Adds a cycle's timings and counts to the current ``report`` from any thread (the write pool's too)."""

    def __init__(self) -> None:
        self.report = CycleReport()
        self._lock = threading.Lock()

    def add(self, **amounts: float) -> None:
        """Add to the report's fields (``api_seconds=0.01``, ``fits=1``, ...)."""
        with self._lock:
            for name, amount in amounts.items():
                setattr(self.report, name, getattr(self.report, name) + amount)

    @contextmanager
    def timed(self, name: str) -> Iterator[None]:
        """Add the block's wall time to the report's ``name`` field."""
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.add(**{name: time.perf_counter() - t0})

    def api(self) -> AbstractContextManager[None]:
        """Time a block inside the Kubernetes adapters."""
        return self.timed("api_seconds")

    def source(self) -> AbstractContextManager[None]:
        """Time a block inside a demand source."""
        return self.timed("source_seconds")
