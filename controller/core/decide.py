"""``decide``: policy + forecast + observed state -> Decision. Pure, no clock.

The default sizing rule of the design: desired replicas =
ceil(headroom-quantile peak of the forecast over [now, now + leadTime +
syncPeriod] / capacityPerReplica), the quantile being ``headroomQuantile``
or the newsvendor quantile from ``costs`` (``controller.core.headroom``,
quoted in every message); a replica added now is ready a lead time later,
so replicas are added only as far as the forecast from now + leadTime on
needs (a peak before it keeps the replicas there are, never adds ones
that arrive after it); never below what the observed demand needs
now (unless that demand is already served and a fresh forecast, one whose
first point is now, says it falls), clamped to [min, max] (flagged when the forecast wants more than max).
Scale up at once; scale down only as far as the stabilization window allows
(the max recommendation within it, as the HPA does) and by bounded steps.
The window looks back because an observation cannot see ahead; a forecast
can: when it covers the whole next lead + sync + window and its headroom
quantile there needs fewer replicas than the window's past maximum, the
scale-down goes as far as that forward need (``ScaleDownForecast``), still
by bounded steps and never below what is observed now, but only once the
last scale-up lies a whole dwell (lead + sync + window) back (``_settled``):
replicas a forecast just asked for are not taken away by its next revision.
A forecast that does not reach that far leaves the backward window in charge. Either way a
forecast-backed scale-down is guarded (``scale_down_guard``): down to n only
while the forecast over that dwell horizon (carried on its rising trend when
it stops short) stays at or below (n - scaleDown.margin) x capacity, a
hysteresis band of a fraction of one replica; when that keeps every replica
the reason is ``ScaleDownForecastHold``.
Without metrics (no observed demand and/or no forecast) it never scales down.
Database read replicas are sized by ``controller.core.database`` over their
own lead time, guarded by replication lag (lagging replicas do not count, new
ones catching up are capacity on the way, unknown lag holds) with their own
scale-down stabilization window.

Called by the reconcile loop (operator) and the simulator; every Decision says
why in ``reason`` (CamelCase) and ``message`` (with the numbers).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from controller.core.database import database_decision
from controller.core.decision import Decision, ObservedState
from controller.core.durations import format_duration
from controller.core.formats import num as _num
from controller.core.formats import when as _when
from controller.core.headroom import choose, label
from controller.core.limits import bounded_scale_down, clamp, replicas_for, stabilized
from controller.core.policy import Policy
from forecasting.base import Forecast
from forecasting.timeutil import stamps_ns, ts_ns

# Reasons (CamelCase, like HPA condition reasons).
SCALE_UP_FORECAST = "ScaleUpForecast"
SCALE_UP_OBSERVED = "ScaleUpObserved"
SCALE_DOWN = "ScaleDown"
SCALE_DOWN_STABILIZED = "ScaleDownStabilized"
SCALE_DOWN_STEP = "ScaleDownStep"
SCALE_DOWN_FORECAST = "ScaleDownForecast"  # past the backward window because the forecast says demand stays low
SCALE_DOWN_FORECAST_HOLD = "ScaleDownForecastHold"  # no scale-down: the forecast wants the replicas back (guard)
HOLD = "Hold"
CAPACITY_LIMITED = "CapacityLimited"
METRICS_UNAVAILABLE = "MetricsUnavailable"
PAUSED = "Paused"
FORECAST_ONLY = "ForecastOnly"
# Flag: a forecast exists but none of its points overlaps the sizing window (or all are NaN).
# Outside a failed refit this is a bug (e.g. stamps compared in different units): callers log
# it as an error with the message, which names both the window and the forecast's span.
FORECAST_NOT_COVERING = "ForecastNotCovering"
# A flag: the forecast is a previous fit, kept while the refit a changed spec or calendar forced waits for a
# later cycle's fit budget (``ObservedState.forecast_note`` says which and why).
FORECAST_STALE = "ForecastStale"


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
    stamps = stamps_ns(index)  # whatever the index's resolution (pandas 3 parses at us)
    step = int(stamps[1] - stamps[0]) if len(stamps) > 1 else 0
    lo = int(np.searchsorted(stamps, ts_ns(_utc(start)) - step, side="right"))
    hi = int(np.searchsorted(stamps, ts_ns(_utc(end)), side="right"))
    if hi <= lo:
        return None
    values = np.asarray(forecast.quantile(quantile)[lo:hi], dtype=float)
    if np.isnan(values).all():
        return None
    i = int(np.nanargmax(values))
    return Peak(value=float(values[i]), at=index[lo + i])


def forward_peak(forecast: Forecast, quantile: float, start: datetime, end: datetime) -> Peak | None:
    """``forecast_peak`` over [start, end], but only when the forecast reaches ``end`` (its last
    point's step ends at or after it) with no NaN in the window; else None."""
    index = forecast.index
    if len(index) < 2:
        return None
    stamps = stamps_ns(index)
    if int(stamps[-1]) + int(stamps[1] - stamps[0]) < ts_ns(_utc(end)):
        return None
    lo = int(np.searchsorted(stamps, ts_ns(_utc(start)) - int(stamps[1] - stamps[0]), side="right"))
    hi = int(np.searchsorted(stamps, ts_ns(_utc(end)), side="right"))
    if np.isnan(np.asarray(forecast.quantile(quantile)[lo:hi], dtype=float)).any():
        return None
    return forecast_peak(forecast, quantile, start, end)


def _fresh(forecast: Forecast, now: pd.Timestamp) -> bool:
    """Whether the forecast was issued for now: its first point's step holds ``now`` (or is the next
    one), so it was updated through the last observation."""
    stamps = stamps_ns(forecast.index)
    if len(stamps) < 2:
        return False
    step = int(stamps[1] - stamps[0])
    return int(stamps[0]) <= ts_ns(now) + step and ts_ns(now) < int(stamps[0]) + step


def _not_covering(forecast: Forecast, now: pd.Timestamp, window: timedelta) -> str:
    index = forecast.index
    span = "no points" if len(index) == 0 else f"{index[0].isoformat()} .. {index[-1].isoformat()}"
    return f"forecast does not cover {now.isoformat()} .. +{format_duration(window)}: its points span {span}"


def _observed(state: ObservedState) -> float | None:
    demand = state.observed_demand
    if demand is None or (isinstance(demand, float) and math.isnan(demand)):
        return None
    if not math.isfinite(demand) or demand < 0:
        raise ValueError(f"observedDemand: expected a finite non-negative number or None, got {demand!r}")
    return float(demand)


@dataclass(frozen=True)
class Guard:
    """How far the forecast lets a scale-down go (``scale_down_guard``)."""

    need: int  # the fewest replicas the scale-down may leave (clamped, >= the recommendation, <= current)
    covered: bool  # the forecast reaches the whole dwell horizon (lead + sync + stabilization window)
    text: str  # the message part saying why


def _carried(forecast: Forecast, quantile: float, now: pd.Timestamp, end: pd.Timestamp) -> tuple[float, float] | None:
    """A forecast that stops before ``end``, carried there on its own trend: (value at ``end``, slope a step).

    The slope is the least-squares line through its points from now on; only a rise is carried (a flat
    or falling forecast stays at its last value, which its peak already counts). None when it does not
    rise or has too few points to say.
    """
    stamps = stamps_ns(forecast.index)
    step = int(stamps[1] - stamps[0])
    lo = int(np.searchsorted(stamps, ts_ns(now) - step, side="right"))
    values = np.asarray(forecast.quantile(quantile)[lo:], dtype=float)
    if len(values) < 3 or np.isnan(values).any():
        return None
    slope = float(np.polyfit(np.arange(len(values), dtype=float), values, 1)[0])
    if slope <= 0:
        return None
    steps_on = max(0.0, (ts_ns(end) - int(stamps[-1])) / step)
    return float(values[-1]) + slope * steps_on, slope


def scale_down_guard(policy: Policy, forecast: Forecast, quantile: float, now: pd.Timestamp, recommended: int,
                     current: int) -> Guard:
    """The forecast's say on a scale-down from ``current`` toward ``recommended`` (the dwell and the margin).

    A replica taken away now takes a lead time to come back, and the stabilization window is the
    promise that a scale-down is not taken back soon. So the scale-down may leave n replicas only while
    the forecast's headroom quantile over the dwell horizon [now, now + lead + sync + window] stays at
    or below (n - ``scaleDown.margin``) x capacity: a hysteresis band of a fraction of one replica (the
    HPA's tolerance is 10 % of the whole fleet; a band of a fleet fraction would keep a large fleet up
    to that share above its need after every fall, a band of one replica's fraction costs at most that
    fraction of a replica), so a forecast revised up by less than the margin does not take the
    scale-down back. A forecast that stops short of the horizon is judged on what it covers, carried
    to the horizon's end on its own rising trend (``_carried``): a forecast still rising where it stops
    says demand rises again, and a replica removed now would be wanted back.
    """
    cap, margin = policy.capacity_per_replica, policy.scale_down.margin
    ahead = dwell(policy)
    fwd = forward_peak(forecast, quantile, now, now + ahead)
    covered = fwd is not None
    if fwd is None:
        fwd = forecast_peak(forecast, quantile, now, now + ahead)
    if fwd is None:  # decide() only asks with a peak over the sizing window, which lies inside the horizon
        return Guard(need=recommended, covered=False, text="")
    seen = "" if covered else f" (the forecast stops at {_when(forecast.index[-1], now)})"
    text = (f"forecast {label(quantile)} peak over the next {format_duration(ahead)}{seen} is {_num(fwd.value)}"
            f" req/s at {_when(fwd.at, now)}")
    value = fwd.value
    carried = None if covered else _carried(forecast, quantile, now, now + ahead)
    if carried is not None and carried[0] > value:
        value = carried[0]
        text += f"; carried on its trend (+{_num(carried[1])} req/s a step) to {_when(now + ahead, now)}: {_num(value)}"
    raw = replicas_for(value + margin * cap, cap)
    need = min(current, max(recommended, clamp(raw, policy.min_replicas, policy.max_replicas)[0]))
    if need > recommended:
        fewer = need - 1
        text += (f": {fewer} replicas keep scaleDown.margin {margin:g} of a replica spare only up to"
                 f" {_num(max(0.0, fewer - margin) * cap)} req/s, so the scale-down stops at {need}")
    else:
        text += f", needs {need} with scaleDown.margin {margin:g}"
    return Guard(need=need, covered=covered, text=text)


def dwell(policy: Policy) -> timedelta:
    """The scale-down guard's horizon: a replica taken away now is back a lead + sync later, and the
    stabilization window is the promise that a scale-down is not taken back within it."""
    return policy.lead_time + policy.sync_period + policy.scale_down.stabilization_window


def _settled(policy: Policy, state: ObservedState, now: pd.Timestamp) -> str | None:
    """Why the forecast may not yet cut the stabilization window short (None: it may).

    The dwell runs both ways. A scale-down must not be wanted back within the dwell (``scale_down_guard``);
    and replicas added at the last scale-up, which a forecast asked for within lead + sync, are kept for
    the dwell before a forecast may take them away past the window. A forecast that changes its mind
    sooner is one revision of a noisy estimate (the demo's tournament ramp pulled its plateau 10 req/s
    down for ten minutes), and following it flaps; within the dwell the backward window rules, as the HPA's.
    """
    up = state.last_scale_up_time
    if up is None:
        return None
    since = now - _utc(up)
    if since >= dwell(policy):
        return None
    return (f"the last scale-up was {format_duration(since)} ago ({_when(_utc(up), now)}), within the dwell"
            f" {format_duration(dwell(policy))} (lead + sync + stabilization window)")


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
        why.append("no forecast" if state.forecast_note is None else f"no forecast: {state.forecast_note}")
    else:
        why.append(_not_covering(forecast, now, lead + policy.sync_period))
    if forecast is not None and state.forecast_note is not None:
        why.insert(1, state.forecast_note)  # the forecast is the previous fit: its refit is queued
    if observed is not None:
        why.append(f"observed {_num(observed)} req/s needs {obs_need}")
    else:
        why.append("observed demand unavailable")
    why.append(headroom.text)

    flags: set[str] = set()
    if forecast is not None and state.forecast_note is not None:
        flags.add(FORECAST_STALE)
    if peak is None:
        flags.add("ForecastUnavailable")
        if forecast is not None:
            flags.add(FORECAST_NOT_COVERING)
    if observed is None:
        flags.add("ObservedUnavailable")

    if forecast is not None and peak is not None and fc_need is not None and fc_need > current:
        # Replicas added now are ready a lead time later: only the forecast from then on can use them. A peak
        # before it is served by the replicas there are (and those on the way); adding for it buys replicas
        # that arrive after it and idle for a stabilization window. Keep what there is for it, add for the rest.
        ready_at = now + lead
        arrival = forecast_peak(forecast, q, ready_at, ready_at + policy.sync_period)
        if arrival is not None and replicas_for(arrival.value, cap) < fc_need:
            fc_need = max(current, replicas_for(arrival.value, cap))
            why.append(f"replicas added now are ready from {_when(ready_at, now)}, when the forecast"
                       f" {label(q)} peak is {_num(arrival.value)} req/s: adding only up to {fc_need}")
    needs = [n for n in (fc_need, obs_need) if n is not None]
    if (
        observed is not None
        and fc_need is not None
        and obs_need is not None
        and fc_need < obs_need <= current
        and forecast is not None
        and _fresh(forecast, now)
    ):
        # The observation is served and the forecast, updated through it, says demand falls:
        # the observed floor would hold the replicas of the last step for a whole lead time.
        needs = [fc_need]
        why.append(f"the forecast (from {_when(forecast.index[0], now)}) says demand falls below the observed: sizing"
                   " to the forecast")
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
        step_limited = stabilizing = forecast_led = forecast_held = stabilizing_text = False
        if not metrics_ok:
            target = max(recommended, held_current)  # never scale down without metrics
        else:
            window = policy.scale_down.stabilization_window
            # The window only holds a scale-down back, as the HPA's: its max never lifts the target above
            # the current count (after a forecast-led scale-down the window still holds the higher counts).
            stable = min(stabilized(recommended, state.recommendations, now, window), max(current, recommended))
            if forecast is not None and recommended < current:
                guard = scale_down_guard(policy, forecast, q, now, recommended, current)
                settled = _settled(policy, state, now)
                if guard.covered and guard.need < stable and settled is not None:
                    why.append(f"{guard.text}, but {settled}: holding the last {format_duration(window)}'s {stable}")
                    stabilizing_text = True
                elif guard.covered and guard.need < stable:
                    stable, forecast_led = guard.need, True
                    why.append(f"{guard.text}: not holding the last {format_duration(window)}'s"
                               f" {stabilized(recommended, state.recommendations, now, window)}")
                elif guard.need > stable:
                    stable, forecast_held = guard.need, True
                    why.append(guard.text)
            target, step_limited = bounded_scale_down(current, stable, policy.scale_down.max_step_percent)
            target = min(target, policy.max_replicas)
            stabilizing = stable > recommended and recommended < current
            if stabilizing and not forecast_led and not forecast_held and not stabilizing_text:
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
            reason = (
                SCALE_DOWN_STEP
                if step_limited
                else SCALE_DOWN_FORECAST
                if forecast_led
                else SCALE_DOWN_STABILIZED
                if stabilizing
                else SCALE_DOWN
            )
        elif not metrics_ok:
            reason = METRICS_UNAVAILABLE
        elif forecast_held:
            reason = SCALE_DOWN_FORECAST_HOLD
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

    db = None
    db_policy = policy.database_replicas
    if db_policy is not None:
        db_peak = None if forecast is None else forecast_peak(forecast, q, now, now + db_policy.lead_time
                                                              + policy.sync_period)
        db = database_decision(db_policy, state, observed, None if db_peak is None else (db_peak.value, db_peak.at),
                               now)
        flags |= db.flags
    db_desired = None if db is None else db.desired
    db_why = [] if db is None else list(db.parts)

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
        database_reason=None if db is None else (reason if policy.mode != "Active" else db.reason),
        database_message=None if db is None else db.message,
        database_recommended_replicas=None if db is None else db.recommended,
        database_metrics_available=True if db is None else db.lag_known,
        headroom_quantile=q,
    )
