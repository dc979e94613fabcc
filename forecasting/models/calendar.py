"""``calendar``: seasonality plus known events, the Pitboss forecaster.

Log demand is a ridge-regularised least-squares fit of a calendar design
matrix (daily and weekly Fourier terms; own daily shapes for Fridays,
Saturdays and Sundays once the history holds three weeks, for every weekday
once it holds 26; see ``forecasting.features``) plus event regressors: per event ``kind`` a
ramp-up / plateau / decay shape whose log lift is learned from the past
events in the history (day-long kinds, such as holidays, also learn a daily
shape), and per recurring event *name* (a yearly holiday) a deviation from
its kind. The ridge prior pulls a kind toward its ``expected_lift`` (else no
lift) only where data is thin, and a kind seen on few occasions is then
shrunk toward it by partial pooling (n tau^2 / (n tau^2 + sigma^2): n
occurrences, sigma the spread of its lift across them, tau = ``PRIOR_SD``),
so one lucky or unlucky occurrence is not taken for the kind's lift (lifts
may be below 1). A kind never seen is forecast with its
``expected_lift`` and a wider interval; without one, with no lift (it may
lift or lower demand) and an interval that also spans the lifts of the kinds
seen (their mean squared log lift added to its variance). What the calendar does not explain (weather, a busy day) is
tracked by a steady-state Kalman filter on the residuals (AR(1) signal +
white noise), so short horizons start from the current level and decay to
the calendar. Week slots that were zero in every observed week (closed
hours) are forecast as zero and left out of the fit; other zeros (outages)
are Huber-weighted (``calendar_kernels``), and whole days of them in normally
open hours with no event announced (closure days: a shop shut over New Year)
are gaps for the regression and the interval's calibration, so a closure seen
once neither pulls the calendar down nor keeps the band wide after it. On a history of 26 weeks or more
(sub-daily steps) the fit is recency-weighted: a point's weight halves
every 4 weeks of age, down to 0.05, so the shape is this season's; points
inside event windows keep at least 0.3, so a kind's lift still learns from
every occurrence (``shared_design.recency_weights``).

Quantiles: split conformal on the model's own out-of-sample h-step errors
(the residual filter's forecasts from the state before each point, on the
residuals of the last four weeks from weekly rolling-origin refits, each on
the points before its week; on a history under eight weeks or at daily
steps, the in-sample residuals of the recent eight weeks), normalised by the
horizon's sd and the hour-of-week cell's residual scale, per horizon bucket
(``calendar_kernels``), so their median also corrects a recent bias. Event windows are left out
of that and widened by the spread of the kind's lift across its past
occurrences, times (1 + 1/n) for a kind seen n times, plus what its shape
bins missed (its ramp); overlapping events add their variances. In-event
nowcast (``calendar_filter``): once points inside an event are seen, the rest
of it is forecast at the lift realised; its ramp is read against the kind's
lift by step since start (``calendar_onset``) where that predicted the past
ramps better than the bins, as a crowd ramps in minutes, not in shares of the
event's length, so a short event's ramp does not pull its plateau down. ``update``: O(new points). At most
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

Layout (as statsforecast keeps ``ets.py`` apart from ``models.py``): the
class here is a thin wrapper that holds one frozen ``CalendarFit``
(``calendar_state``), built by ``calendar_fit.fit_calendar`` and replaced by
``calendar_predict.update_calendar`` on each update; ``predict_calendar``
forecasts from it. The numeric kernels are free functions over arrays
(``calendar_kernels``, ``calendar_filter``, ``calendar_stats``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import ClassVar, Self

import pandas as pd

from forecasting.base import Event, Forecast
from forecasting.models.calendar_fit import fit_prepared, short_history
from forecasting.models.calendar_predict import predict_calendar, update_calendar
from forecasting.models.calendar_state import CalendarConfig, CalendarFit
from forecasting.models.seasonal_naive import SeasonalNaive
from forecasting.series import check_horizon, prepare_history


class Calendar:
    """Fourier seasonality + per-kind event lifts in log space, Kalman-corrected level."""

    name: ClassVar[str] = "calendar"
    SHAPE_SPREAD: ClassVar[bool] = True  # a subclass may switch the ramp widening off (ablation)

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
        recency_half_life: float = 4.0,
        recency_floor: float = 0.05,
        event_floor: float = 0.3,
    ) -> None:
        self.config = CalendarConfig(
            daily_harmonics=daily_harmonics,
            weekly_harmonics=weekly_harmonics,
            day_type_harmonics=day_type_harmonics,
            shape_harmonics=shape_harmonics,
            yearly_harmonics=yearly_harmonics,
            max_points=max_points,
            max_years=max_years,
            prior_weight=prior_weight,
            lift_sigma=lift_sigma,
            unseen_sigma=unseen_sigma,
            unknown_sigma=unknown_sigma,
            recency_half_life=recency_half_life,
            recency_floor=recency_floor,
            event_floor=event_floor,
            shape_spread=self.SHAPE_SPREAD,
        )
        self.fitted: CalendarFit | None = None  # the last fit (and updates), None before or on fallback
        self._fallback: SeasonalNaive | None = None
        self.fallback_reason: str | None = None  # why the last fit fell back to seasonal-naive

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        """Fit the calendar regression, per-kind lifts and the residual filter (``calendar_fit``)."""
        hist = prepare_history(history)
        reason = short_history(hist)
        if reason is not None:
            self.fitted, self.fallback_reason = None, reason
            warnings.warn(f"calendar: {reason}, falling back to seasonal-naive", stacklevel=2)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self._fallback = SeasonalNaive().fit(hist)
            return self
        self.fitted = fit_prepared(hist, events, self.config)
        self._fallback, self.fallback_reason = None, None
        return self

    def update(self, new_points: pd.Series) -> Self:
        """Absorb points after the fitted history: residuals against the fitted calendar,
        then the Kalman state. O(new points); the calendar coefficients stay as fitted."""
        if self._fallback is not None:
            self._fallback.update(new_points)
            return self
        if self.fitted is None:
            raise ValueError("update: call fit before update")
        self.fitted = update_calendar(self.fitted, new_points)
        return self

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        """Quantile forecast of the ``horizon`` steps after the fitted (or updated) history."""
        fallback = self._fallback
        if fallback is None:
            if self.fitted is None:
                raise ValueError("predict: call fit before predict")
            return predict_calendar(self.fitted, horizon, events, model=self.name)
        fc = fallback.predict(check_horizon(horizon), events)
        return Forecast(index=fc.index, mean=fc.mean, quantiles=fc.quantiles, model=self.name,
                        fallback=SeasonalNaive.name)
