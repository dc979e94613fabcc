"""``decide``: policy + forecast + observed state -> Decision. Pure, no clock.

The default sizing rule of the design: desired replicas =
ceil(headroom-quantile peak of the forecast over [now, now + leadTime +
syncPeriod] / capacityPerReplica), the quantile being ``headroomQuantile``
or the newsvendor quantile from ``costs`` (``controller.core.headroom``,
quoted in every message), never below what the observed demand needs
now, clamped to [min, max] (flagged when the forecast wants more than max).
Scale up at once; scale down only as far as the stabilization window allows
(the max recommendation within it, as the HPA does) and by bounded steps.
Without metrics (no observed demand and/or no forecast) it never scales down.
Database read replicas are sized the same way over their own lead time, and
lagging replicas do not count as capacity.

Called by the reconcile loop (operator) and the simulator; every Decision says
why in ``reason`` (CamelCase) and ``message`` (with the numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from controller.core.decision import Decision, ObservedState
from controller.core.durations import format_duration
from controller.core.headroom import Headroom, choose, label
from controller.core.limits import (
    bounded_scale_down,
    clamp,
    database_desired,
    healthy_replicas,
    replicas_for,
    stabilized,
)
from controller.core.policy import Policy
from forecasting.base import Forecast

# Reasons (CamelCase, like HPA condition reasons).
SCALE_UP_FORECAST = "ScaleUpForecast"
SCALE_UP_OBSERVED = "ScaleUpObserved"
SCALE_DOWN = "ScaleDown"
SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
SCALE_DOWN_STEP = "ScaleDownStep"
HOLD = "Hold"
CAPACITY_LIMITED = "CapacityLimited"
METRICS_UNAVAILABLE = "MetricsUnavailable"
PAUSED = "Paused"
FORECAST_ONLY = "ForecastOnly"


@dataclass(frozen=True)
class Peak:
    """The headroom-quantile peak of a forecast over a window."""

    value: float
    at: pd.Timestamp


def _utc(now: datetime) -> pd.Timestamp:
    ts = pd.Timestamp(now)
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def forecast_peak(forecast: Forecast, quantile: float, start: datetime, end: datetime) -> Peak | None:
    """The max of the ``quantile`` forecast over points whose step overlaps [start, end].

    A point at ``ts`` stands for the step [ts, ts + step). None when no point
    overlaps the window or every value in it is NaN (a stale forecast).
    """
    index = forecast.index
    if len(index) == 0:
        return None
    stamps = index.asi8
    step = int(stamps[1] - stamps[0]) if len(stamps) > 1 else 0
    lo = int(np.searchsorted(stamps, _utc(start).value - step, side="right"))
    hi = int(np.searchsorted(stamps, _utc(end).value, side="right"))
    if hi <= lo:
        return None
    values = np.asarray(forecast.quantile(quantile)[lo:hi], dtype=float)
    if np.isnan(values).all():
        return None
    i = int(np.nanargmax(values))
    return Peak(value=float(values[i]), at=index[lo + i])


def _num(x: float) -> str:
    return f"{x:.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _when(at: pd.Timestamp, now: pd.Timestamp) -> str:
    return at.strftime("%H:%M") if at.date() == now.date() else at.strftime("%Y-%m-%d %H:%M")


def _observed(state: ObservedState) -> float | None:
    demand = state.observed_demand
    if demand is None or (isinstance(demand, float) and math.isnan(demand)):
        return None
    if not math.isfinite(demand) or demand < 0:
        raise ValueError(f"observedDemand: expected a finite non-negative number or None, got {demand!r}")
    return float(demand)


def decide(policy: Policy, forecast: Forecast | None, state: ObservedState) -> Decision:
    """Decide the desired replicas (and database read replicas) for one cycle."""
    if state.current_replicas < 0:
        raise ValueError(f"currentReplicas: must be >= 0, got {state.current_replicas}")
    now = _utc(state.now)
    observed = _observed(state)
    cap = policy.capacity_per_replica
    current = state.current_replicas
    lead = policy.lead_time
    headroom = choose(policy, forecast, lead + policy.sync_period)
    q = headroom.quantile

    peak = None if forecast is None else forecast_peak(forecast, q, now, now + lead + policy.sync_period)
    fc_need = None if peak is None else replicas_for(peak.value, cap)
    obs_need = None if observed is None else replicas_for(observed, cap)
    metrics_ok = peak is not None and observed is not None

    why: list[str] = []
    if peak is not None and fc_need is not None:
        why.append(
            f"forecast {label(q)} peak {_num(peak.value)} req/s at {_when(peak.at, now)} needs"
            f" {fc_need} replicas ({_num(cap)} req/s each) within lead {format_duration(lead)}"
        )
    elif forecast is None:
        why.append("no forecast")
    else:
        why.append(f"forecast does not cover {_when(now, now)}..+{format_duration(lead + policy.sync_period)}")
    if observed is not None:
        why.append(f"observed {_num(observed)} req/s needs {obs_need}")
    else:
        why.append("observed demand unavailable")
    why.append(headroom.text)

    flags: set[str] = set()
    if peak is None:
        flags.add("ForecastUnavailable")
    if observed is None:
        flags.add("ObservedUnavailable")

    needs = [n for n in (fc_need, obs_need) if n is not None]
    capacity_limited = scaling_limited = False
    recommended: int | None = None
    held_current, _ = clamp(current, policy.min_replicas, policy.max_replicas)
    if not needs:
        target = held_current
        reason = METRICS_UNAVAILABLE
    else:
        raw = max(needs)
        recommended, capacity_limited = clamp(raw, policy.min_replicas, policy.max_replicas)
        if capacity_limited:
            flags.add(CAPACITY_LIMITED)
            why.append(f"needs {raw} but maxReplicas is {policy.max_replicas}")
        step_limited = stabilizing = False
        if not metrics_ok:
            target = max(recommended, held_current)  # never scale down without metrics
        else:
            window = policy.scale_down.stabilization_window
            stable = stabilized(recommended, state.recommendations, now, window)
            target, step_limited = bounded_scale_down(current, stable, policy.scale_down.max_step_percent)
            target = min(target, policy.max_replicas)
            stabilizing = stable > recommended and recommended < current
            if stabilizing:
                why.append(f"highest recommendation in the last {format_duration(window)} is {stable}")
            if step_limited:
                why.append(f"scale-down step limited to {policy.scale_down.max_step_percent}% of {current}")
            scaling_limited = stabilizing or step_limited
        if target > current:
            if capacity_limited:
                reason = CAPACITY_LIMITED
            elif fc_need is not None and fc_need >= (obs_need or 0):
                reason = SCALE_UP_FORECAST
            else:
                reason = SCALE_UP_OBSERVED
        elif target < current:
            reason = SCALE_DOWN_STEP if step_limited else SCALE_DOWN_STABILIZED if stabilizing else SCALE_DOWN
        elif not metrics_ok:
            reason = METRICS_UNAVAILABLE
        elif stabilizing:
            reason = SCALE_DOWN_STABILIZED
        elif capacity_limited:
            reason = CAPACITY_LIMITED
        else:
            reason = HOLD
    if not metrics_ok:
        flags.add(METRICS_UNAVAILABLE)
        why.append("not scaling down without metrics")
    if scaling_limited:
        flags.add("ScalingLimited")

    db_desired, db_why = _database(policy, forecast, state, observed, now, flags, headroom)

    if policy.mode == "Active":
        action = f"scaling {current} -> {target}" if target != current else f"holding {current}"
        desired = target
    else:
        would = f"would scale {current} -> {target}" if target != current else f"would hold {current}"
        action = f"{policy.mode}: {would}; holding {current}"
        reason = PAUSED if policy.mode == "Paused" else FORECAST_ONLY
        desired = current
        if db_desired is not None:
            db_desired = state.database_current_replicas
            if db_desired is None:
                db_desired = len(state.database_replicas)
    message = "; ".join([*why, action, *db_why])
    return Decision(
        desired_replicas=desired,
        reason=reason,
        message=message,
        database_desired_replicas=db_desired,
        capacity_limited=capacity_limited,
        scaling_limited=scaling_limited,
        metrics_available=metrics_ok,
        forecast_peak=None if peak is None else peak.value,
        forecast_peak_at=None if peak is None else peak.at.to_pydatetime(),
        flags=frozenset(flags),
        recommended_replicas=recommended,
        headroom_quantile=q,
    )


def _database(
    policy: Policy,
    forecast: Forecast | None,
    state: ObservedState,
    observed: float | None,
    now: pd.Timestamp,
    flags: set[str],
    headroom: Headroom,
) -> tuple[int | None, list[str]]:
    """Desired read replicas and the message parts that explain them (None without a block)."""
    db = policy.database_replicas
    if db is None:
        return None, []
    current = state.database_current_replicas
    if current is None:
        current = len(state.database_replicas)
    _healthy, lagging = healthy_replicas(state.database_replicas, db.max_lag_seconds)
    horizon: timedelta = db.lead_time + policy.sync_period
    q = headroom.quantile  # the app's quantile: costs name an app replica-hour, not a database one
    peak = None if forecast is None else forecast_peak(forecast, q, now, now + horizon)
    parts: list[str] = []
    needs: list[int] = []
    if peak is not None:
        reads = peak.value * db.read_share
        need = replicas_for(reads, db.capacity_per_replica)
        needs.append(need)
        parts.append(
            f"database: forecast reads peak {_num(reads)} req/s at {_when(peak.at, now)} need {need} read"
            f" replicas ({_num(db.capacity_per_replica)} req/s each) within lead {format_duration(db.lead_time)}"
        )
    else:
        parts.append("database: no forecast over its lead time")
    if observed is not None:
        need = replicas_for(observed * db.read_share, db.capacity_per_replica)
        needs.append(need)
        parts.append(f"observed reads need {need}")
    if lagging:
        flags.add("DatabaseLagging")
        parts.append(f"{lagging} replica(s) lagging over {_num(db.max_lag_seconds)}s or unknown, not counted")
    if not needs:
        desired, _ = clamp(current, db.min_replicas, db.max_replicas)
        parts.append(f"holding {current} read replicas")
        return desired, parts
    needed = max(needs)
    desired, limited = database_desired(
        needed,
        lagging,
        current,
        db.min_replicas,
        db.max_replicas,
        may_scale_down=peak is not None and observed is not None,
    )
    if limited:
        flags.add("DatabaseCapacityLimited")
        parts.append(f"needs {needed + lagging} but databaseReplicas.maxReplicas is {db.max_replicas}")
    parts.append(
        f"scaling read replicas {current} -> {desired}" if desired != current else f"holding {current} read replicas"
    )
    return desired, parts
