"""Per-policy forecasts for the loop: fit once, then refresh once per forecast step.

A policy's forecast only changes when its demand grid moves a step, its
spec or its events change. In between (e.g. four 15 s cycles per 1 m
step) the cached forecast is reused. When the step moves, a model with
``update(new_points)`` (the calendar model) absorbs the new points without a
refit; a full refit happens when the spec generation, the model, the
horizon or the events change, and at least every ``REFIT_EVERY``. With a
``deadline`` (``controller.cycle.deadline.CycleDeadline``: ``pitboss operator
run`` sets half the sync period) a cycle fits while its elapsed time, the
fit's expected cost and the expected rest of the cycle stay within the limit
(with a fixed ``fit_budget``, ``--fit-budget``: until that much was spent
fitting) and defers the other fits to later
cycles, where those policies keep the forecast they have; a changed spec or
event calendar queues its refit the same way (``ForecastFeed._queued`` says
what the policy decides on meanwhile, ``changes`` what changed). With
``spread`` (``pitboss operator run`` sets its sync period; ``--no-spread-updates``
turns it off) the per-step updates are spread the same way: each policy has a
phase among the k = ceil(step / sync period) cycles of a step (``Phases``: the
least-loaded one when first seen, so the phases stay even within ±1) and takes
its new point in its phase's cycle, or in the first cycle after it when one was
missed; a policy more than one step behind updates at once. Until then it
decides on the forecast it has (one step older; the horizon's extra step covers
it), and the observed floor holds as ever. Called by
``controller.operator.reconcile``. The refit/update/fallback rules are the
shared ``controller.cycle.feed.ForecastFeed``'s; this module keeps one per
policy and says when the operator's key changes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd

from controller.cycle.deadline import CycleDeadline, FitBudget
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


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def slot_of(now: datetime, step: timedelta, period: timedelta) -> tuple[int, int]:
    """(the cycle of the step ``now`` falls in, the cycles of a step): ``now``'s offset into its step (since
    the epoch, as the demand grid) in whole ``period``s, of k = ceil(step / period)."""
    k = max(1, math.ceil(step / period))
    now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
    return min(k - 1, int(((now - _EPOCH) % step) / period)), k


class Phases:
    """Each policy's phase among the k cycles of a step: the least-loaded one when first seen (ties: the
    lowest), kept until the policy goes or its k changes, so every cycle updates n/k policies within ±1."""

    def __init__(self) -> None:
        self._of: dict[str, tuple[int, int]] = {}  # uid -> (k, phase)
        self._load: dict[int, list[int]] = {}  # k -> policies per phase

    def phase(self, uid: str, k: int) -> int:
        known = self._of.get(uid)
        if known is not None and known[0] == k:
            return known[1]
        self.forget(uid)
        load = self._load.setdefault(k, [0] * k)
        phase = load.index(min(load))
        load[phase] += 1
        self._of[uid] = (k, phase)
        return phase

    def forget(self, uid: str) -> None:
        known = self._of.pop(uid, None)
        if known is not None:
            self._load[known[0]][known[1]] -= 1


class ForecastCache:
    """Forecast feeds by policy uid; counts full fits and incremental updates for the cycle report."""

    def __init__(self, factory: ForecasterFactory, fit_budget: timedelta | None = None,
                 spread: timedelta | None = None, deadline: CycleDeadline | None = None,
                 timer: Callable[[], float] = time.perf_counter) -> None:
        self.factory = factory
        self._feeds: dict[str, ForecastFeed] = {}
        self.fits = 0
        self.updates = 0
        self.deferred = 0  # refits put off to a later cycle (the cycle's deadline or fit budget said so)
        # Updates spread over the cycles of a step, ``spread`` apart (the sync period; None: every policy
        # updates in the first cycle after its step moved).
        self.spread = spread
        self.phases = Phases()
        # Fits spread over cycles, so fitting never delays the scaling decisions of the policies behind them:
        # ``deadline`` (what ``pitboss operator run`` wires) fits while the cycle, the fit and the cycle's
        # expected rest stay within its limit; ``fit_budget`` (``--fit-budget``, which wins) fits until the
        # cycle spent that long fitting. Either way the first fit of a cycle runs; the other policies keep
        # their current forecast (or decide without one until their first fit). Neither: fit whatever is due.
        self.rule: CycleDeadline | FitBudget | None = (
            FitBudget(fit_budget.total_seconds()) if fit_budget is not None else deadline)
        self.timer = timer

    def start_cycle(self, policies: int = 0) -> None:
        """A new cycle over ``policies`` policies: its fitting starts again."""
        if self.rule is not None:
            self.rule.start(self.timer(), policies)

    def next_policy(self) -> None:
        """The cycle's next policy begins (the deadline counts the rest of the cycle in policies)."""
        if self.rule is not None:
            self.rule.next_policy()

    def end_cycle(self) -> None:
        """The cycle ended: the deadline learns its non-fit time."""
        if self.rule is not None:
            self.rule.end(self.timer())

    @property
    def budget_spent(self) -> bool:
        """Whether a fit due now waits for a later cycle (the first fit of a cycle always runs)."""
        return self.rule is not None and not self.rule.may_fit(self.timer())

    def forget_except(self, uids: set[str]) -> None:
        """Drop the feeds of policies that are gone."""
        for uid in set(self._feeds) - uids:
            del self._feeds[uid]
            self.phases.forget(uid)

    def get(
        self, uid: str, generation: int, spec: ScalingPolicySpec, history: pd.Series, events: list[Event],
        now: datetime | None = None,
    ) -> tuple[Forecast | None, str | None]:
        """The forecast for ``history`` ending at the last completed step, and a note: (forecast, None),
        (forecast, why it is not a fit for this spec: its refit is queued) or (None, why there is none).

        With ``spread`` and ``now`` (the cycle's time), an update due for a history one step on waits
        for the policy's phase of the step (``_holds``): the current forecast, as it is, meanwhile."""
        horizon = horizon_steps(spec)
        key = (generation, spec.forecast.model, horizon,
               tuple((e.name, e.kind, e.start, e.end, e.expected_lift) for e in events))
        basis = (spec.metric, spec.target_ref, spec.forecast.step)  # what the forecast is of: series and grid
        feed = self._feeds.get(uid)
        if feed is None:
            feed = self._feeds[uid] = ForecastFeed(lambda: self.factory(spec.forecast.model), OPERATOR_FEED)
        feed.make_model = lambda: self.factory(spec.forecast.model)
        end = history.index[-1]
        if self._holds(uid, feed, end, key, spec.forecast.step, now):
            return feed.current, None
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
        began = self.timer()
        forecast = feed.refresh(end, history=full, new_points=new_points, horizon=horizon, events=events, key=key,
                                basis=basis, defer_refit=spent,
                                changed=changes(feed.key, key, feed.basis, basis) if spent else "")
        self.fits += feed.fits - fits
        self.updates += feed.updates - updates
        self.deferred += feed.deferred - deferred
        if self.rule is not None and feed.fit_seconds > seconds:  # a fit ran (or failed): its cost, on our timer
            self.rule.fitted_one(self.timer() - began)
        return forecast, feed.note if forecast is not None else feed.error

    def _holds(self, uid: str, feed: ForecastFeed, end: pd.Timestamp, key: object, step: timedelta,
               now: datetime | None) -> bool:
        """Whether the update due now waits for a later cycle of this step: only a plain update (never a
        refit, a first fit or a queued one) of a feed exactly one step behind, before the policy's phase."""
        if self.spread is None or now is None or feed.end is None or feed.current is None or feed.note is not None:
            return False
        if end - feed.end != pd.Timedelta(step) or feed.due(end, key) != "update":
            return False  # nothing new, a refit, or more than one step behind: at once
        slot, k = slot_of(now, step, self.spread)
        return slot < self.phases.phase(uid, k)


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


__all__ = ["OPERATOR_FEED", "REFIT_EVERY", "ForecastCache", "ForecasterFactory", "Phases", "changes",
           "horizon_steps", "slot_of", "value_at"]
