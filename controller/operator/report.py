"""What a reconcile cycle did: per-policy outcomes and where the time went.

Filled by ``controller.operator.reconcile.Reconciler`` (re-exported there);
read by the loop's log line, ``pitboss operator run --once``, the tests and
``benchmarks/bench_operator.py``.
"""

from __future__ import annotations

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
    incident_seconds: float = 0.0  # rules + incident engine + local log (part of the Pitboss share)

    @property
    def pitboss_seconds(self) -> float:
        return max(0.0, self.seconds - self.api_seconds - self.source_seconds)
