"""Forecasting from and updating a ``CalendarFit``: free functions, no model state.

Called by ``forecasting.models.calendar`` (``Calendar.predict`` and
``Calendar.update``). ``update_calendar`` returns a new fit with the
residual filter advanced over the new points (O(new points); the calendar
coefficients stay as fitted); ``predict_calendar`` gives the quantile
forecast of the steps after the fit's last point: calendar + event lifts +
the filter's level, conformal (or Gaussian) residual quantiles, widened by
each event's lift uncertainty (its nowcast, once under way), zero in closed
hours.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from forecasting.base import Event, Forecast
from forecasting.features import event_window, relevant
from forecasting.models.calendar_filter import run_filter
from forecasting.models.calendar_kernels import horizon_buckets, in_zero_slots
from forecasting.models.calendar_state import CalendarFit, cell_factor, prior_var, seasonal
from forecasting.models.calendar_stats import continuation
from forecasting.models.residual import Z
from forecasting.series import QUANTILES, assemble, check_horizon, future_index
from forecasting.timeutil import stamps_ns, td_ns


def center(fit: CalendarFit, idx: pd.DatetimeIndex, events: Sequence[Event]) -> np.ndarray:
    """Calendar + learned event log lifts (no residual level) over ``idx``."""
    step = fit.step
    evs = relevant(events, idx[0], idx[-1], step)
    # The calendar alone stays within the fitted range (no Fourier overshoot past the history).
    mu = np.clip(seasonal(fit.terms, idx, step) @ fit.beta_s, fit.zlo, fit.zhi)
    if fit.beta_e.size:
        mu = mu + fit.layout.design(idx, evs, step) @ fit.beta_e
    stamps, step_ns = stamps_ns(idx), td_ns(step)
    for event in evs:
        if event.kind in fit.layout.kinds:
            continue
        if not event.expected_lift:  # a kind never seen, no lift announced: it may lift or lower, so no lift
            continue  # (its band covers the seen kinds' lifts: ``prior_var``)
        lift = math.log(event.expected_lift)
        i0, i1, bins = event_window(stamps, event, step_ns)
        mu[i0:i1] += bins @ (lift * fit.bins.nominal)
    return np.asarray(mu)


def update_calendar(fit: CalendarFit, new_points: pd.Series) -> CalendarFit:
    """``fit`` after absorbing the points after its last one: residuals against the fitted
    calendar, then the filter state. ``fit`` itself is unchanged."""
    step = fit.step
    ext = continuation(new_points, fit.last, step)
    if ext is None:
        return fit
    stamps = stamps_ns(ext.index)
    z = np.log(ext.to_numpy() + fit.offset)
    z[in_zero_slots(stamps, td_ns(step), fit.closed)] = np.nan
    resid = z - center(fit, ext.index, fit.events)
    x, P, keys = run_filter(fit, resid, stamps, reset=False)
    return replace(fit, x=x, P=P, keys=keys, last=ext.index[-1])


def predict_calendar(fit: CalendarFit, horizon: int, events: Sequence[Event] = (), *, model: str) -> Forecast:
    """Quantile forecast of the ``horizon`` steps after the fit's last point, named ``model``."""
    horizon = check_horizon(horizon)
    step = fit.step
    idx = future_index(fit.last, step, horizon)
    x, P, nb = fit.x, fit.P, fit.nb
    Hb, var = fit.dyn.ahead(horizon)
    base = np.einsum("ij,jk,ik->i", Hb, P[:nb, :nb], Hb)  # what the state's own spread adds
    mu = center(fit, idx, events) + Hb @ x[:nb]
    var = var + base
    # Event-lift uncertainty. Occurrences already under way carry their nowcast deviation
    # (point forecast moved toward the realised lift, spread shrunk by what was seen);
    # the others their kind's prior spread. Overlapping events' lifts multiply, so their
    # log-lift deviations add, and so do their variances.
    H = np.zeros((horizon, len(x)))
    H[:, :nb] = Hb
    ev_var = np.zeros(horizon)
    state = {event: k for k, event in enumerate(fit.keys, start=nb)}
    stamps, step_ns = stamps_ns(idx), td_ns(step)
    for event in relevant(events, idx[0], idx[-1], step):
        i0, i1, bins = event_window(stamps, event, step_ns)
        if i0 >= i1:
            continue
        w = bins @ fit.bins.nominal
        prior = prior_var(fit, event) * w**2
        shape = fit.shape_var.get(event.kind)
        if shape is not None:  # what the kind's shape misses beyond its lift spread
            ev_var[i0:i1] += np.maximum(bins @ shape - prior, 0.0)
        k = state.get(event)
        if k is None:
            ev_var[i0:i1] += prior
        else:
            H[i0:i1, k] = w
    if len(x) > nb:
        mu = mu + H[:, nb:] @ x[nb:]
        joint = np.einsum("ij,jk,ik->i", H, P, H)
        ev_var += np.maximum(joint - base, 0.0)
    sd = np.sqrt(var)
    if fit.cq is not None:  # conformal: by horizon bucket and hour-of-week cell
        rows = np.minimum(horizon_buckets(horizon), len(fit.cq) - 1)
        own = np.sqrt(var - base) * cell_factor(fit.cell_scale, stamps, step)
        zq = {q: fit.cq[rows, j] * own for j, q in enumerate(QUANTILES)}
    else:
        zq = {q: fit.dyn.zq[q] * sd for q in QUANTILES}
    median = np.exp(mu) - fit.offset
    offsets = {}
    for q in QUANTILES:
        spread = zq[q]
        extra = Z[q] ** 2 * ev_var
        off = math.copysign(1.0, Z[q]) * np.sqrt(spread**2 + extra) if Z[q] else spread
        offsets[q] = np.exp(mu + off) - fit.offset - median
    mean = np.exp(mu + (var + ev_var) / 2) - fit.offset
    closed = in_zero_slots(stamps, step_ns, fit.closed)
    if closed.any():  # closed hours: zero demand, zero spread
        median, mean = np.where(closed, 0.0, median), np.where(closed, 0.0, mean)
        offsets = {q: np.where(closed, 0.0, off) for q, off in offsets.items()}
    return assemble(idx, median, offsets, model=model, mean=mean)
