"""Numeric kernels of the calendar model: free functions over arrays, no model state.

Called by ``calendar_fit``, ``calendar_predict`` and ``calendar_state``. Stamps are
int64 nanoseconds since the epoch (``forecasting.timeutil``); weeks start on
Monday 00:00 UTC (the epoch was a Thursday, hence the shift).

* ``log_offset``: the constant added before the log transform. It scales with
  the *positive* values, so a series that is zero more than half the time
  (a call centre closed nights and weekends) does not get a near-zero offset,
  under which log(0 + offset) sits ten log units below the open hours, the
  Fourier terms ring around every opening and the upper quantiles explode.
* ``week_slots`` / ``zero_slots``: slots of the week in which every observed
  value was exactly zero (closed hours). The calendar fit and the residual
  filter leave them out and the forecast there is zero, instead of a log
  regression asked to fit a step from "closed" to "open".
* ``closure_days``: whole days with no demand in hours that are normally open
  and no event announced (a shop shut from Christmas to New Year, an outage
  of the metrics). The fit treats them as gaps: a regime seen once must not
  pull the calendar down nor keep the interval wide on the ordinary days after it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

WEEK_NS = 7 * 86_400 * 10**9
MONDAY_NS = 4 * 86_400 * 10**9  # 1970-01-05 (a Monday) minus the epoch (a Thursday)
MIN_ZERO_WEEKS = 2  # a slot is "closed" once it was zero in at least two weeks (and never open)


def log_offset(values: np.ndarray) -> float:
    """The offset c of log(y + c): 1 % of the median positive value (1e-3 when none is positive).

    For a series with no zeros this is 1 % of its median, as before; zeros do not drag it down."""
    finite = values[np.isfinite(values)]
    positive = finite[finite > 0]
    if not positive.size:
        return 1e-3
    return max(1e-9, 0.01 * float(np.median(positive)))


def week_slots(stamps: np.ndarray, step_ns: int) -> np.ndarray | None:
    """Slot of the week (0 .. steps per week - 1) of each stamp; None when steps do not divide a week."""
    if step_ns <= 0 or WEEK_NS % step_ns:
        return None
    return ((stamps - MONDAY_NS) % WEEK_NS) // step_ns


def zero_slots(stamps: np.ndarray, values: np.ndarray, step_ns: int) -> np.ndarray:
    """Sorted slots of the week where every observed value is zero, seen in >= ``MIN_ZERO_WEEKS`` weeks."""
    slots = week_slots(stamps, step_ns)
    if slots is None:
        return np.zeros(0, dtype=np.int64)
    ok = np.isfinite(values)
    size = WEEK_NS // step_ns
    seen = np.bincount(slots[ok], minlength=size)
    nonzero = np.bincount(slots[ok & (values != 0)], minlength=size)
    return np.flatnonzero((seen >= MIN_ZERO_WEEKS) & (nonzero == 0)).astype(np.int64)


def in_zero_slots(stamps: np.ndarray, step_ns: int, closed: np.ndarray) -> np.ndarray:
    """Boolean mask: which stamps fall in one of the ``closed`` slots."""
    if not closed.size:
        return np.zeros(len(stamps), dtype=bool)
    slots = week_slots(stamps, step_ns)
    if slots is None:
        return np.zeros(len(stamps), dtype=bool)
    return np.isin(slots, closed)


DAY_NS = 86_400 * 10**9
CLOSURE_MASS = 5.0  # a zero day is a closure once its slots' medians add up to >= 5 units (Poisson: P(0) < 1 %)


def closure_days(stamps: np.ndarray, values: np.ndarray, open_: np.ndarray, announced: np.ndarray,
                 step_ns: int) -> np.ndarray:
    """Boolean mask of the points on *closure days*: UTC days with two or more open points (``open_``:
    observed, outside the closed slots), every one of them zero, none inside an announced event window
    (``announced``: a holiday that shuts the business is its kind's lift to learn, not a gap), where the
    median over the history of the same slots of the week adds up to at least ``CLOSURE_MASS`` units:
    the day is normally open (a Saturday that opened once in a year is not), and busy enough that a
    whole day of zeros is no chance of counting (Poisson: P(0) < 1 %).

    Such a day is a different regime, not an error of the open-day forecast: it says nothing about
    how far demand can exceed that forecast. Off a weekly grid (no slots), nothing is masked."""
    mask = np.zeros(len(stamps), dtype=bool)
    slots = week_slots(stamps, step_ns)
    idx = np.flatnonzero(open_)
    if slots is None or not idx.size:
        return mask
    day = (stamps[idx] - stamps[idx[0]] // DAY_NS * DAY_NS) // DAY_NS
    n_open = np.bincount(day)
    n_pos = np.bincount(day, weights=(values[idx] > 0).astype(float))
    n_event = np.bincount(day, weights=announced[idx].astype(float))
    shut = (n_open >= 2) & (n_pos == 0) & (n_event == 0)
    if not shut.any():  # the usual case: no zero day, so no slot medians (every fit runs this)
        return mask
    size = WEEK_NS // step_ns
    slot_median = pd.Series(values[idx]).groupby(slots[idx]).median().reindex(range(size), fill_value=0.0)
    mass = np.bincount(day, weights=slot_median.to_numpy()[slots[idx]])
    shut &= mass >= CLOSURE_MASS
    mask[idx] = shut[day]
    return mask


CLIP_MADS = 6.0  # residuals beyond 6 robust sd (an outage's log(0 + c)) are clipped for the dynamics


def robust_clip(resid: np.ndarray, mads: float = CLIP_MADS) -> np.ndarray:
    """``resid`` clipped to median +- ``mads`` robust sd (1.4826 MAD); NaN stays NaN.

    A day of zeros in an open service (an outage) is a run of residuals ~5 log units low: left
    in, it makes the residual look like a near-random walk (AR coefficient ~1) and its variance
    sets every later interval ten times too wide. Clipped, it weighs as a large but bounded miss."""
    finite = resid[np.isfinite(resid)]
    if finite.size < 10:
        return resid
    centre = float(np.median(finite))
    spread = 1.4826 * float(np.median(np.abs(finite - centre)))
    if spread <= 0:
        return resid
    return np.clip(resid, centre - mads * spread, centre + mads * spread)


HUBER_K = 4.0  # only gross misses (beyond 4 robust sd) lose weight: ordinary traces fit as before


def huber_weights(resid: np.ndarray, k: float = HUBER_K) -> np.ndarray | None:
    """Huber IRLS weights min(1, k s / |r|) with s the robust sd; None when no residual exceeds k s.

    Least squares in log space is dragged far down by zeros that are not closed hours (an
    outage day, 20 % dropped samples: log(0 + c) is ~5 log units below the level); with these
    weights they pull like points k robust sd away, no further."""
    centre = float(np.median(resid))
    spread = 1.4826 * float(np.median(np.abs(resid - centre)))
    if spread <= 0:
        return None
    dist = np.abs(resid - centre) / (k * spread)
    if not (dist > 1).any():
        return None
    return np.minimum(1.0, 1.0 / np.maximum(dist, 1e-12))


# ------------------------------------------------------------------ calibrated intervals
# Split conformal on the model's own out-of-sample errors, normalised by horizon and by
# hour of the week. Hand-written on purpose: the errors are the residual filter's h-step
# forecast errors (each from the filter state before the point), which no conformal library
# (mapie, crepes) produces; what they would add is an np.quantile of the scores.
POOL = 10.0  # pseudo-points: an hour-of-week cell's variance shrinks toward its hour of day, that toward all
HOUR_NS = 3_600 * 10**9


def filter_states(resid: np.ndarray, F: np.ndarray, Q: np.ndarray, noise: float, P0: np.ndarray) -> np.ndarray:
    """Filtered state after each point (rows), with the steady-state gain of the residual model
    (state F x + noise Q, observed as the sum of its components + ``noise``); NaN = no observation."""
    nb = len(F)
    h = np.ones(nb)
    P = P0.copy()
    for _ in range(200):  # Riccati iteration to the steady state
        Pp = F @ P @ F.T + Q
        gain = Pp @ h / (h @ Pp @ h + noise)
        P = Pp - np.outer(gain, h @ Pp)
    out = np.empty((len(resid), nb))
    if nb == 1:
        phi, g, s = float(F[0, 0]), float(gain[0]), 0.0
        for i, value in enumerate(resid.tolist()):
            s *= phi
            if value == value:
                s += g * (value - s)
            out[i, 0] = s
        return out
    x = np.zeros(nb)
    for i, value in enumerate(resid.tolist()):
        x = F @ x
        if value == value:
            x = x + gain * (value - h @ x)
        out[i] = x
    return out


def cells(stamps: np.ndarray, step_ns: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(hour-of-week cell, hour-of-day cell) per stamp, at max(step, 1 h) resolution; None off a weekly grid."""
    width = max(step_ns, HOUR_NS)
    if WEEK_NS % width:
        return None
    week = ((stamps - MONDAY_NS) % WEEK_NS) // width
    day = week % max(1, 86_400 * 10**9 // width)
    return week, day


def cell_scale(resid: np.ndarray, stamps: np.ndarray, step_ns: int) -> np.ndarray | None:
    """Relative residual sd per hour-of-week cell (index: ``cells(...)[0]``), partially pooled:
    cell -> hour of day -> all, ``POOL`` pseudo-points each. None off a weekly grid."""
    found = cells(stamps, step_ns)
    ok = np.isfinite(resid)
    if found is None or ok.sum() < 20:
        return None
    week, day = found
    r2 = np.where(ok, resid, 0.0) ** 2
    total = float(r2[ok].mean())
    if total <= 0:
        return None
    nweek, nday = int(WEEK_NS // max(step_ns, HOUR_NS)), int(day.max()) + 1
    day_n = np.bincount(day[ok], minlength=nday)
    day_var = (np.bincount(day[ok], weights=r2[ok], minlength=nday) + POOL * total) / (day_n + POOL)
    week_n = np.bincount(week[ok], minlength=nweek)
    day_of_week_cell = np.arange(nweek) % nday
    week_var = (np.bincount(week[ok], weights=r2[ok], minlength=nweek) + POOL * day_var[day_of_week_cell]) / (
        week_n + POOL
    )
    return np.asarray(np.sqrt(week_var / total))


def horizon_buckets(horizon: int) -> np.ndarray:
    """Bucket of each horizon step 1..horizon: floor(log2 h) (1, 2-3, 4-7, ...)."""
    return np.floor(np.log2(np.arange(1, horizon + 1))).astype(int)


def conformal_quantiles(
    resid: np.ndarray,
    states: np.ndarray,
    weights: np.ndarray,
    sd: np.ndarray,
    scale: np.ndarray,
    quantiles: tuple[float, ...],
) -> np.ndarray:
    """Per horizon bucket (rows) and quantile (columns): the empirical quantile of the normalised
    h-step errors e / (sd_h * scale), e = resid[t + h] - weights[h - 1] @ state[t].

    ``weights`` (horizon x state) and ``sd`` (horizon) are the residual model's forecast weights
    and sd per step ahead; ``scale`` is each point's hour-of-week factor (NaN: leave the point out,
    as inside events, whose spread is sized separately). A bucket with too few errors copies the
    one before it."""
    horizon = len(sd)
    buckets = horizon_buckets(horizon)
    out = np.full((int(buckets[-1]) + 1, len(quantiles)), np.nan)
    n = len(resid)
    for b in range(len(out)):
        h = 2**b
        if h >= n - 20:
            break
        pred = states[: n - h] @ weights[h - 1]
        score = (resid[h:] - pred) / (sd[h - 1] * scale[h:])
        score = score[np.isfinite(score)]
        if score.size >= 50:
            out[b] = np.quantile(score, quantiles)
    for b in range(len(out)):
        if np.isnan(out[b]).any():
            out[b] = out[b - 1] if b else np.nan
    return out
