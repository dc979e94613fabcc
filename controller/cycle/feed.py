"""One forecast feed: when to refit, when to update, what to fall back on.

A ``ForecastFeed`` keeps one policy's model current as its demand grid
moves. ``refresh(end, ...)`` is asked once per cycle with the end of the
completed history and does one of three things, by its ``FeedPolicy``:

* refit: the first time, when what forces a refit (``key``: spec generation,
  model, horizon, events) changed, or when the last full fit is
  ``refit_every`` old (never when ``refit_every`` is None: the model came
  fitted, as in the local run);
* update: a model with ``update(new_points)`` (``SupportsUpdate``) absorbs
  the points since the last one, at most every ``update_every``, and
  predicts again;
* reuse: nothing new since the last refresh.

A refit may be deferred (``defer_refit``): the operator spends at most a budget
of each cycle on fits, so the next policies keep deciding on the forecast
they have and are refitted in a later cycle; a failed update that would
refit waits the same way. The budget is a hard cap, also for a changed
``key``: its refit is queued like any other (a new TrafficEvent changes
every policy's key in one cycle), and meanwhile the policy decides on its
previous model's forecast when that is still a forecast of the same series
on the same grid (``basis``: demand metric, target, step), or on none (the
documented fallback: observed demand, no scale-down) when it is not;
``note`` says which, for the decision's message.

Failures follow the policy: a failed update refits at once (``"refit"``,
the operator), falls back to the plan made at start (``"plan"``, the local
run) or keeps the forecast it had (``"keep"``, the simulator); a failed fit
drops the forecast with the reason (``"drop"``) or keeps the previous one
(``"keep"``). ``max_update_failures`` stops updating after that many.
Counters (fits, updates, failures, seconds) feed the reports of each shell.
``value_at`` reads a forecast's quantile at a time. Used by
``controller.cycle.run`` and the operator's ``ForecastCache``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from time import perf_counter
from typing import Literal

import numpy as np
import pandas as pd

from forecasting.base import Event, Forecast, Forecaster
from forecasting.timeutil import stamps_ns, ts_ns

Action = Literal["refit", "update", "reuse"]
MAX_FAILURES = 20


@dataclass(frozen=True)
class FeedPolicy:
    """When a feed refits and updates, and what it falls back on."""

    refit_every: timedelta | None = timedelta(hours=1)
    update_every: timedelta = timedelta(0)  # 0: every time the history moves
    on_update_failure: Literal["refit", "plan", "keep"] = "refit"
    on_fit_failure: Literal["drop", "keep"] = "drop"
    max_update_failures: int | None = None
    refit_without_update: bool = False  # a model without update() refits whenever the history moves


@dataclass(frozen=True)
class Failure:
    """One failed fit or update."""

    at: pd.Timestamp
    kind: Literal["fit", "update"]
    message: str


class ForecastFeed:
    """One policy's model and the forecast to decide with."""

    def __init__(self, make_model: Callable[[], Forecaster], policy: FeedPolicy | None = None, *,
                 model: Forecaster | None = None, fitted_end: pd.Timestamp | None = None,
                 plan: Forecast | None = None, key: Hashable = None) -> None:
        self.make_model = make_model
        self.policy = policy or FeedPolicy()
        self.model = model  # fitted on history up to fitted_end (None: not fitted yet)
        self.fitted_end = fitted_end
        self.end = fitted_end  # the last point the model has absorbed
        self.plan = plan  # the forecast made at start (the local run's fallback)
        self.current: Forecast | None = plan
        self.error: str | None = None
        self.key = key
        self.basis: object = None  # what the forecast is of (series, grid): a changed one drops the forecast
        self.note: str | None = None  # why the forecast is not a fit for the current key (a queued refit)
        self._dropped: str | None = None  # why a changed basis dropped the forecast, until the refit
        self._predicted_for: Hashable = None  # the queued key the previous model last predicted for
        self.fits = self.updates = self.failed_fits = self.failed_updates = self.deferred = 0
        self.fit_seconds = self.update_seconds = 0.0
        self.failures: deque[Failure] = deque(maxlen=MAX_FAILURES)  # the latest, for the reports
        self.ever_fitted = model is not None

    def _updatable(self) -> bool:
        limit = self.policy.max_update_failures
        return (self.model is not None and self.ever_fitted and callable(getattr(self.model, "update", None))
                and (limit is None or self.failed_updates < limit))

    def due(self, end: pd.Timestamp, key: Hashable = None) -> Action:
        """What ``refresh`` would do for history ending at ``end``."""
        every = self.policy.refit_every
        if every is not None and (self.fitted_end is None or key != self.key):
            return "refit"
        if self.end is not None and end <= self.end:  # nothing new (a history that went back: refit)
            return "refit" if end < self.end and every is not None else "reuse"
        if every is not None and self.fitted_end is not None and end - self.fitted_end >= every:
            return "refit"
        if self._updatable():
            return "update" if self.end is None or end - self.end >= self.policy.update_every else "reuse"
        return "refit" if self.policy.refit_without_update and every is not None else "reuse"

    def refresh(self, end: pd.Timestamp, *, history: Callable[[], pd.Series], new_points: Callable[[], pd.Series],
                horizon: int, events: Sequence[Event] = (), fit_events: Sequence[Event] | None = None,
                update_horizon: int | None = None, key: Hashable = None, basis: object = None,
                defer_refit: bool = False, changed: str = "the spec or events changed") -> Forecast | None:
        """The forecast to decide with, refitting or updating first when due (see the module docstring).

        ``defer_refit`` (the operator's fit budget for this cycle is spent): a refit that is only due by
        age keeps the current forecast (updated when the model can), a failed update that would refit
        keeps the forecast it had (the update and, failing it, the refit are tried again next cycle), and
        a first fit waits, leaving ``current`` None with ``error`` saying so. A refit forced by a changed
        ``key`` (``changed`` says what changed) waits too: no fit runs past the budget. See ``_queued``.
        """
        action = self.due(end, key)
        self.note = None
        if action == "refit" and defer_refit:
            self.deferred += 1
            if key != self.key and self.current is not None:
                return self._queued(end, new_points, horizon, events, key, basis, changed)
            if self.current is None:
                self.error = self._dropped or "forecast fit deferred to a later cycle: this cycle's fit budget is spent"
                return None
            action = "update" if self._updatable() and (self.end is None or end > self.end) else "reuse"
            if action == "reuse":
                return self.current
        absorbed = self.end
        if action == "update" and self._update(end, new_points, update_horizon or horizon, events):
            return self.current
        if action == "update" and self.policy.on_update_failure == "refit" and self.policy.refit_every is not None:
            if defer_refit:
                # The budget is a hard cap: the refit a failed update calls for waits for a later cycle too,
                # which tries the update again (the points stay unabsorbed) and refits if that fails.
                self.deferred += 1
                self.end = absorbed
                return self.current
            action = "refit"
        if action == "refit":
            self._refit(end, history, horizon, events if fit_events is None else fit_events, key, basis)
        return self.current

    def _queued(self, end: pd.Timestamp, new_points: Callable[[], pd.Series], horizon: int,
                events: Sequence[Event], key: Hashable, basis: object, changed: str) -> Forecast | None:
        """A changed key's refit waits for a later cycle's budget: what to decide on until then.

        Same ``basis`` (the spec changed elsewhere, or the model, the horizon, the events): the previous
        model still forecasts this series on this grid, so it keeps deciding, predicting the new horizon
        and the new events (a model predicts events it was not fitted with: the calendar model lifts them by
        their kind's learned lift, else ``expectedLift``, else not at all, with a band spanning the seen
        kinds' lifts). That beats the fallback, which
        knows no event at all: a new TrafficEvent must not cost every policy the pre-scaling for the
        events it already knew. A changed ``basis`` (demand metric, target, step): the previous forecast
        is of another series or grid, worse than none, so it is dropped and the policy decides on the
        documented fallback (observed demand, never a scale-down without a forecast) until its refit.
        """
        if basis != self.basis:
            self.model, self.current, self.fitted_end, self.end = None, None, None, None
            self.ever_fitted = False
            self.error = self._dropped = (f"previous forecast dropped ({changed}: it forecast another series or"
                                          " grid); its refit waits for a later cycle's fit budget")
            return None
        when = "" if self.fitted_end is None else f" (fitted to {self.fitted_end:%m-%d %H:%MZ})"
        self.note = (f"deciding on the previous forecast{when}: {changed}, its refit waits for a later cycle's"
                     " fit budget")
        if self.model is not None and self._updatable() and (self.end is None or end > self.end):
            self._update(end, new_points, horizon, events)  # a failure keeps the forecast it had
        elif self.model is not None and self._predicted_for != key:
            try:  # the same points, the new horizon and events: a prediction (once per key), no fit
                self.current = self.model.predict(horizon, events)
            except ValueError as exc:
                self.failures.append(Failure(end, "update", str(exc)))
        self._predicted_for = key
        return self.current

    def _refit(self, end: pd.Timestamp, history: Callable[[], pd.Series], horizon: int,
               events: Sequence[Event], key: Hashable, basis: object) -> None:
        began = perf_counter()
        self.key, self.basis, self.fitted_end, self.end, self._dropped = key, basis, end, end, None
        try:
            model = self.make_model()
            self.fits += 1
            self.current = model.fit(history(), events).predict(horizon, events)
            self.model, self.error, self.ever_fitted = model, None, True
        except ValueError as exc:
            self.failed_fits += 1
            self.failures.append(Failure(end, "fit", str(exc)))
            self.error = f"forecast failed: {exc}"
            if self.policy.on_fit_failure == "drop":
                self.current, self.model = None, None
        finally:
            self.fit_seconds += perf_counter() - began

    def _update(self, end: pd.Timestamp, new_points: Callable[[], pd.Series], horizon: int,
                events: Sequence[Event]) -> bool:
        assert self.model is not None
        began = perf_counter()
        try:
            self.model.update(new_points())  # type: ignore[attr-defined]
            self.current = self.model.predict(horizon, events)
            self.updates += 1
            self.error = None
            return True
        except ValueError as exc:
            self.failed_updates += 1
            self.failures.append(Failure(end, "update", str(exc)))
            if self.policy.on_update_failure == "plan":
                self.current = self.plan
            return False
        finally:
            self.end = end
            self.update_seconds += perf_counter() - began


def value_at(forecast: Forecast | None, q: float, now: datetime) -> float | None:
    """The forecast's ``q`` quantile for the step containing ``now`` (None outside it, or not finite)."""
    if forecast is None or len(forecast.index) == 0:
        return None
    stamps = stamps_ns(forecast.index)  # int64 ns: numpy's searchsorted, without pandas' scalar checks
    i = int(np.searchsorted(stamps, ts_ns(now), side="right")) - 1
    if not 0 <= i < len(stamps):
        return None
    value = float(forecast.quantile(q)[i])
    return value if math.isfinite(value) else None


__all__ = ["FeedPolicy", "ForecastFeed", "value_at"]
