"""The database read replicas in the loop: what is observed of them, what status remembers, their condition.

Called by ``controller.operator.reconcile`` for a policy with a
``databaseReplicas`` block. ``read_lags`` turns the lag source's answer into
a ``LagReading`` that says explicitly when lag is unknown (a failed query)
or not measured at all (no lagQuery). ``observed_fields`` are the
ObservedState fields of the database: replicas asked for and ready (without
``primaryInstances``, e.g. a CloudNativePG Cluster's primary), the lag
series, and the memory the pure rule needs from status (recommendations for
the stabilization window, recent scale-ups whose replicas may still be
catching up). ``record`` writes that memory back and sets the
``DatabaseMetricsAvailable`` condition. The decision itself is
``controller.core.database``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from controller.core.decision import Decision, ReplicaLag
from controller.errors import PermanentError, RetryableError
from controller.operator import status as st
from controller.operator.resources import DatabaseReplicasSpec
from controller.targets.base import ScaleState

log = logging.getLogger(__name__)

CONDITION = "DatabaseMetricsAvailable"
RECOMMENDATIONS = "databaseRecommendations"
SCALE_UPS = "databaseScaleUps"


class LagSource(Protocol):
    """Replication lag of each database read replica (None: unknown); raises when the query fails."""

    def lags(self, now: datetime) -> tuple[ReplicaLag, ...]: ...


@dataclass(frozen=True)
class LagReading:
    """The lag series of one cycle; ``measured`` False: no lag query (the guard is off by choice)."""

    series: tuple[ReplicaLag, ...] = ()
    measured: bool = True
    error: str | None = None


def read_lags(source: LagSource | None, spec: DatabaseReplicasSpec, now: datetime) -> LagReading:
    """Read the lag; a failed query is an explicit unknown, never an empty 'nothing lags'."""
    if source is None:
        if spec.lag_query is None:
            return LagReading(measured=False)
        return LagReading(error="databaseReplicas.lagQuery needs the operator's --prometheus-url")
    try:
        return LagReading(tuple(source.lags(now)))
    except (RetryableError, PermanentError, OSError, TimeoutError) as exc:
        return LagReading(error=str(exc) or type(exc).__name__)


def replicas(spec: DatabaseReplicasSpec, count: int) -> int:
    """Read replicas in a /scale count (the target's instances minus ``primaryInstances``)."""
    return max(0, count - spec.primary_instances)


def _history(old: dict[str, Any] | None, key: str, now: datetime, window: timedelta) -> tuple[tuple[datetime, int],
                                                                                                ...]:
    items = []
    for item in (old or {}).get(key) or []:
        at = st.parse_time(item.get("time")) if isinstance(item, dict) else None
        if at is not None and isinstance(item.get("replicas"), int) and now - window < at <= now:
            items.append((at, int(item["replicas"])))
    return tuple(sorted(items))


def _recommendations(spec: DatabaseReplicasSpec, old: dict[str, Any] | None, current: int,
                     now: datetime) -> tuple[tuple[datetime, int], ...]:
    """The stabilization window's history; a policy that has none yet starts with the replicas it found
    (as the HPA does on first sight), so a new policy or operator never drops read replicas at once."""
    if not (old or {}).get(RECOMMENDATIONS):
        return ((now, current),)
    return st.window_recommendations(old, now, spec.scale_down.stabilization_window, field=RECOMMENDATIONS)


def observed_fields(spec: DatabaseReplicasSpec, scale: ScaleState, lag: LagReading, old: dict[str, Any] | None,
                    now: datetime) -> dict[str, Any]:
    """The ObservedState fields of the database read replicas."""
    current = replicas(spec, scale.replicas)
    ups = _history(old, SCALE_UPS, now, spec.lead_time)
    prev = (old or {}).get("databaseCurrentReplicas")
    if isinstance(prev, int) and current > prev:  # added since the last cycle by someone else: catching up too
        ups = (*ups, (now, current - prev))
    return {
        "database_replicas": lag.series,
        "database_current_replicas": current,
        "database_ready_replicas": replicas(spec, scale.ready_replicas),
        "database_lag_measured": lag.measured,
        "database_lag_error": lag.error,
        "database_recommendations": _recommendations(spec, old, current, now),
        "database_scale_ups": ups,
    }


def record(builder: st.StatusBuilder, spec: DatabaseReplicasSpec, decision: Decision, lag: LagReading,
           found: int, after: int, ready: int, now: datetime) -> None:
    """Status fields and condition of the read replicas after this cycle: ``found`` is the count the decision
    saw (fresh after a 409), ``after`` the count after the write. Whoever added replicas since the last
    cycle (this loop or a person), they are remembered as a scale-up: they may be catching up."""
    builder.set(databaseReadyReplicas=ready, databaseCurrentReplicas=after)
    window = spec.scale_down.stabilization_window
    if not builder.old.get(RECOMMENDATIONS):
        builder.recommend(found, now, window, field=RECOMMENDATIONS)  # the first-sight entry (see above)
    builder.recommend(decision.database_recommended_replicas, now, window, field=RECOMMENDATIONS)
    ups = [dict(i) for i in builder.old.get(SCALE_UPS) or [] if isinstance(i, dict)]
    prev = builder.old.get("databaseCurrentReplicas")
    base = prev if isinstance(prev, int) else found
    if after > base:
        ups.append({"time": st.iso(now), "replicas": after - base})
    keep = [i for i in ups if (at := st.parse_time(i.get("time"))) is not None and now - spec.lead_time < at]
    builder.set(**{SCALE_UPS: keep or None})
    message = decision.database_message or ""
    if not decision.database_metrics_available:
        builder.ok(CONDITION, False, "MetricsUnavailable", message)
    elif not lag.measured:
        builder.ok(CONDITION, True, "LagNotMeasured", "no databaseReplicas.lagQuery: replication lag is not guarded")
    else:
        builder.ok(CONDITION, True, "LagOK", f"replication lag read for {len(lag.series)} replica(s)")
