"""Fitting the calendar model: history + events -> a frozen ``CalendarFit``.

Called by ``forecasting.models.calendar`` (``Calendar.fit``). What the fit does
is described in that module's docstring: a ridge least-squares fit of log
demand on the seasonal and event design (closure days left out as gaps,
Huber-reweighted, the event priors
weighed by the residual noise at daily steps), per-kind lift spreads and
partial pooling (``calendar_stats``), the residual dynamics and their split
conformal calibration (``calendar_kernels``), then the residual filter run
over the recent points (``calendar_filter.run_filter``). ``short_history``
says when a history is too short to fit (the model then falls back to
``seasonal-naive``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecasting.base import Event
from forecasting.features import BinSet, EventLayout, bin_set, event_window, relevant
from forecasting.models.calendar_filter import run_filter
from forecasting.models.calendar_kernels import (
    cell_scale,
    closure_days,
    conformal_quantiles,
    filter_states,
    huber_weights,
    in_zero_slots,
    log_offset,
    robust_clip,
    zero_slots,
)
from forecasting.models.calendar_onset import onset_profiles
from forecasting.models.calendar_predict import center
from forecasting.models.calendar_state import CalendarConfig, CalendarFit, Terms, cell_factor
from forecasting.models.calendar_stats import lift_spread, pool_kinds, shape_spread
from forecasting.models.residual import Dynamics, calibrate
from forecasting.models.shared_design import FitDesign, fit_design, seasonal_width
from forecasting.series import DAY, QUANTILES, WEEK, prepare_history, step_of
from forecasting.timeutil import stamps_ns, td_ns

MIN_SPAN = 2 * DAY  # sub-daily steps
MIN_COARSE_POINTS = 14  # daily and coarser steps: two weeks of daily data
YEAR = pd.Timedelta(days=365)
LONG_SPAN = 26 * WEEK  # sub-daily: from half a year on, own shapes for every weekday and recency weights
PRIOR_SD = 0.5  # prior spread of an event bin's log lift around its prior (daily and coarser steps)
HOLDOUT = 4 * WEEK  # sub-daily: intervals calibrated on the out-of-sample errors of the last four weeks ...
HOLDOUT_SPAN = 8 * WEEK  # ... once the history holds eight (the fits without them keep four or more),
HOLDOUT_EVERY = WEEK  # from a refit every week (daily refits gave the same coverage to 3 digits: 7x the solves)


def short_history(hist: pd.Series) -> str | None:
    """Why a prepared history is too short for the calendar model (None when it is not)."""
    step = step_of(hist)
    span = hist.index[-1] - hist.index[0]
    coarse = step >= DAY
    if (span < MIN_SPAN) if not coarse else (len(hist) < MIN_COARSE_POINTS):
        need = "two days of history" if not coarse else f"{MIN_COARSE_POINTS} steps of history"
        return f"history spans {span} at step {step}; needs {need}"
    return None


def fit_calendar(
    history: pd.Series, events: Sequence[Event] = (), config: CalendarConfig | None = None
) -> CalendarFit:
    """Fit the calendar regression, per-kind lifts and the residual filter to ``history``.

    ValueError naming the history when it is too short (``short_history``)."""
    hist = prepare_history(history)
    reason = short_history(hist)
    if reason is not None:
        raise ValueError(f"history: {reason}")
    return fit_prepared(hist, events, config or CalendarConfig())


def _terms(config: CalendarConfig, step: pd.Timedelta, span: pd.Timedelta) -> Terms:
    if step >= DAY:
        # Daily and coarser steps: no daily shape; a weekly cycle when steps divide a week
        # (at daily steps 3 pairs: a free level per weekday), a yearly one once a year is seen.
        week_steps = int(WEEK / step) if WEEK % step == pd.Timedelta(0) else 0
        weekly = min(config.weekly_harmonics, (week_steps - 1) // 2) if span >= 2 * WEEK else 0
        return Terms(0, weekly, 0, False, config.yearly_harmonics if span >= 2 * YEAR else 0)
    daily = min(config.daily_harmonics, max(0, int(DAY / step) // 2 - 1))
    return Terms(
        daily=daily,
        weekly=config.weekly_harmonics if span >= WEEK else 0,
        # Own daily shapes for Fri/Sat/Sun need several of each, or one-off days (and their events) get absorbed.
        day_types=min(daily, config.day_type_harmonics) if span >= 3 * WEEK else 0,
        day_levels=span >= 2 * WEEK - DAY,
        yearly=0,
        # Half a year holds ~26 of each weekday: enough for each its own shape, not just Fri/Sat/Sun.
        weekdays=span >= LONG_SPAN and daily > 0 and config.day_type_harmonics > 0,
    )


def _recency(
    config: CalendarConfig, step: pd.Timedelta, span: pd.Timedelta
) -> tuple[pd.Timedelta, float, float] | None:
    """(half-life, floor, event rows' floor) of the regression's recency weights, or None (off: daily and coarser steps,
    whose yearly terms need every year, and histories under ``LONG_SPAN``, whose habits had no time to drift)."""
    if step >= DAY or span < LONG_SPAN or not config.recency_half_life:
        return None
    return config.recency_half_life * WEEK, config.recency_floor, config.event_floor


@dataclass(frozen=True)
class Normal:
    """The normal equations the (sub-daily) fit solved: A beta = b, each observed row weighed by ``row_w``
    (recency times Huber weight), so a fit leaving rows out is A, b minus their share (``holdout_resid``)."""

    A: np.ndarray
    b: np.ndarray
    row_w: np.ndarray


def _regress(
    design: FitDesign, z: np.ndarray, obs: np.ndarray, prior: np.ndarray, config: CalendarConfig, coarse: bool,
) -> tuple[np.ndarray, np.ndarray, Normal]:
    """Ridge coefficients of ``z`` on the design over the observed rows, Huber-reweighted, the
    residuals of those rows and the normal equations solved. The design's observed rows and Gram matrix
    are shared (``shared_design``); with recency weights (``design.weights``) it is the weighted fit."""
    rw = design.weights
    penalty = np.full(design.columns, 1e-6 * (max(1, int(obs.sum())) if rw is None else max(1.0, float(rw.sum()))))
    penalty[0] = 0.0
    penalty[design.width:] = config.prior_weight
    Xo, zo = design.observed, z[obs]
    A = design.gram + np.diag(penalty)
    b = (Xo.T @ zo if rw is None else Xo.T @ (rw * zo)) + penalty * prior
    beta = np.linalg.solve(A, b)
    # Gross outliers (an outage's zeros, sporadic dropped samples) are down-weighted (Huber).
    A0, b0 = A, b
    row_w = np.ones(len(zo)) if rw is None else np.asarray(rw, dtype=float)
    base_w = row_w
    for _ in range(2):
        w = huber_weights(zo - Xo @ beta)
        if w is None:
            break
        out = np.flatnonzero(w < 1)  # few rows: update the normal equations, do not rebuild them
        cut = Xo[out] * ((1 - w[out]) if rw is None else rw[out] * (1 - w[out]))[:, None]
        A, b = A0 - cut.T @ Xo[out], b0 - cut.T @ zo[out]
        row_w = base_w * w
        beta = np.linalg.solve(A, b)
    normal = Normal(A, b, row_w)
    if coarse:
        # At daily steps an occurrence is one point, and the noise of one day (weather) can be
        # as large as a holiday's lift: weigh the event priors as the Bayesian ridge does,
        # residual variance / prior variance (prior sd PRIOR_SD in log lift), not a fixed weight.
        noise = float(np.var(zo - Xo @ beta))
        extra = np.zeros(design.columns)
        extra[design.width:] = max(0.0, noise / PRIOR_SD**2 - config.prior_weight)
        beta = np.linalg.solve(A + np.diag(extra), b + extra * prior)
    return beta, zo - Xo @ beta, normal


def holdout_resid(
    design: FitDesign, z: np.ndarray, obs: np.ndarray, normal: Normal, stamps: np.ndarray, step: pd.Timedelta,
) -> np.ndarray | None:
    """Out-of-sample residuals of the last ``HOLDOUT`` (rolling origin every ``HOLDOUT_EVERY``): each
    week's from the fit on the points before it, as forecasts issued from that week's start would see
    them; NaN elsewhere. None on a history under ``HOLDOUT_SPAN`` (a fit without its last weeks would be
    short of data).

    The fits leaving out the last k weeks are the full fit's normal equations minus those weeks' rows
    (with their recency and Huber weights), one week at a time: a rank update and a solve per week."""
    if stamps[-1] - stamps[0] < td_ns(HOLDOUT_SPAN):
        return None
    pos = np.flatnonzero(obs)
    Xo, zo = design.observed, z[obs]
    end = int(stamps[-1]) + td_ns(step)
    every = td_ns(HOLDOUT_EVERY)
    cuts = np.searchsorted(stamps[pos], end - every * np.arange(1, int(HOLDOUT / HOLDOUT_EVERY) + 1))
    A, b = normal.A.copy(), normal.b.copy()
    out = np.full(len(z), np.nan)
    upto = len(pos)
    for k in cuts.tolist():
        if k >= upto:
            continue
        X, zs, w = Xo[k:upto], zo[k:upto], normal.row_w[k:upto]
        A -= X.T @ (X * w[:, None])
        b -= X.T @ (w * zs)
        out[pos[k:upto]] = zs - X @ np.linalg.solve(A, b)
        upto = k
    return out


def _event_prior(layout: EventLayout, evs: Sequence[Event], width: int, bins: BinSet) -> np.ndarray:
    """Prior of the event coefficients: a kind's mean ``expected_lift`` (else no lift) on its bins;
    recurring names are a deviation from their kind, prior 0."""
    prior = np.zeros(width)
    kind_at, _, _ = layout.offsets()
    for kind, j in kind_at.items():
        lifts = [e.expected_lift for e in evs if e.kind == kind and e.expected_lift]
        if lifts:
            prior[j : j + bins.width] = math.log(float(np.mean(lifts))) * bins.nominal
    return prior


def _in_events(stamps: np.ndarray, evs: Sequence[Event], step_ns: int) -> np.ndarray:
    """Boolean mask: which stamps lie in an event's window (its ramp and decay included)."""
    inside = np.zeros(len(stamps), dtype=bool)
    for event in evs:
        i0, i1, _ = event_window(stamps, event, step_ns)
        inside[i0:i1] = True
    return inside


def _calibrate(resid: np.ndarray, step: pd.Timedelta) -> tuple[Dynamics, float]:
    """Residual dynamics (``forecasting.models.residual``) and the fast path's steady-state gain."""
    recent = max(500, int(8 * WEEK / step))  # eight weeks (at least 500 points)
    dyn = calibrate(robust_clip(resid), recent, local_level=step >= DAY)
    p, gain = dyn.initial()[1][0, 0], 0.0
    for _ in range(200):
        gain = p / (p + dyn.noise)
        p = dyn.phi**2 * (1 - gain) * p + dyn.innov
    return dyn, gain


def _conformal(
    resid: np.ndarray, stamps: np.ndarray, evs: Sequence[Event], step: pd.Timedelta, dyn: Dynamics,
    oos: np.ndarray | None = None,
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """(hour-of-week cell scale, interval quantiles) from the model's own out-of-sample errors
    (split conformal, ``calendar_kernels``): the residual filter's h-step errors, normalised by the
    horizon's sd and the hour-of-week cell's residual scale (from the in-sample residuals of the whole
    history), over ``oos`` (the rolling-origin residuals of the last four weeks, ``holdout_resid``)
    or, without it (a short history, daily steps), the in-sample residuals of the recent eight weeks.
    Event windows are left out (their spread is the kind's, added in ``predict``)."""
    step_ns = td_ns(step)
    resid = robust_clip(resid)  # as for the dynamics: an outage day must not set every interval
    scale = cell_scale(resid, stamps, step_ns)
    if oos is None:
        recent = max(500, int(8 * WEEK / step))
    else:  # the rolling-origin residuals of the last weeks: what the fit's forecasts really missed by
        recent = int(HOLDOUT / step)
        resid = robust_clip(oos)
    r, st = resid[-recent:], stamps[-recent:]
    factor = cell_factor(scale, st, step)
    for event in evs:
        i0, i1, _ = event_window(st, event, step_ns)
        factor[i0:i1] = np.nan
    horizon = max(2, min(int(2 * DAY / step), len(r) // 2))
    weights, var = dyn.ahead(horizon)
    states = filter_states(r, dyn.transition, dyn.process, dyn.noise, dyn.initial()[1])
    cq = conformal_quantiles(r, states, weights, np.sqrt(var), factor, tuple(QUANTILES))
    return scale, (None if np.isnan(cq).any() else cq)


def fit_prepared(hist: pd.Series, events: Sequence[Event], config: CalendarConfig) -> CalendarFit:
    """``fit_calendar`` on a history already through ``prepare_history`` and long enough."""
    step = step_of(hist)
    span = hist.index[-1] - hist.index[0]
    coarse = step >= DAY
    keep = config.max_points if not coarse else min(config.max_points, int(config.max_years * YEAR / step) + 1)
    if len(hist) > keep:
        hist = hist.iloc[-keep:]
        span = hist.index[-1] - hist.index[0]
    bins = bin_set(step)
    events = tuple(events)
    terms = _terms(config, step, span)

    y = hist.to_numpy()
    offset = log_offset(y)
    z = np.log(y + offset)
    idx = hist.index
    stamps = stamps_ns(idx)
    # Closed hours (always zero) are left to the forecast's zero, not to the log regression.
    closed = zero_slots(stamps, y, td_ns(step)) if span >= 2 * WEEK else np.zeros(0, dtype=np.int64)
    z[in_zero_slots(stamps, td_ns(step), closed)] = np.nan
    evs = relevant(events, idx[0], idx[-1], step)
    # Unannounced closure days are gaps for the regression and the interval's calibration (not the open
    # days' calendar, nor their errors); the residual filter still runs over them (below).
    shut = (closure_days(stamps, y, np.isfinite(z), _in_events(stamps, evs, td_ns(step)), td_ns(step))
            if not coarse else np.zeros(len(z), dtype=bool))
    z_shut = z[shut]
    z[shut] = np.nan
    obs = np.isfinite(z)
    if obs.sum() < seasonal_width(terms, idx, step) + 2:  # (nearly) always zero: nothing for a regression to fit
        closed = np.zeros(0, dtype=np.int64)
        z = np.log(y + offset)
        obs = np.isfinite(z)
    zlo, zhi = float(np.min(z[obs])), float(np.max(z[obs]))
    recency = _recency(config, step, span)
    design = fit_design(terms, idx, step, evs, obs, config.shape_harmonics, recency)  # shared by fits on this grid
    layout, width = design.layout, design.width
    prior = np.zeros(design.columns)
    prior[width:] = _event_prior(layout, evs, design.columns - width, bins)
    beta, resid_obs, normal = _regress(design, z, obs, prior, config, coarse)
    beta_s, beta_e = beta[:width], beta[width:]
    resid = np.full(len(z), np.nan)
    resid[obs] = resid_obs
    dyn, gain = _calibrate(resid, step)
    oos = None if coarse else holdout_resid(design, z, obs, normal, stamps, step)
    scale, cq = _conformal(resid, stamps, evs, step, dyn, oos)
    kind_sigma, kind_n = lift_spread(stamps, resid, evs, layout.kinds, config.lift_sigma)
    shape_var = (
        shape_spread(stamps, resid, evs, layout.kinds, td_ns(step), bins.width, dyn.var)
        if config.shape_spread else {}
    )
    onset = onset_profiles(stamps, resid, evs, layout, beta_e, td_ns(step), dyn.var) if not coarse else {}
    beta_e = pool_kinds(beta_e, prior[width:], layout, kind_sigma, kind_n, PRIOR_SD)
    kind_at, _, _ = layout.offsets()
    plats = [beta_e[j + bins.plat] for j in kind_at.values()]
    x0, P0 = dyn.initial()
    fit = CalendarFit(
        config=config, step=step, events=events, terms=terms, offset=offset, closed=closed,
        zlo=zlo, zhi=zhi, layout=layout, beta_s=beta_s, beta_e=beta_e,
        pooled_var=float(np.mean(np.square(plats))) if plats else 0.0, dyn=dyn, gain=gain, cell_scale=scale, cq=cq,
        kind_sigma=kind_sigma, kind_n=kind_n, shape_var=shape_var, last=idx[-1], x=x0, P=P0,
        onset=onset,
    )
    if shut.any():  # what the filter sees of a closure: its residuals against the calendar just fitted
        lo, hi = np.flatnonzero(shut)[[0, -1]]
        resid[shut] = z_shut - center(fit, idx[lo : hi + 1], events)[shut[lo : hi + 1]]
    x, P, keys = run_filter(fit, resid, stamps_ns(idx), reset=True)
    return replace(fit, x=x, P=P, keys=keys)
