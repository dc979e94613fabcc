"""The database read replicas in the operator: their port, their status fields and condition.

Called by ``controller.operator.reconcile`` for a policy with a
``databaseReplicas`` block. The cycle does the work
(``controller.cycle.database``: the lag reading, the ObservedState fields
from the policy's ``DatabaseMemory``, the memory's changes); this module
builds the cycle's ``DatabaseTarget`` from the spec (a ``lagQuery`` without
``--prometheus-url`` is unknown lag, not unmeasured), writes the replicas
and the ``DatabaseMetricsAvailable`` condition into status, and keeps
``observed_fields``/``record`` over status dicts (what the memory loaded
from and dumped to status gives).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from controller.core.decision import Decision
from controller.cycle import database as cycle_db
from controller.cycle.database import DatabaseTarget, LagReading
from controller.cycle.memory import DatabaseMemory
from controller.cycle.ports import LagSource
from controller.operator import status as st
from controller.operator.resources import DatabaseReplicasSpec
from controller.targets.base import ScaleState, TargetKey

CONDITION = "DatabaseMetricsAvailable"
RECOMMENDATIONS = "databaseRecommendations"
SCALE_UPS = "databaseScaleUps"
NO_PROMETHEUS = "databaseReplicas.lagQuery needs the operator's --prometheus-url"


def target(namespace: str, spec: DatabaseReplicasSpec, source: LagSource | None) -> DatabaseTarget:
    """The cycle's port of the database of a policy in ``namespace``."""
    ref = spec.target_ref
    missing = NO_PROMETHEUS if source is None and spec.lag_query is not None else None
    return DatabaseTarget(TargetKey(namespace, ref.kind, ref.name, ref.api_version), spec.primary_instances, source,
                          missing)


def replicas(spec: DatabaseReplicasSpec, count: int) -> int:
    """Read replicas in a /scale count (the target's instances minus ``primaryInstances``)."""
    return cycle_db.replicas(spec.primary_instances, count)


def observed_fields(spec: DatabaseReplicasSpec, scale: ScaleState, lag: LagReading, old: dict[str, Any] | None,
                    now: datetime) -> dict[str, Any]:
    """The ObservedState fields of the database read replicas, from the memory in status ``old``."""
    return cycle_db.state_fields(spec, spec.primary_instances, scale, lag, DatabaseMemory.load(old or {}), now)


def set_condition(builder: st.StatusBuilder, decision: Decision, lag: LagReading) -> None:
    """The ``DatabaseMetricsAvailable`` condition of this cycle."""
    message = decision.database_message or ""
    if not decision.database_metrics_available:
        builder.ok(CONDITION, False, "MetricsUnavailable", message)
    elif not lag.measured:
        builder.ok(CONDITION, True, "LagNotMeasured", "no databaseReplicas.lagQuery: replication lag is not guarded")
    else:
        builder.ok(CONDITION, True, "LagOK", f"replication lag read for {len(lag.series)} replica(s)")


def record(builder: st.StatusBuilder, spec: DatabaseReplicasSpec, decision: Decision, lag: LagReading,
           found: int, after: int, ready: int, now: datetime) -> None:
    """Status fields and condition of the read replicas after this cycle (``cycle_db.apply`` on the memory in
    the builder's old status): ``found`` is the count the decision saw, ``after`` the count after the write."""
    memory = DatabaseMemory.load(builder.old)
    cycle_db.apply(memory, spec, decision, found, after, now)
    builder.set(databaseReadyReplicas=ready, **memory.dump(now, spec.scale_down.stabilization_window))
    set_condition(builder, decision, lag)


__all__ = ["CONDITION", "RECOMMENDATIONS", "SCALE_UPS", "LagReading", "LagSource", "observed_fields", "record",
           "replicas", "set_condition", "target"]
