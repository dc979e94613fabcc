"""Per-policy simulation metrics, computed vectorised over the test window.

* unserved_fraction: demand not served / total demand (gaps excluded);
* underprovisioned_steps: steps whose ready capacity was below demand;
* replica_hours: replicas that existed (ready or still warming: both cost) x hours, over the
  steps whose demand is known: at a gap no policy can tell what was needed (the oracle would be
  handed a zero there and ask for minReplicas, while a policy that sees no metrics rightly holds),
  so a gap counts neither way, as for unserved;
* peak_replicas, scale_changes: the largest replica count and how often it changed;
* cost_vs_oracle: replica_hours / the oracle's (filled in by the engine).

Called by the simulator engine; rendered by the CLI and the benchmark.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

import numpy as np


@dataclass
class PolicyMetrics:
    """The numbers ``pitboss simulate --json`` reports for one policy."""

    unserved_fraction: float
    underprovisioned_steps: int
    replica_hours: float
    peak_replicas: int
    scale_changes: int
    cost_vs_oracle: float | None = None

    def as_dict(self) -> dict[str, float | int | None]:
        return {
            "unserved_fraction": self.unserved_fraction,
            "underprovisioned_steps": self.underprovisioned_steps,
            "replica_hours": self.replica_hours,
            "peak_replicas": self.peak_replicas,
            "scale_changes": self.scale_changes,
            "cost_vs_oracle": self.cost_vs_oracle,
        }


def compute_metrics(
    demand: np.ndarray,
    asked: np.ndarray,
    ready: np.ndarray,
    capacity_per_replica: float,
    step: timedelta,
) -> PolicyMetrics:
    """Metrics of one trajectory; ``demand`` may hold NaN gaps (not counted either way)."""
    if not (len(demand) == len(asked) == len(ready)):
        raise ValueError(f"asked: expected {len(demand)} steps, got {len(asked)} asked and {len(ready)} ready")
    known = ~np.isnan(demand)
    d = np.where(known, demand, 0.0)
    capacity = ready.astype(float) * capacity_per_replica
    short = np.maximum(d - capacity, 0.0)
    total = float(d.sum())
    unserved = float(short.sum()) / total if total > 0 else 0.0
    changes = int(np.count_nonzero(np.diff(asked))) if len(asked) > 1 else 0
    return PolicyMetrics(
        unserved_fraction=unserved,
        underprovisioned_steps=int(np.count_nonzero(short > 1e-9 * max(capacity_per_replica, 1.0))),
        replica_hours=float(asked[known].sum()) * step.total_seconds() / 3600.0,
        peak_replicas=int(asked.max()) if len(asked) else 0,
        scale_changes=changes,
    )
