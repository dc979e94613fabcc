"""The calendar model's settings and fitted state, as frozen dataclasses.

``CalendarConfig`` holds the hyperparameters (validated on construction);
``CalendarFit`` everything a fit learned that the forecast and the update
need: the calendar and event coefficients, the residual dynamics and their
calibration, the per-kind lift spreads and the residual filter's state.
``calendar_fit.fit_calendar`` builds a ``CalendarFit``,
``calendar_predict.update_calendar`` returns a new one with the filter state
``calendar_filter.run_filter`` advanced (``dataclasses.replace``), and
``calendar_predict.predict_calendar`` forecasts from one;
``forecasting.models.calendar`` wraps them in the model class. The free
functions here read a fit and change nothing. Its arrays are made read-only,
so no later step can change a fit that another holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from forecasting.base import Event
from forecasting.features import BinSet, EventLayout, seasonal_design
from forecasting.models.calendar_kernels import cells
from forecasting.models.calendar_onset import Onset
from forecasting.models.residual import Dynamics
from forecasting.timeutil import td_ns


@dataclass(frozen=True)
class CalendarConfig:
    """Hyperparameters of the calendar model (the ``Calendar`` constructor's arguments)."""

    daily_harmonics: int = 10
    weekly_harmonics: int = 3
    day_type_harmonics: int = 6
    shape_harmonics: int = 4
    yearly_harmonics: int = 10  # daily and coarser steps only
    max_points: int = 40_320  # 28 days of 1-minute data by default: older points are dropped
    max_years: float = 4.0  # daily and coarser steps: older years are dropped (habits drift)
    # Ridge weight of the event priors, sigma^2 / tau^2 with log noise sigma ~0.1 and prior sd tau ~0.5:
    # negligible once a kind has data, decisive for bins it has none in.
    prior_weight: float = 0.05
    lift_sigma: float = 0.2
    unseen_sigma: float = 0.35
    unknown_sigma: float = 0.5
    shape_spread: bool = True  # widen event intervals by what a kind's shape bins missed (its ramp)
    # Recency weights of the calendar regression on a long history (sub-daily steps, >= 26 weeks):
    # a point's weight halves every ``recency_half_life`` weeks of age, down to ``recency_floor``,
    # so this season's habits outweigh last year's: with a floor of 0.3, the older half of a
    # two-year hourly history held 80 % of the weight and set the shape; at 0.05 it weighs about
    # five recent weeks. Points inside event windows keep ``event_floor``: an event kind's few
    # occurrences (a holiday's, once a year) are its only evidence. 0 turns them off.
    recency_half_life: float = 4.0
    recency_floor: float = 0.05
    event_floor: float = 0.3

    def __post_init__(self) -> None:
        harmonics = (
            self.daily_harmonics, self.weekly_harmonics, self.day_type_harmonics,
            self.shape_harmonics, self.yearly_harmonics,
        )
        if min(harmonics) < 0:
            raise ValueError("harmonics: expected a non-negative number")
        if self.prior_weight <= 0:
            raise ValueError(f"prior_weight: expected a positive weight, got {self.prior_weight}")
        if self.recency_half_life < 0:
            raise ValueError(f"recency_half_life: expected weeks >= 0 (0: off), got {self.recency_half_life}")
        if not 0 < self.recency_floor <= 1:
            raise ValueError(f"recency_floor: expected a weight in (0, 1], got {self.recency_floor}")
        if not 0 < self.event_floor <= 1:
            raise ValueError(f"event_floor: expected a weight in (0, 1], got {self.event_floor}")
        if self.max_points < 100:
            raise ValueError(f"max_points: expected at least 100, got {self.max_points}")


@dataclass(frozen=True)
class Terms:
    """The seasonal terms a fit uses (``features.seasonal_design``), chosen from its step and span."""

    daily: int
    weekly: int
    day_types: int
    day_levels: bool
    yearly: int
    weekdays: bool = False  # own shapes for every weekday, not just Fri/Sat/Sun (a long history)


def seasonal(terms: Terms, idx: pd.DatetimeIndex, step: pd.Timedelta) -> np.ndarray:
    """The seasonal design matrix of ``terms`` over ``idx``."""
    return seasonal_design(
        idx,
        step,
        daily=terms.daily,
        weekly=terms.weekly,
        day_types=terms.day_types,
        day_levels=terms.day_levels,
        yearly=terms.yearly,
        weekdays=terms.weekdays,
    )


def cell_factor(scale: np.ndarray | None, stamps: np.ndarray, step: pd.Timedelta) -> np.ndarray:
    """Each stamp's hour-of-week residual scale (1 without one)."""
    found = cells(stamps, td_ns(step)) if scale is not None else None
    if found is None or scale is None:
        return np.ones(len(stamps))
    return np.asarray(scale[found[0]], dtype=float)


@dataclass(frozen=True, eq=False)
class CalendarFit:
    """What one fit of the calendar model learned, plus the residual filter's current state."""

    config: CalendarConfig
    step: pd.Timedelta
    events: tuple[Event, ...]  # the events the fit was given (the update path's residuals use them)
    terms: Terms
    offset: float  # c of log(y + c)
    closed: np.ndarray  # week slots forecast as zero (closed hours)
    zlo: float  # range of the fitted log demand: the calendar alone stays within it
    zhi: float
    layout: EventLayout  # the event columns
    beta_s: np.ndarray  # seasonal coefficients
    beta_e: np.ndarray  # event coefficients (kinds pooled toward their prior)
    pooled_var: float  # mean squared plateau log lift of the kinds seen (band of a kind never seen, no lift)
    dyn: Dynamics  # residual dynamics
    gain: float  # the fast path's scalar steady-state gain
    cell_scale: np.ndarray | None  # hour-of-week residual scale (``calendar_kernels.cell_scale``)
    cq: np.ndarray | None  # conformal quantiles per horizon bucket (None: Gaussian ``dyn.zq``)
    kind_sigma: Mapping[str, float]  # spread of each kind's log lift across its occurrences
    kind_n: Mapping[str, int]  # occurrences each spread was measured on
    shape_var: Mapping[str, np.ndarray]  # per kind and shape bin: what the bins missed
    last: pd.Timestamp  # the last point absorbed (fit or update)
    x: np.ndarray  # residual filter: state mean (signal[, level], then one deviation per key)
    P: np.ndarray  # its covariance
    keys: tuple[Event, ...] = ()  # the occurrences whose deviation is in the state
    onset: Mapping[str, Onset] = field(default_factory=dict)  # per kind: lift by step since start (its ramp)

    def __post_init__(self) -> None:
        arrays = (self.closed, self.beta_s, self.beta_e, self.cell_scale, self.cq, self.x, self.P)
        for arr in (*arrays, *self.shape_var.values()):
            if arr is not None:
                arr.setflags(write=False)

    @property
    def bins(self) -> BinSet:
        return self.layout.bins

    @property
    def nb(self) -> int:
        """Size of the residual signal's state (2 with a local level)."""
        return 2 if self.dyn.has_level else 1


def prior_var(fit: CalendarFit, event: Event) -> float:
    """Prior variance of one occurrence's log-lift deviation from what the calendar forecasts.

    A kind's spread across its past occurrences, times (1 + 1/n) for the uncertainty of its
    learned mean lift: a rare kind (few occurrences) gets a wider interval, not a narrower one.
    A kind never seen: ``unseen_sigma`` around its ``expected_lift``; without one its median is no
    lift (events lower demand as well as raise it) and its variance ``unknown_sigma``^2 plus the
    mean squared lift of the kinds seen, so the band still reaches a lift (or a drop) like theirs."""
    if event.kind in fit.kind_sigma:
        n = max(1, fit.kind_n.get(event.kind, 1))
        return fit.kind_sigma[event.kind] ** 2 * (1.0 + 1.0 / n)
    cfg = fit.config
    if event.expected_lift:
        return cfg.unseen_sigma**2
    return cfg.unknown_sigma**2 + fit.pooled_var
