"""Plain data the decision core reads and writes: observed state and Decision.

``ObservedState`` is what the loop saw this cycle; ``Decision`` is what
``decide`` returns: replica counts plus a ``reason`` (a CamelCase word, like
an HPA condition reason) and a human ``message`` saying why. Built by the
reconcile loop and the simulator, rendered by the CLI, status and dashboards.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ReplicaLag:
    """One database read replica and its replication lag in seconds (None: unknown)."""

    name: str
    lag_seconds: float | None


@dataclass(frozen=True)
class ObservedState:
    """What the loop observed at ``now`` (passed in: the core reads no clock)."""

    now: datetime
    current_replicas: int
    ready_replicas: int
    observed_demand: float | None  # demand units/s now; None when metrics are unavailable
    # Past desired-replica recommendations (time, replicas), newest last, for the
    # scale-down stabilization window.
    recommendations: tuple[tuple[datetime, int], ...] = ()
    last_scale_time: datetime | None = None
    # The last time the replicas went up (None: unknown). Within the dwell after it (lead + sync +
    # stabilization window) the forecast may not cut the stabilization window short.
    last_scale_up_time: datetime | None = None
    # Database read replicas: the lag series the lag query returned (one per replica it knows),
    # the replicas asked for (/scale spec) and ready (None: as many as asked for).
    database_replicas: tuple[ReplicaLag, ...] = ()
    database_current_replicas: int | None = None
    database_ready_replicas: int | None = None
    # False: no lag query is configured, the lag guard is off by choice. With a query, a read that
    # failed sets ``database_lag_error``: lag is unknown and the database holds (never scales down).
    database_lag_measured: bool = True
    database_lag_error: str | None = None
    # Memory the database rule needs (the core keeps none): past database recommendations (time,
    # replicas) for its stabilization window, and recent database scale-ups (time, replicas added),
    # whose new replicas may lag while they catch up.
    database_recommendations: tuple[tuple[datetime, int], ...] = ()
    database_scale_ups: tuple[tuple[datetime, int], ...] = ()
    # Why there is no forecast, or why the one passed is not a fit for the policy's current spec (a
    # previous fit kept while its refit waits for a later cycle's fit budget): said in the message.
    forecast_note: str | None = None


@dataclass(frozen=True)
class Decision:
    """The outcome of one ``decide`` call."""

    desired_replicas: int
    reason: str
    message: str
    database_desired_replicas: int | None = None
    capacity_limited: bool = False  # the forecast needs more than maxReplicas
    scaling_limited: bool = False  # a scale-down step or window held replicas back
    metrics_available: bool = True
    forecast_peak: float | None = None  # headroom-quantile peak over the sizing window
    forecast_peak_at: datetime | None = None
    flags: frozenset[str] = field(default_factory=frozenset)
    # The clamped recommendation before stabilization and step limits (what the
    # HPA records): callers append (now, recommended_replicas) to
    # ObservedState.recommendations. In ForecastOnly/Paused mode, what Active
    # mode would have recommended. None when nothing could be computed.
    recommended_replicas: int | None = None
    # The database read replicas' own reason (CamelCase) and message (None without a databaseReplicas
    # block); the message is also part of ``message``. ``database_metrics_available`` is False when
    # replication lag is unknown (the database holds; the app side decides on its own).
    database_reason: str | None = None
    database_message: str | None = None
    database_recommended_replicas: int | None = None
    database_metrics_available: bool = True
    # The forecast quantile this decision sized at: headroomQuantile, or the newsvendor
    # quantile from the policy's costs (controller.core.headroom). None: not computed.
    headroom_quantile: float | None = None
