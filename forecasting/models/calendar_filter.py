"""The calendar model's residual filter with in-event nowcasting, as free functions over arrays.

Called by ``calendar_fit`` (``run_filter`` after each fit) and
``calendar_predict`` (on each update). The state is the residual signal (AR(1)[, local level],
``forecasting.models.residual``) plus, for each event whose window the points
reach, that occurrence's log-lift deviation from its kind (a constant with
the kind's prior spread, observed through the event's shape; on its ramp,
through the kind's onset profile where it has one, ``calendar_onset``). Outside events
with no occurrence in the state, a scalar steady-state filter runs (the fast
path, about 1 ms per 1-minute cycle).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from forecasting.base import Event
from forecasting.features import event_window, relevant
from forecasting.models.calendar_onset import onset_window
from forecasting.models.calendar_state import CalendarFit, prior_var
from forecasting.models.residual import Dynamics
from forecasting.timeutil import td_ns

Window = tuple[int, int, np.ndarray, np.ndarray]  # (first index, end index, shape weights, extra noise)


def drop_states(
    x: np.ndarray, P: np.ndarray, keys: Sequence[Event], gone: Sequence[int], nb: int
) -> tuple[np.ndarray, np.ndarray, list[Event]]:
    """The state without the occurrences at positions ``gone`` (of ``keys``); the first ``nb`` stay."""
    keep = list(range(nb)) + [k + nb for k in range(len(keys)) if k not in gone]
    return x[keep], P[np.ix_(keep, keep)], [e for k, e in enumerate(keys) if k not in gone]


def advance(
    x: np.ndarray,
    P: np.ndarray,
    keys: list[Event],
    resid: np.ndarray,
    active: np.ndarray,
    windows: Mapping[Event, Window],
    priors: Mapping[Event, float],
    dyn: Dynamics,
    gain: float,
) -> tuple[np.ndarray, np.ndarray, list[Event]]:
    """Advance state (x, P, keys) over ``resid`` (NaN = no observation).

    ``active`` marks the points inside some event window; ``windows`` gives each event's
    index range, shape weights and the extra observation noise of its ramp; ``priors`` the
    prior variance of its deviation; ``gain`` the scalar steady-state gain of the fast path."""
    nb = len(dyn.transition)
    phi, innov, noise = dyn.phi, dyn.innov, dyn.noise
    F, Q = dyn.transition, dyn.process
    # Occurrences whose window ended before these points no longer matter.
    gone = [k for k, e in enumerate(keys) if e not in windows]
    if gone:
        x, P, keys = drop_states(x, P, keys, gone, nb)
    n = len(resid)
    i = 0
    while i < n:
        if nb == 1 and not keys and not active[i]:
            # Plain steady-state filter on the level: the fast path outside events.
            s, p = float(x[0]), float(P[0, 0])
            while i < n and not active[i]:
                value = resid[i]
                s, p = phi * s, phi * phi * p + innov
                if value == value:  # not NaN
                    s += gain * (value - s)
                    p *= 1 - gain
                i += 1
            x, P = np.array([s]), np.array([[p]])
            continue
        for event, (i0, _i1, _, _) in windows.items():
            if i0 == i and event not in keys:
                keys = [*keys, event]
                x = np.append(x, 0.0)
                grown = np.zeros((len(x), len(x)))
                grown[:-1, :-1] = P
                grown[-1, -1] = priors[event]
                P = grown
        ended = [k for k, e in enumerate(keys) if windows[e][1] <= i]
        if ended:
            x, P, keys = drop_states(x, P, keys, ended, nb)
        x[:nb] = F @ x[:nb]
        P[:nb, :] = F @ P[:nb, :]
        P[:, :nb] = P[:, :nb] @ F.T
        P[:nb, :nb] += Q
        value = resid[i]
        if value == value:
            h = np.empty(len(x))
            h[:nb] = 1.0
            r = noise
            for k, event in enumerate(keys, start=nb):
                i0, _, w, extra = windows[event]
                h[k] = w[i - i0]
                r += extra[i - i0]
            ph = P @ h
            gain_vec = ph / (h @ ph + r)
            x = x + gain_vec * (value - h @ x)
            P = P - np.outer(gain_vec, ph)
        i += 1
    return x, P, keys



State = tuple[np.ndarray, np.ndarray, tuple[Event, ...]]  # (x, P, keys) of a ``CalendarFit``


def run_filter(fit: CalendarFit, resid: np.ndarray, stamps: np.ndarray, *, reset: bool) -> State:
    """``fit``'s filter state (x, P, keys) advanced over ``resid`` (NaN = no observation) at ``stamps``.

    The state is the residual level (AR(1)) plus, for each event whose window the points
    reach, that occurrence's log-lift deviation from its kind (a constant with the kind's
    prior spread, observed through the event's shape): in-event nowcasting. Once points
    inside an event are seen, its deviation is estimated and its variance shrinks, so the
    rest of the event is forecast at the lift actually realised, with a tighter interval.
    ``reset`` starts from the dynamics' initial state (after a fit) over the recent points.
    ``fit`` is unchanged; the caller puts the state in a new fit (``dataclasses.replace``)."""
    dyn, nb = fit.dyn, fit.nb
    x, P, keys = fit.x, fit.P, list(fit.keys)
    if reset:
        rate = (1 - fit.gain) * dyn.phi
        if nb == 1 and rate > 0:  # a level (nb 2) needs the whole fitted history
            keep = min(len(resid), max(200, int(8 / max(1e-6, 1 - rate))))
            resid, stamps = resid[-keep:], stamps[-keep:]
        x, P = dyn.initial()
        keys = []
    if not len(resid):
        return x, P, tuple(keys)
    step = fit.step
    step_ns = td_ns(step)
    first, last = pd.Timestamp(int(stamps[0]), tz="UTC"), pd.Timestamp(int(stamps[-1]), tz="UTC")
    windows: dict[Event, Window] = {}
    active = np.zeros(len(resid), dtype=bool)
    kind_at, _, _ = fit.layout.offsets()
    nbins = fit.bins.width
    shifted = False
    for event in relevant(fit.events, first, last, step):
        i0, i1, bins = event_window(stamps, event, step_ns)
        if i0 < i1:
            w = bins @ fit.bins.nominal
            prior = prior_var(fit, event)
            # Where the kind's shape itself misses (its ramp), a residual says less about the lift.
            shape = fit.shape_var.get(event.kind)
            extra = np.zeros(len(w))
            if shape is not None:
                extra = np.maximum(bins @ shape - prior * w**2, 0.0)
            j = kind_at.get(event.kind)
            if j is not None and fit.onset:
                coef = fit.beta_e[j : j + nbins]
                found = onset_window(fit.onset, event, stamps[i0:i1], step_ns, bins @ coef, w,
                                     float(coef[fit.bins.plat]), prior)
                if found is not None:  # its ramp read against the kind's onset profile (``calendar_onset``)
                    mask, shift, share, more = found
                    if not shifted:
                        resid, shifted = resid.copy(), True
                    resid[i0:i1] += shift
                    w, extra = np.where(mask, share, w), np.where(mask, more, extra)
            windows[event] = (i0, i1, w, extra)
            active[i0:i1] = True
    priors = {event: prior_var(fit, event) for event in windows}
    # Copies: ``advance`` may write into its state arrays, and ``fit`` keeps its own.
    x, P, keys = advance(x.copy(), P.copy(), keys, resid, active, windows, priors, dyn, fit.gain)
    return x, P, tuple(keys)
