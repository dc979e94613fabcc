"""A policy's database read replicas in the cycle: the lag reading, what ``decide`` observes, what is remembered.

A policy may size its database's read replicas from the same forecast (the
operator's ``databaseReplicas``): a second scale target whose count includes
``primary_instances`` that are never read replicas (a CloudNativePG Cluster's
primary). The cycle reads it beside the app target (``observe``), decides
both in one ``decide`` and writes the database after the app (``act``).

* ``read_lags``: the lag port's answer as a ``LagReading`` that says
  explicitly when lag is unknown (a failed query) or not measured at all;
* ``state_fields``: the ``ObservedState`` fields of the database from its
  scale, the lag and the ``DatabaseMemory`` (recommendations for the
  stabilization window, a new policy starting from the replicas it found as
  the HPA does, recent scale-ups by anyone whose replicas may still be
  catching up);
* ``apply``: the memory's changes after the cycle acted.

The decision itself is ``controller.core.database``. Called by
``controller.cycle.run`` and, over status dicts, ``controller.operator.database``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controller.core.decision import Decision, ReplicaLag
from controller.core.policy import DatabaseReplicas
from controller.cycle.memory import DatabaseMemory
from controller.cycle.ports import LagSource
from controller.errors import PitbossError
from controller.targets.base import ScaleState, TargetKey


@dataclass(frozen=True)
class LagReading:
    """The lag series of one cycle; ``measured`` False: no lag query (the guard is off by choice)."""

    series: tuple[ReplicaLag, ...] = ()
    measured: bool = True
    error: str | None = None


@dataclass(frozen=True)
class DatabaseTarget:
    """The database's port: its /scale, its primaries, its lag (``missing``: why there is no lag port)."""

    key: TargetKey
    primary_instances: int = 0
    lags: LagSource | None = None
    missing: str | None = None  # set: lag is meant to be measured but cannot be (unknown, not unmeasured)


def read_lags(target: DatabaseTarget, now: datetime) -> LagReading:
    """Read the lag; a failed query is an explicit unknown, never an empty 'nothing lags'."""
    if target.lags is None:
        return LagReading(measured=False) if target.missing is None else LagReading(error=target.missing)
    try:
        return LagReading(tuple(target.lags.lags(now)))
    except (PitbossError, OSError, TimeoutError) as exc:
        return LagReading(error=str(exc) or type(exc).__name__)


def replicas(primary_instances: int, count: int) -> int:
    """Read replicas in a /scale count (the target's instances minus the primaries)."""
    return max(0, count - primary_instances)


def state_fields(spec: DatabaseReplicas, primary_instances: int, scale: ScaleState, lag: LagReading,
                 memory: DatabaseMemory, now: datetime) -> dict[str, Any]:
    """The ObservedState fields of the database read replicas."""
    current = replicas(primary_instances, scale.replicas)
    ups = tuple((at, n) for at, n in memory.scale_ups if now - spec.lead_time < at <= now)
    if memory.current is not None and current > memory.current:  # added since by someone else: catching up too
        ups = (*ups, (now, current - memory.current))
    if memory.recommendations.runs:
        seen = memory.recommendations.view(now, spec.scale_down.stabilization_window)
    else:  # first sight: start from what is there, so a new policy or operator never drops replicas at once
        seen = ((now, current),)
    return {
        "database_replicas": lag.series,
        "database_current_replicas": current,
        "database_ready_replicas": replicas(primary_instances, scale.ready_replicas),
        "database_lag_measured": lag.measured,
        "database_lag_error": lag.error,
        "database_recommendations": seen,
        "database_scale_ups": ups,
    }


def apply(memory: DatabaseMemory, spec: DatabaseReplicas, decision: Decision, found: int, after: int,
          now: datetime) -> None:
    """This cycle's changes: ``found`` is the count the decision saw (fresh after a 409), ``after`` the count after
    the write. Whoever added replicas since the last cycle (this loop or a person), they are remembered as a
    scale-up: they may be catching up."""
    window = spec.scale_down.stabilization_window
    if not memory.recommendations.runs:
        memory.recommendations.add(found, now)  # the first-sight entry (see state_fields)
    memory.recommendations.add(decision.database_recommended_replicas, now)
    memory.recommendations.forget_before(now, window)
    base = memory.current if memory.current is not None else found
    ups = list(memory.scale_ups)
    if after > base:
        ups.append((now, after - base))
    memory.scale_ups = [(at, n) for at, n in ups if now - spec.lead_time < at]
    memory.current = after


__all__ = ["DatabaseTarget", "LagReading", "apply", "read_lags", "replicas", "state_fields"]
