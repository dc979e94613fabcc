"""Money in the simulator: the costs of ``--cost-unserved`` / ``--cost-replica-hour`` and each run's bill.

``SimCosts`` is what the user says (money per unserved demand unit, per
replica-hour). The simulator's capacity is per *step* while the decision
core reads ``capacityPerReplica`` as a per-second rate, so ``policy_costs``
rescales the unserved cost for the core (money per unit per second of one
step) so that its newsvendor ratio c_u / (c_u + c_o) is the simulated one.
``bill`` prices a run: unserved units times the unserved cost plus
replica-hours times the replica-hour cost. ``for_quantile`` gives the costs
whose ratio is a given quantile (the frontier sweeps use it to reach any
quantile through the newsvendor rule). Called by ``controller.simulate.predictive``,
the CLI and the benchmarks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import numpy as np


@dataclass(frozen=True)
class SimCosts:
    """Money per unserved demand unit and per replica-hour (one currency)."""

    unserved: float
    replica_hour: float

    def __post_init__(self) -> None:
        for flag, value in (("cost-unserved", self.unserved), ("cost-replica-hour", self.replica_hour)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{flag}: expected a positive number, got {value!r}")

    def policy_costs(self, step: timedelta) -> dict[str, float]:
        """``Policy.costs`` for a simulator whose capacity is demand per ``step``."""
        return {"unserved_request": self.unserved / step.total_seconds(), "replica_hour": self.replica_hour}

    def ratio(self, capacity_per_step: float, step: timedelta) -> float:
        """The newsvendor critical ratio these costs give (independent of the lead time)."""
        under = self.unserved * capacity_per_step / step.total_seconds()
        return under / (under + self.replica_hour / 3600.0)

    @classmethod
    def for_quantile(cls, q: float, capacity_per_step: float, step: timedelta, replica_hour: float = 1.0) -> SimCosts:
        """Costs whose critical ratio is exactly ``q`` (0 < q < 1)."""
        if not 0 < q < 1:
            raise ValueError(f"quantile: expected a number in (0, 1), got {q}")
        unserved = q / (1 - q) * replica_hour * step.total_seconds() / (3600.0 * capacity_per_step)
        return cls(unserved=unserved, replica_hour=replica_hour)

    def bill(self, demand: np.ndarray, ready: np.ndarray, asked: np.ndarray, capacity: float,
             step: timedelta) -> tuple[float, float]:
        """(cost of the unserved demand, cost of the replica-hours) of one run (gaps cost nothing)."""
        d = np.nan_to_num(np.asarray(demand, dtype=float), nan=0.0)
        short = np.maximum(d - np.asarray(ready, dtype=float) * capacity, 0.0)
        hours = float(np.asarray(asked).sum()) * step.total_seconds() / 3600.0
        return float(short.sum()) * self.unserved, hours * self.replica_hour
