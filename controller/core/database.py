"""The database read-replica rule: sizing, the replication-lag guard and the database's own scale-down.

Called by ``controller.core.decide`` once per cycle for a policy with a
``databaseReplicas`` block. Pure: everything it remembers (past database
recommendations, recent database scale-ups) comes in through ObservedState.

The rule, in order:

* **Need.** Read replicas for the forecast's headroom-quantile reads over the
  database's own lead time, and for the observed reads now (the larger wins).
* **Lag.** A replica whose lag is above ``maxLagSeconds`` serves stale reads,
  so it is not counted and one more is asked for in its place, except:
* **Capacity on the way.** A replica asked for but not yet ready, or ready but
  still catching up because it was added less than a database lead time ago,
  is capacity on the way: it never buys another replica. (Without this rule a
  new replica, lagging while it copies the primary's WAL, bought another one
  every cycle: 4 needed grew to 8 in five cycles.)
* **Unknown lag holds.** A failed lag query, an empty result, fewer finite
  series than ready replicas, or NaN: the database never scales down and the
  decision says ``MetricsUnavailable`` for the database (the app side goes on).
* **Scale-down** waits for the database's own stabilization window (the
  highest recommendation in it wins) and removes one replica per decision.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from controller.core.decision import ObservedState, ReplicaLag
from controller.core.durations import format_duration
from controller.core.formats import num, when
from controller.core.limits import clamp, replicas_for, stabilized
from controller.core.policy import DatabaseReplicas

METRICS_UNAVAILABLE = "MetricsUnavailable"
HOLD = "Hold"
CATCHING_UP = "ReplicasCatchingUp"
SCALE_UP_FORECAST = "ScaleUpForecast"
SCALE_UP_OBSERVED = "ScaleUpObserved"
SCALE_UP_LAGGING = "ScaleUpLagging"
CAPACITY_LIMITED = "CapacityLimited"
SCALE_DOWN = "ScaleDown"
SCALE_DOWN_STEP = "ScaleDownStep"
SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
LAG_UNKNOWN_FLAG = "DatabaseMetricsUnavailable"


@dataclass(frozen=True)
class LagCensus:
    """What the lag series say about the ready replicas; ``unknown`` says why lag is not known."""

    healthy: int
    lagging: int  # finite lag above maxLagSeconds
    unknown: str | None = None


@dataclass(frozen=True)
class DatabaseDecision:
    """The database part of one Decision."""

    desired: int
    reason: str
    parts: tuple[str, ...]
    flags: frozenset[str]
    recommended: int | None  # what the stabilization history records
    lag_known: bool

    @property
    def message(self) -> str:
        """The parts as one message."""
        return "; ".join(self.parts)


def lag_census(
    series: Iterable[ReplicaLag], ready: int, max_lag_seconds: float, *, measured: bool = True,
    error: str | None = None,
) -> LagCensus:
    """Count healthy and lagging replicas, or say why the lag is unknown.

    Unmeasured (no lag query) counts every ready replica healthy. Unknown: a
    read error, or fewer finite series than ready replicas (an empty result, a
    missing series, NaN). Extra series (a pod still starting or terminating)
    are judged like the others.
    """
    if not measured:
        return LagCensus(max(ready, 0), 0)
    if error is not None:
        return LagCensus(0, 0, f"lag query failed: {error}")
    items = list(series)
    finite = [r.lag_seconds for r in items if r.lag_seconds is not None and math.isfinite(r.lag_seconds)]
    if len(finite) < ready:
        if not items:
            why = f"the lag query returned no series for {ready} ready replica(s)"
        elif len(finite) < len(items):
            why = (f"lag is NaN or unknown for {len(items) - len(finite)} of {len(items)} series;"
                   f" {len(finite)} known for {ready} ready replica(s)")
        else:
            why = f"the lag query returned {len(items)} series for {ready} ready replica(s)"
        return LagCensus(0, 0, why)
    lagging = sum(1 for lag in finite if lag > max_lag_seconds)
    return LagCensus(len(finite) - lagging, lagging)


def _ts(at: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(at)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def recently_added(scale_ups: Iterable[tuple[datetime, int]], now: pd.Timestamp, window: timedelta) -> int:
    """Replicas added by scale-ups within ``window`` before ``now`` (they may still be catching up)."""
    cutoff = now - window
    return sum(n for at, n in scale_ups if n > 0 and cutoff < _ts(at) <= now)


def database_decision(
    db: DatabaseReplicas,
    state: ObservedState,
    observed: float | None,
    peak: tuple[float, pd.Timestamp] | None,
    now: pd.Timestamp,
) -> DatabaseDecision:
    """Desired read replicas for one cycle; ``peak`` is the forecast's peak over the database lead time."""
    asked = state.database_current_replicas
    if asked is None:
        asked = len(state.database_replicas)
    ready = asked if state.database_ready_replicas is None else state.database_ready_replicas
    census = lag_census(state.database_replicas, ready, db.max_lag_seconds,
                        measured=state.database_lag_measured, error=state.database_lag_error)
    parts: list[str] = []
    flags: set[str] = set()
    fc_need = obs_need = None
    if peak is not None:
        reads = peak[0] * db.read_share
        fc_need = replicas_for(reads, db.capacity_per_replica)
        parts.append(
            f"database: forecast reads peak {num(reads)} req/s at {when(peak[1], now)} need {fc_need} read"
            f" replicas ({num(db.capacity_per_replica)} req/s each) within lead {format_duration(db.lead_time)}"
        )
    else:
        parts.append("database: no forecast over its lead time")
    if observed is not None:
        obs_need = replicas_for(observed * db.read_share, db.capacity_per_replica)
        parts.append(f"observed reads need {obs_need}")

    starting = max(0, asked - ready)
    if starting:
        parts.append(f"{starting} of {asked} read replica(s) asked for are not ready yet (on the way)")
    really_lagging = 0
    if census.unknown is not None:
        flags.add(LAG_UNKNOWN_FLAG)
        parts.append(f"replication lag unknown ({census.unknown}): not scaling read replicas down")
    elif census.lagging:
        catching = min(census.lagging, recently_added(state.database_scale_ups, now, db.lead_time))
        really_lagging = census.lagging - catching
        if catching:
            parts.append(f"{catching} new replica(s) catching up (added within lead"
                         f" {format_duration(db.lead_time)}): on the way, not lagging")
        if really_lagging:
            flags.add("DatabaseLagging")
            parts.append(f"{really_lagging} replica(s) lagging over {num(db.max_lag_seconds)}s, not counted")

    held = min(asked, db.max_replicas)
    needs = [n for n in (fc_need, obs_need) if n is not None]
    if not needs:
        desired, _ = clamp(held, db.min_replicas, db.max_replicas)
        parts.append(f"holding {asked} read replicas")
        return _done(desired, METRICS_UNAVAILABLE, parts, flags, None, census)

    needed = max(needs)
    recommended, limited = clamp(needed + really_lagging, db.min_replicas, db.max_replicas)
    if limited:
        flags.add("DatabaseCapacityLimited")
        parts.append(f"needs {needed + really_lagging} but databaseReplicas.maxReplicas is {db.max_replicas}")

    if census.unknown is not None:
        desired = max(recommended, held)
        reason = METRICS_UNAVAILABLE
        record = desired  # the window remembers the held count: no scale-down right after lag returns
    elif recommended >= asked:
        desired, record = recommended, recommended
        if desired == asked:
            reason = CAPACITY_LIMITED if limited else CATCHING_UP if starting or census.lagging else HOLD
        elif limited:
            reason = CAPACITY_LIMITED
        elif really_lagging and needed <= asked:
            reason = SCALE_UP_LAGGING
        else:
            reason = SCALE_UP_FORECAST if fc_need is not None and fc_need >= (obs_need or 0) else SCALE_UP_OBSERVED
    elif peak is None or observed is None:
        desired, record, reason = held, recommended, METRICS_UNAVAILABLE
        parts.append("not scaling read replicas down without both a forecast and observed demand")
    else:
        window = db.scale_down.stabilization_window
        stable = stabilized(recommended, state.database_recommendations, now, window)
        desired = min(max(stable, asked - 1), db.max_replicas)
        record = recommended
        if stable > recommended:
            parts.append(f"highest database recommendation in the last {format_duration(window)} is {stable}")
        if desired >= asked:
            reason = SCALE_DOWN_STABILIZED
        elif desired > stable:
            reason = SCALE_DOWN_STEP
            parts.append("read replicas go down one per decision")
        else:
            reason = SCALE_DOWN_STABILIZED if stable > recommended else SCALE_DOWN
    parts.append(
        f"scaling read replicas {asked} -> {desired}" if desired != asked else f"holding {asked} read replicas"
    )
    return _done(desired, reason, parts, flags, record, census)


def _done(desired: int, reason: str, parts: list[str], flags: set[str], record: int | None,
          census: LagCensus) -> DatabaseDecision:
    return DatabaseDecision(desired, reason, tuple(parts), frozenset(flags), record, census.unknown is None)
