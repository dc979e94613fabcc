"""Per-policy forecasts for the loop: fit once, then refresh once per forecast step.

A policy's forecast only changes when its demand grid moves a step, its
spec or its events change. In between (e.g. four 15 s cycles per 1 m
step) the cached forecast is reused. When the step moves, a model with
``update(new_points)`` (the calendar model) absorbs the new points without a
refit; a full refit happens when the spec generation, the model, the
horizon or the events change, and at least every ``REFIT_EVERY``. With a
``fit_budget`` (``pitboss operator run`` sets a quarter of the sync period) a
cycle fits until the budget is spent and defers the other fits to later
cycles, where those policies keep the forecast they have; a changed spec or
event calendar queues its refit the same way (``ForecastFeed._queued`` says
what the policy decides on meanwhile, ``changes`` what changed). Called by
``controller.operator.reconcile``. The refit/update/fallback rules are the
shared ``controller.cycle.feed.ForecastFeed``'s; this module keeps one per
policy and says when the operator's key changes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import timedelta

import numpy as np
import pandas as pd

from controller.cycle.feed import FeedPolicy, ForecastFeed, value_at
from controller.operator.resources import ScalingPolicySpec
from forecasting.base import Event, Forecast, Forecaster
from forecasting.timeutil import stamps_ns, ts_ns

ForecasterFactory = Callable[[str], Forecaster]
REFIT_EVERY = timedelta(hours=1)


def horizon_steps(spec: ScalingPolicySpec) -> int:
    """Steps to forecast: the status horizon, and every lead time plus a sync period, plus a step."""
    step = spec.forecast.step
    longest = max(
        spec.forecast.horizon,
        spec.lead_time + spec.sync_period,
        (spec.database_replicas.lead_time if spec.database_replicas else timedelta(0)) + spec.sync_period,
    )
    return math.ceil((longest + step) / step) + 1


# The operator's feed policy: hourly refits, an update every step, a failed update refits at once,
# a model without update() refits every step, a failed fit leaves the policy without a forecast.
OPERATOR_FEED = FeedPolicy(refit_every=REFIT_EVERY, on_update_failure="refit", on_fit_failure="drop",
                           refit_without_update=True)


class ForecastCache:
    """Forecast feeds by policy uid; counts full fits and incremental updates for the cycle report."""

    def __init__(self, factory: ForecasterFactory, fit_budget: timedelta | None = None) -> None:
        self.factory = factory
        self._feeds: dict[str, ForecastFeed] = {}
        self.fits = 0
        self.updates = 0
        self.deferred = 0  # refits put off to a later cycle (the fit budget was spent)
        # Fits spread over cycles: once a cycle has spent ``fit_budget`` fitting, the remaining policies
        # keep their current forecast (or decide without one until their first fit), so fitting never
        # delays a scaling decision past the budget. None: fit whatever is due.
        self.fit_budget = fit_budget
        self._fit_seconds = 0.0

    def start_cycle(self) -> None:
        """A new cycle: its fit budget is whole again."""
        self._fit_seconds = 0.0

    @property
    def budget_spent(self) -> bool:
        # The first fit of a cycle always runs, so every cycle makes progress whatever the budget.
        return self.fit_budget is not None and 0 < self._fit_seconds >= self.fit_budget.total_seconds()

    def forget_except(self, uids: set[str]) -> None:
        """Drop the feeds of policies that are gone."""
        for uid in set(self._feeds) - uids:
            del self._feeds[uid]

    def get(
        self, uid: str, generation: int, spec: ScalingPolicySpec, history: pd.Series, events: list[Event]
    ) -> tuple[Forecast | None, str | None]:
        """The forecast for ``history`` ending at the last completed step, and a note: (forecast, None),
        (forecast, why it is not a fit for this spec: its refit is queued) or (None, why there is none)."""
        horizon = horizon_steps(spec)
        key = (generation, spec.forecast.model, horizon,
               tuple((e.name, e.kind, e.start, e.end, e.expected_lift) for e in events))
        basis = (spec.metric, spec.target_ref, spec.forecast.step)  # what the forecast is of: series and grid
        feed = self._feeds.get(uid)
        if feed is None:
            feed = self._feeds[uid] = ForecastFeed(lambda: self.factory(spec.forecast.model), OPERATOR_FEED)
        feed.make_model = lambda: self.factory(spec.forecast.model)
        end = history.index[-1]
        fits, updates, deferred, seconds = feed.fits, feed.updates, feed.deferred, feed.fit_seconds

        def full() -> pd.Series:
            series = history.copy()
            series.index.freq = pd.tseries.frequencies.to_offset(pd.Timedelta(spec.forecast.step))
            return series

        def new_points() -> pd.Series:  # the points after the last absorbed one: a position, not a mask
            after = 0 if previous is None else int(np.searchsorted(stamps_ns(history.index), ts_ns(previous), "right"))
            return history.iloc[after:]

        previous = feed.end
        spent = self.budget_spent
        forecast = feed.refresh(end, history=full, new_points=new_points, horizon=horizon, events=events, key=key,
                                basis=basis, defer_refit=spent,
                                changed=changes(feed.key, key, feed.basis, basis) if spent else "")
        self.fits += feed.fits - fits
        self.updates += feed.updates - updates
        self.deferred += feed.deferred - deferred
        self._fit_seconds += feed.fit_seconds - seconds
        return forecast, feed.note if forecast is not None else feed.error


def changes(old_key: object, new_key: tuple[object, ...], old_basis: object, new_basis: tuple[object, ...]) -> str:
    """What changed between two forecast keys (and bases), in words: "the event calendar changed"."""
    if not isinstance(old_key, tuple) or not isinstance(old_basis, tuple):
        return "the spec or events changed"
    names = ("the demand metric", "the target", "the forecast step")
    what = [n for n, a, b in zip(names, old_basis, new_basis, strict=True) if a != b]
    if not what:
        what = [n for n, a, b in zip(("the spec", "the forecast model", "the horizon", "the event calendar"),
                                     old_key, new_key, strict=False) if a != b]
        if "the spec" in what and len(what) > 1:
            what.remove("the spec")  # the generation moves with every spec change: name the change itself
    return (" and ".join(what) or "the spec") + " changed"


__all__ = ["OPERATOR_FEED", "REFIT_EVERY", "ForecastCache", "ForecasterFactory", "changes", "horizon_steps",
           "value_at"]
