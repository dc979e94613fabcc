"""``calendar``: seasonality plus known events, the Pitboss forecaster.

Log demand is a ridge-regularised least-squares fit of a calendar design
matrix (daily and weekly Fourier terms; own daily shapes for Fridays,
Saturdays and Sundays once the history holds three weeks; see
``forecasting.features``) plus event regressors: per event ``kind`` a
ramp-up / plateau / decay shape whose log lift is learned from the past
events in the history (day-long kinds, such as holidays, also learn a daily
shape), and per recurring event *name* (a yearly holiday) a deviation from
its kind. The ridge prior pulls a kind toward its ``expected_lift`` (else no
lift) only where data is thin, and a kind seen on few occasions is then
shrunk toward it by partial pooling (n tau^2 / (n tau^2 + sigma^2): n
occurrences, sigma the spread of its lift across them, tau = ``PRIOR_SD``),
so one lucky or unlucky occurrence is not taken for the kind's lift (lifts
may be below 1). A kind never seen is forecast with its
``expected_lift`` (else the pooled lift of the kinds seen) and a wider
interval. What the calendar does not explain (weather, a busy day) is
tracked by a steady-state Kalman filter on the residuals (AR(1) signal +
white noise), so short horizons start from the current level and decay to
the calendar. Week slots that were zero in every observed week (closed
hours) are forecast as zero and left out of the fit; other zeros (outages)
are Huber-weighted (``calendar_kernels``).

Quantiles: split conformal on the model's own h-step errors over the recent
eight weeks (the residual filter's forecasts from the state before each
point), normalised by the horizon's sd and the hour-of-week cell's residual
scale, per horizon bucket (``calendar_kernels``). Event windows are left out
of that and widened by the spread of the kind's lift across its past
occurrences, times (1 + 1/n) for a kind seen n times, plus what its shape
bins missed (its ramp); overlapping events add their variances. In-event
nowcast (``calendar_filter``): once points inside an event are seen, the rest
of it is forecast at the lift realised. ``update``: O(new points). At most
``max_points`` (28 days of 1-minute data) are used.

Daily and coarser steps (daily active players, bets per day): no daily
shape; weekly Fourier terms (at daily steps a free level per weekday) and,
once the history holds two years (one year cannot tell the yearly cycle
from growth), yearly ones; events get whole-step bins (the two steps
before, the steps the event overlaps, the two after: a holiday's eve and
its catch-up), per kind and per recurring name; their ridge prior is
weighed by the residual noise (a day's weather can match a holiday); the
residual filter adds a non-decaying local level (``models.residual``); only the last ``max_years`` (4) are fitted,
as weekday habits drift over decades. Histories under two days (sub-daily)
or 14 steps (coarser) fall back to ``seasonal-naive`` with a warning naming
the reason (``fallback_reason``; forecasts carry ``fallback``). Used through
``forecasting.registry``.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from forecasting.base import Event, Forecast
from forecasting.features import (
    bin_set,
    event_window,
    plan_layout,
    relevant,
    seasonal_design,
)
from forecasting.models.calendar_filter import advance
from forecasting.models.calendar_kernels import (
    cell_scale,
    cells,
    conformal_quantiles,
    filter_states,
    horizon_buckets,
    huber_weights,
    in_zero_slots,
    log_offset,
    robust_clip,
    zero_slots,
)
from forecasting.models.calendar_stats import continuation, lift_spread, pool_kinds, shape_spread
from forecasting.models.residual import Z, calibrate
from forecasting.models.seasonal_naive import SeasonalNaive
from forecasting.series import (
    DAY,
    QUANTILES,
    WEEK,
    assemble,
    check_horizon,
    future_index,
    prepare_history,
    step_of,
)
from forecasting.timeutil import stamps_ns, td_ns

MIN_SPAN = 2 * DAY  # sub-daily steps
MIN_COARSE_POINTS = 14  # daily and coarser steps: two weeks of daily data
YEAR = pd.Timedelta(days=365)
PRIOR_SD = 0.5  # prior spread of an event bin's log lift around its prior (daily and coarser steps)


class Calendar:
    """Fourier seasonality + per-kind event lifts in log space, Kalman-corrected level."""

    name: ClassVar[str] = "calendar"
    SHAPE_SPREAD: ClassVar[bool] = True

    def __init__(
        self,
        daily_harmonics: int = 10,
        weekly_harmonics: int = 3,
        day_type_harmonics: int = 6,
        shape_harmonics: int = 4,
        yearly_harmonics: int = 10,
        max_points: int = 40_320,
        max_years: float = 4.0,
        prior_weight: float = 0.05,
        lift_sigma: float = 0.2,
        unseen_sigma: float = 0.35,
        unknown_sigma: float = 0.5,
    ) -> None:
        if min(daily_harmonics, weekly_harmonics, day_type_harmonics, shape_harmonics, yearly_harmonics) < 0:
            raise ValueError("harmonics: expected a non-negative number")
        if prior_weight <= 0:
            raise ValueError(f"prior_weight: expected a positive weight, got {prior_weight}")
        if max_points < 100:
            raise ValueError(f"max_points: expected at least 100, got {max_points}")
        self.daily_harmonics = daily_harmonics
        self.weekly_harmonics = weekly_harmonics
        self.day_type_harmonics = day_type_harmonics
        self.shape_harmonics = shape_harmonics
        self.yearly_harmonics = yearly_harmonics  # daily and coarser steps only
        self.max_years = max_years  # daily and coarser steps: older years are dropped (habits drift)
        self.max_points = max_points  # 28 days of 1-minute data by default: older points are dropped
        # Ridge weight of the event priors, sigma^2 / tau^2 with log noise sigma ~0.1 and prior sd tau ~0.5:
        # negligible once a kind has data, decisive for bins it has none in.
        self.prior_weight = prior_weight
        self.lift_sigma = lift_sigma
        self.unseen_sigma = unseen_sigma
        self.unknown_sigma = unknown_sigma
        self._fallback: SeasonalNaive | None = None
        self.fallback_reason: str | None = None  # why the last fit fell back to seasonal-naive
        self._fitted = False

    # ------------------------------------------------------------------ fit
    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        """Fit the calendar regression, per-kind lifts and the residual filter."""
        hist = prepare_history(history)
        step = step_of(hist)
        self._fitted = True
        span = hist.index[-1] - hist.index[0]
        coarse = step >= DAY
        if (span < MIN_SPAN) if not coarse else (len(hist) < MIN_COARSE_POINTS):
            need = "two days of history" if not coarse else f"{MIN_COARSE_POINTS} steps of history"
            self.fallback_reason = f"history spans {span} at step {step}; needs {need}"
            warnings.warn(f"calendar: {self.fallback_reason}, falling back to seasonal-naive", stacklevel=2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._fallback = SeasonalNaive().fit(hist)
            return self
        self._fallback, self.fallback_reason = None, None
        keep = self.max_points if not coarse else min(self.max_points, int(self.max_years * YEAR / step) + 1)
        if len(hist) > keep:
            hist = hist.iloc[-keep:]
            span = hist.index[-1] - hist.index[0]
        self._step = step
        self._bins = bin_set(step)
        self._events = list(events)
        if coarse:
            # Daily and coarser steps: no daily shape; a weekly cycle when steps divide a week
            # (at daily steps 3 pairs: a free level per weekday), a yearly one once a year is seen.
            week_steps = int(WEEK / step) if WEEK % step == pd.Timedelta(0) else 0
            self._daily, self._day_types, self._day_levels = 0, 0, False
            self._weekly = min(self.weekly_harmonics, (week_steps - 1) // 2) if span >= 2 * WEEK else 0
            self._yearly = self.yearly_harmonics if span >= 2 * YEAR else 0
        else:
            day_steps = int(DAY / step)
            self._daily = min(self.daily_harmonics, max(0, day_steps // 2 - 1))
            self._weekly = self.weekly_harmonics if span >= WEEK else 0
            # Own daily shapes for Fri/Sat/Sun need several of each, or one-off days (and their events) get absorbed.
            self._day_types = min(self._daily, self.day_type_harmonics) if span >= 3 * WEEK else 0
            self._day_levels = span >= 2 * WEEK - DAY
            self._yearly = 0

        y = hist.to_numpy()
        self._offset = log_offset(y)
        z = np.log(y + self._offset)
        idx = hist.index
        stamps = stamps_ns(idx)
        # Closed hours (always zero) are left to the forecast's zero, not to the log regression.
        self._closed = zero_slots(stamps, y, td_ns(step)) if span >= 2 * WEEK else np.zeros(0, dtype=np.int64)
        z[in_zero_slots(stamps, td_ns(step), self._closed)] = np.nan
        evs = relevant(self._events, idx[0], idx[-1], step)
        S = self._seasonal(idx)
        obs = np.isfinite(z)
        if obs.sum() < S.shape[1] + 2:  # (nearly) always zero: nothing for a regression to fit
            self._closed = np.zeros(0, dtype=np.int64)
            z = np.log(y + self._offset)
            obs = np.isfinite(z)
        self._zlo, self._zhi = float(np.min(z[obs])), float(np.max(z[obs]))
        layout = plan_layout(evs, idx, obs, step, self.shape_harmonics)
        self._layout = layout
        self._kinds = list(layout.kinds)
        E = layout.design(idx, evs, step)
        X = np.hstack([S, E])
        prior = np.zeros(X.shape[1])
        penalty = np.full(X.shape[1], 1e-6 * max(1, int(obs.sum())))
        penalty[0] = 0.0
        kind_at, _, _ = layout.offsets()  # recurring names: deviation from the kind, prior 0
        penalty[S.shape[1] :] = self.prior_weight
        nominal = self._bins.nominal
        for kind, j in kind_at.items():
            lifts = [e.expected_lift for e in evs if e.kind == kind and e.expected_lift]
            if lifts:
                prior[S.shape[1] + j : S.shape[1] + j + len(nominal)] = math.log(float(np.mean(lifts))) * nominal
        Xo, zo = X[obs], z[obs]
        A = Xo.T @ Xo + np.diag(penalty)
        b = Xo.T @ zo + penalty * prior
        beta = np.linalg.solve(A, b)
        # Gross outliers (an outage's zeros, sporadic dropped samples) are down-weighted (Huber).
        A0, b0 = A, b
        for _ in range(2):
            w = huber_weights(zo - Xo @ beta)
            if w is None:
                break
            out = np.flatnonzero(w < 1)  # few rows: update the normal equations, do not rebuild them
            cut = Xo[out] * (1 - w[out])[:, None]
            A, b = A0 - cut.T @ Xo[out], b0 - cut.T @ zo[out]
            beta = np.linalg.solve(A, b)
        if coarse:
            # At daily steps an occurrence is one point, and the noise of one day (weather) can be
            # as large as a holiday's lift: weigh the event priors as the Bayesian ridge does,
            # residual variance / prior variance (prior sd PRIOR_SD in log lift), not a fixed weight.
            noise = float(np.var(zo - Xo @ beta))
            extra = np.zeros(X.shape[1])
            extra[S.shape[1] :] = max(0.0, noise / PRIOR_SD**2 - self.prior_weight)
            beta = np.linalg.solve(A + np.diag(extra), b + extra * prior)
        self._beta_s, self._beta_e = beta[: S.shape[1]], beta[S.shape[1] :]
        resid = np.full(len(z), np.nan)
        resid[obs] = zo - Xo @ beta
        self._calibrate(resid)
        self._conformal(resid, stamps, evs)
        self._kind_sigma, self._kind_n = lift_spread(stamps, resid, evs, self._kinds, self.lift_sigma)
        self._shape_var = (
            shape_spread(stamps, resid, evs, self._kinds, td_ns(step), self._bins.width, self._var)
            if self.SHAPE_SPREAD else {}
        )
        self._beta_e = pool_kinds(self._beta_e, prior[S.shape[1] :], layout, self._kind_sigma, self._kind_n, PRIOR_SD)
        plats = [self._beta_e[j + self._bins.plat] for j in kind_at.values()]
        self._pooled = float(np.mean(plats)) if plats else 0.0
        self._last = idx[-1]
        self._run_filter(resid, stamps_ns(idx), reset=True)
        return self

    def _seasonal(self, idx: pd.DatetimeIndex) -> np.ndarray:
        return seasonal_design(
            idx,
            self._step,
            daily=self._daily,
            weekly=self._weekly,
            day_types=self._day_types,
            day_levels=self._day_levels,
            yearly=self._yearly,
        )

    def _calibrate(self, resid: np.ndarray) -> None:
        """Residual dynamics (``forecasting.models.residual``) and the fast path's steady-state gain."""
        recent = max(500, int(8 * WEEK / self._step))  # eight weeks (at least 500 points)
        dyn = calibrate(robust_clip(resid), recent, local_level=self._step >= DAY)
        self._dyn, self._nb, self._zq = dyn, (2 if dyn.has_level else 1), dyn.zq
        self._var = dyn.var
        p, gain = dyn.initial()[1][0, 0], 0.0
        for _ in range(200):
            gain = p / (p + dyn.noise)
            p = dyn.phi**2 * (1 - gain) * p + dyn.innov
        self._gain = gain

    def _conformal(self, resid: np.ndarray, stamps: np.ndarray, evs: Sequence[Event]) -> None:
        """Interval quantiles from the model's own out-of-sample errors (split conformal,
        ``calendar_kernels``): the residual filter's h-step errors over the recent eight weeks,
        normalised by the horizon's sd and the hour-of-week cell's residual scale; event windows
        are left out (their spread is the kind's, added in ``predict``)."""
        step_ns = td_ns(self._step)
        resid = robust_clip(resid)  # as for the dynamics: an outage day must not set every interval
        self._cell_scale = cell_scale(resid, stamps, step_ns)
        recent = max(500, int(8 * WEEK / self._step))
        r, st = resid[-recent:], stamps[-recent:]
        factor = self._cell_factor(st)
        for event in evs:
            i0, i1, _ = event_window(st, event, step_ns)
            factor[i0:i1] = np.nan
        dyn = self._dyn
        horizon = max(2, min(int(2 * DAY / self._step), len(r) // 2))
        weights, var = dyn.ahead(horizon)
        states = filter_states(r, dyn.transition, dyn.process, dyn.noise, dyn.initial()[1])
        cq = conformal_quantiles(r, states, weights, np.sqrt(var), factor, tuple(QUANTILES))
        self._cq = None if np.isnan(cq).any() else cq

    def _cell_factor(self, stamps: np.ndarray) -> np.ndarray:
        """Each stamp's hour-of-week residual scale (1 without one)."""
        found = cells(stamps, td_ns(self._step)) if self._cell_scale is not None else None
        if found is None or self._cell_scale is None:
            return np.ones(len(stamps))
        return np.asarray(self._cell_scale[found[0]], dtype=float)

    def _prior_var(self, event: Event) -> float:
        """Prior variance of one occurrence's log-lift deviation from what the calendar forecasts.

        A kind's spread across its past occurrences, times (1 + 1/n) for the uncertainty of its
        learned mean lift: a rare kind (few occurrences) gets a wider interval, not a narrower one."""
        if event.kind in self._kind_sigma:
            n = max(1, self._kind_n.get(event.kind, 1))
            return self._kind_sigma[event.kind] ** 2 * (1.0 + 1.0 / n)
        return (self.unseen_sigma if event.expected_lift else self.unknown_sigma) ** 2

    def _run_filter(self, resid: np.ndarray, stamps: np.ndarray, *, reset: bool) -> None:
        """Advance the filter state over ``resid`` (NaN = no observation) at ``stamps``.

        The state is the residual level (AR(1)) plus, for each event whose window the points
        reach, that occurrence's log-lift deviation from its kind (a constant with the kind's
        prior spread, observed through the event's shape): in-event nowcasting. Once points
        inside an event are seen, its deviation is estimated and its variance shrinks, so the
        rest of the event is forecast at the lift actually realised, with a tighter interval."""
        dyn, nb = self._dyn, self._nb
        if reset:
            rate = (1 - self._gain) * dyn.phi
            if nb == 1 and rate > 0:  # a level (nb 2) needs the whole fitted history
                keep = min(len(resid), max(200, int(8 / max(1e-6, 1 - rate))))
                resid, stamps = resid[-keep:], stamps[-keep:]
            self._x, self._P = dyn.initial()
            self._keys: list[Event] = []
        if not len(resid):
            return
        step_ns = td_ns(self._step)
        first, last = pd.Timestamp(int(stamps[0]), tz="UTC"), pd.Timestamp(int(stamps[-1]), tz="UTC")
        windows: dict[Event, tuple[int, int, np.ndarray, np.ndarray]] = {}
        active = np.zeros(len(resid), dtype=bool)
        for event in relevant(self._events, first, last, self._step):
            i0, i1, bins = event_window(stamps, event, step_ns)
            if i0 < i1:
                w = bins @ self._bins.nominal
                # Where the kind's shape itself misses (its ramp), a residual says less about the lift.
                shape = self._shape_var.get(event.kind)
                extra = np.zeros(len(w))
                if shape is not None:
                    extra = np.maximum(bins @ shape - self._prior_var(event) * w**2, 0.0)
                windows[event] = (i0, i1, w, extra)
                active[i0:i1] = True
        priors = {event: self._prior_var(event) for event in windows}
        self._x, self._P, self._keys = advance(
            self._x, self._P, self._keys, resid, active, windows, priors, dyn, self._gain
        )

    # --------------------------------------------------------------- update
    def update(self, new_points: pd.Series) -> Self:
        """Absorb points after the fitted history: residuals against the fitted calendar,
        then the Kalman state. O(new points); the calendar coefficients stay as fitted."""
        if not self._fitted:
            raise ValueError("update: call fit before update")
        if self._fallback is not None:
            self._fallback.update(new_points)
            return self
        ext = continuation(new_points, self._last, self._step)
        if ext is None:
            return self
        z = np.log(ext.to_numpy() + self._offset)
        z[in_zero_slots(stamps_ns(ext.index), td_ns(self._step), self._closed)] = np.nan
        resid = z - self._center(ext.index, self._events)
        self._run_filter(resid, stamps_ns(ext.index), reset=False)
        self._last = ext.index[-1]
        return self

    # -------------------------------------------------------------- predict
    def _center(self, idx: pd.DatetimeIndex, events: Sequence[Event]) -> np.ndarray:
        """Calendar + learned event log lifts (no residual level) over ``idx``."""
        evs = relevant(events, idx[0], idx[-1], self._step)
        # The calendar alone stays within the fitted range (no Fourier overshoot past the history).
        mu = np.clip(self._seasonal(idx) @ self._beta_s, self._zlo, self._zhi)
        if self._beta_e.size:
            mu = mu + self._layout.design(idx, evs, self._step) @ self._beta_e
        stamps, step_ns = stamps_ns(idx), td_ns(self._step)
        for event in evs:
            if event.kind in self._kinds:
                continue
            lift = math.log(event.expected_lift) if event.expected_lift else self._pooled
            i0, i1, bins = event_window(stamps, event, step_ns)
            mu[i0:i1] += bins @ (lift * self._bins.nominal)
        return mu

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        """Quantile forecast of the ``horizon`` steps after the fitted (or updated) history."""
        if not self._fitted:
            raise ValueError("predict: call fit before predict")
        horizon = check_horizon(horizon)
        if self._fallback is not None:
            fc = self._fallback.predict(horizon, events)
            return Forecast(index=fc.index, mean=fc.mean, quantiles=fc.quantiles, model=self.name,
                            fallback=SeasonalNaive.name)
        idx = future_index(self._last, self._step, horizon)
        x, P, nb = self._x, self._P, self._nb
        Hb, var = self._dyn.ahead(horizon)
        base = np.einsum("ij,jk,ik->i", Hb, P[:nb, :nb], Hb)  # what the state's own spread adds
        mu = self._center(idx, events) + Hb @ x[:nb]
        var = var + base
        # Event-lift uncertainty. Occurrences already under way carry their nowcast deviation
        # (point forecast moved toward the realised lift, spread shrunk by what was seen);
        # the others their kind's prior spread. Overlapping events' lifts multiply, so their
        # log-lift deviations add, and so do their variances.
        H = np.zeros((horizon, len(x)))
        H[:, :nb] = Hb
        ev_var = np.zeros(horizon)
        state = {event: k for k, event in enumerate(self._keys, start=nb)}
        step_ns = td_ns(self._step)
        for event in relevant(events, idx[0], idx[-1], self._step):
            i0, i1, bins = event_window(stamps_ns(idx), event, step_ns)
            if i0 >= i1:
                continue
            w = bins @ self._bins.nominal
            prior = self._prior_var(event) * w**2
            shape = self._shape_var.get(event.kind)
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
        if self._cq is not None:  # conformal: by horizon bucket and hour-of-week cell
            rows = np.minimum(horizon_buckets(horizon), len(self._cq) - 1)
            own = np.sqrt(var - base) * self._cell_factor(stamps_ns(idx))
            zq = {q: self._cq[rows, j] * own for j, q in enumerate(QUANTILES)}
        else:
            zq = {q: self._zq[q] * sd for q in QUANTILES}
        median = np.exp(mu) - self._offset
        offsets = {}
        for q in QUANTILES:
            base = zq[q]
            extra = Z[q] ** 2 * ev_var
            off = math.copysign(1.0, Z[q]) * np.sqrt(base**2 + extra) if Z[q] else base
            offsets[q] = np.exp(mu + off) - self._offset - median
        mean = np.exp(mu + (var + ev_var) / 2) - self._offset
        closed = in_zero_slots(stamps_ns(idx), step_ns, self._closed)
        if closed.any():  # closed hours: zero demand, zero spread
            median, mean = np.where(closed, 0.0, median), np.where(closed, 0.0, mean)
            offsets = {q: np.where(closed, 0.0, off) for q, off in offsets.items()}
        return assemble(idx, median, offsets, model=self.name, mean=mean)
