"""Forecast-driven policies: ``decide()`` fed by a forecasting model, and the oracle.

``Predictive`` is what the operator does, replayed: every ``refit_every`` it
fits the model on the trace *before* now (at most ``max_history`` steps, the
events that are known by then) and predicts the steps until the next refit
plus the lead time; at every step it calls ``controller.core.decide`` with
that forecast, the last complete step's demand and its own recommendation
history. Between refits, a model with ``update(new_points)`` (the calendar
model's residual filter) absorbs each completed step and predicts the next
lead + 2 steps again, as the operator does every cycle. A model without it
(holt-winters) predicts once per refit and ``decide`` picks its window out of
that forecast: exactly what predicting at every step would give, since such a
model's state only changes when it is refitted.

* ``holt-winters``: the seasonality-only model, no events (what Crane, the
  predictive HPA and the clouds' predictive scaling do);
* ``pitboss``: the ``calendar`` model with the event calendar.

The refit/update/fallback rules are the shared ``controller.cycle.feed.ForecastFeed``
(a failed refit or update keeps the forecast it had) and the stabilization
window is the shared ``controller.cycle.memory``; each step is one
``controller.cycle.run.run_cycle`` over the engine's warming replicas.

``Oracle`` knows the whole demand (it alone reads the future): it asks at each
step for the replicas the next ``lead`` steps need, the fewest at zero
unserved demand. Used by the simulator through ``controller.simulate.policies``.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from controller.core.headroom import label
from controller.core.limits import clamp, replicas_for
from controller.core.policy import Policy
from controller.cycle.feed import FeedPolicy, ForecastFeed
from controller.cycle.memory import PolicyMemory
from controller.cycle.run import At, Ports, run_cycle
from controller.simulate.costs import SimCosts
from controller.simulate.engine import SimContext, StepView
from controller.targets.base import ScaleState, TargetKey
from forecasting import registry
from forecasting.base import Event, Forecast, Forecaster

log = logging.getLogger(__name__)


class Predictive:
    """decide() over a model refitted on the past as the operator would."""

    def __init__(
        self,
        name: str,
        model: str,
        *,
        use_events: bool,
        refit_every: timedelta | None = None,
        max_history: int = 21 * 1440,
        headroom_quantile: float = 0.95,
        scale_down: dict[str, Any] | None = None,
        model_params: dict[str, Any] | None = None,
        update_every: timedelta | None = None,
        costs: SimCosts | None = None,
    ) -> None:
        if refit_every is not None and refit_every <= timedelta(0):
            raise ValueError(f"refit-every: must be positive, got {refit_every}")
        if max_history < 2:
            raise ValueError(f"max-history: needs at least 2 steps, got {max_history}")
        self.name = name
        self.model_name = model
        self.use_events = use_events
        self.refit_every = refit_every
        self.max_history = max_history
        self.headroom_quantile = headroom_quantile
        self.scale_down = scale_down or {}
        self.model_params = model_params or {}
        if update_every is not None and update_every <= timedelta(0):
            raise ValueError(f"update-every: must be positive, got {update_every}")
        self.update_every = update_every
        self.costs = costs  # set: decide() sizes at the newsvendor quantile (controller.simulate.costs)
        self.sized_at: dict[str, int] = {}  # headroom the decisions quoted -> how many decisions
        self.notes: list[str] = []
        self.reasons: Counter[str] = Counter()  # decisions per reason over the run
        self.steps_without_forecast = 0  # decisions made with no forecast covering now
        self.fallback: str | None = None  # the model a refit fell back to (seasonal-naive), if any

    def reset(self, ctx: SimContext) -> None:
        cfg = ctx.config
        step = ctx.step
        # The decision at step t must cover steps t .. t + lead (a replica asked
        # now is ready lead steps later, and the next decision comes one step
        # later), so decide() gets the lead in whole steps and a sync period
        # shorter than a step.
        spec: dict[str, Any] = {
            "capacity_per_replica": cfg.capacity_per_replica,
            "min_replicas": cfg.min_replicas,
            "max_replicas": cfg.max_replicas,
            "lead_time": step * ctx.lead_steps,
            "sync_period": min(timedelta(seconds=15), step / 2),
            "headroom_quantile": self.headroom_quantile,
        }
        if self.scale_down:
            spec["scale_down"] = self.scale_down
        if self.costs is not None:
            spec["costs"] = self.costs.policy_costs(step)
        self.policy = Policy.model_validate(spec)
        self.sized_at = {}
        self._ctx = ctx
        # Default: hourly, as the operator refits, but never more often than every
        # 24 steps (hourly data gets a daily refit; update() absorbs each step).
        refit = self.refit_every if self.refit_every is not None else max(timedelta(hours=1), 24 * step)
        self._refit_steps = max(1, round(refit / step))
        self._horizon = self._refit_steps + ctx.lead_steps + 2
        self._model: Forecaster = registry.create(self.model_name, **self.model_params)
        model = self._model
        self.feed = ForecastFeed(lambda: model, FeedPolicy(
            refit_every=step * self._refit_steps, on_update_failure="keep", on_fit_failure="keep",
            update_every=step * (1 if self.update_every is None else max(1, round(self.update_every / step)))))
        self._memory = PolicyMemory({"namespace": "simulate", "policy": self.name})
        self.notes, self.reasons, self.steps_without_forecast, self.fallback = [], Counter(), 0, None
        self._uncovered = 0
        self._events = sorted(ctx.events, key=lambda e: e.start) if self.use_events else []
        self._near: list[Event] = []
        self._fit_events: list[Event] = []

    # The feed's counters (``self.feed``: fits, updates, failures, seconds), under the simulator's names.
    @property
    def refits(self) -> int:
        return self.feed.fits

    @property
    def failed_refits(self) -> int:
        return self.feed.failed_fits

    def _events_for(self, t: int) -> None:
        """Before a refit: only the events near the fitted history and the coming horizon matter to the
        model; passing fewer keeps each update cheap."""
        now = self._ctx.index[t]
        margin = pd.Timedelta(days=1)
        until = now + pd.Timedelta(self._ctx.step * self._horizon) + margin
        self._near = [e for e in self._events if e.end >= now - margin and e.start <= until]
        start = self._ctx.history(t, self.max_history).index
        self._fit_events = [e for e in self._events if e.end >= start[0] - margin and e.start <= until] \
            if len(start) else []

    def _forecast_at(self, t: int) -> Forecast | None:
        """Refit every ``refit_every``, update in between (see the module docstring), as the operator would."""
        feed, now = self.feed, self._ctx.index[t]
        action = feed.due(now)
        if action == "refit":
            self._events_for(t)
        failed = feed.failed_fits + feed.failed_updates
        update_steps = max(1, round(feed.policy.update_every / self._ctx.step))
        forecast = feed.refresh(
            now, history=lambda: self._ctx.history(t, self.max_history),
            new_points=lambda: self._ctx.history(t, update_steps),  # exactly update_steps since the last absorb
            horizon=self._horizon, fit_events=self._fit_events, events=self._near,
            update_horizon=update_steps + self._ctx.lead_steps + 2)
        if feed.failed_fits + feed.failed_updates > failed:  # this refresh failed: note the first three of each
            failure = feed.failures[-1]
            if (feed.failed_fits if failure.kind == "fit" else feed.failed_updates) <= 3:
                what = "refit" if failure.kind == "fit" else "update"
                self.notes.append(f"{what} at {now} failed: {failure.message}")
        if action == "refit" and forecast is not None and forecast.fallback and self.fallback is None \
                and feed.error is None:
            self.fallback = forecast.fallback
            why = getattr(self._model, "fallback_reason", None) or "see the model's warning"
            self.notes.append(f"{self.model_name} fell back to {self.fallback} at {now}: {why}")
        return forecast

    def desired(self, view: StepView) -> int:
        ports = Ports(policy=self.policy, target=_WarmingTarget(view), key=SIM_KEY, demand=_LastStep(view),
                      forecasts=_StepForecasts(self, view.t), clock=At(view.now.to_pydatetime()), step=self._ctx.step)
        out = run_cycle(ports, self._memory)
        decision = out.plan.decision
        self.reasons[decision.reason] += 1
        if "ForecastUnavailable" in decision.flags:
            self.steps_without_forecast += 1
        if out.plan.uncovered:
            # A forecast exists but misses now: a bug (issue 9) unless a refit failed; never silent.
            self._uncovered += 1
            if self._uncovered == 1:
                log.error("%s: %s", self.name, decision.message)
                self.notes.append(f"step {view.t}: {decision.message}")
        if self.costs is not None and decision.headroom_quantile is not None:
            key = label(decision.headroom_quantile)
            if key not in self.sized_at and len(self.sized_at) < 3:
                self.notes.append(f"sized at newsvendor {key} (first at {view.now:%Y-%m-%d %H:%M})")
            self.sized_at[key] = self.sized_at.get(key, 0) + 1
        return out.plan.desired


SIM_KEY = TargetKey("simulate", "Deployment", "target")


@dataclass(frozen=True)
class _WarmingTarget:
    """The scale target port over the engine's step: replicas asked for, those warmed up (after the lead
    steps) ready; a write is what the engine applies for the next step."""

    view: StepView

    def get_scale(self, key: TargetKey) -> ScaleState:
        return ScaleState(self.view.current_replicas, self.view.current_replicas, self.view.ready_replicas)

    def set_replicas(self, key: TargetKey, replicas: int, resource_version: str | None = None) -> ScaleState:
        return ScaleState(replicas, self.view.current_replicas, self.view.ready_replicas)


@dataclass(frozen=True)
class _LastStep:
    """The demand port: the last complete step's demand (None at a gap)."""

    view: StepView

    def current(self, now: datetime) -> float | None:
        return self.view.observed_demand


@dataclass(frozen=True)
class _StepForecasts:
    """The forecast port: the policy's feed at step ``t``."""

    scaler: Predictive
    t: int
    note: str | None = None

    def at(self, now: datetime, observed: float | None) -> Forecast | None:
        return self.scaler._forecast_at(self.t)


class Oracle:
    """Perfect foresight with the same lead time: min replicas at zero unserved demand."""

    name = "oracle"

    def reset(self, ctx: SimContext) -> None:
        cfg = ctx.config
        demand = np.nan_to_num(ctx.demand, nan=0.0)
        need = np.array([replicas_for(d, cfg.capacity_per_replica) for d in demand], dtype=np.int64)
        need = np.clip(need, cfg.min_replicas, cfg.max_replicas)
        lead = ctx.lead_steps
        # Ready at s = min(asked[s-lead .. s]) >= need[s]  <=>  asked[u] >= max(need[u .. u+lead]).
        padded = np.concatenate([need, np.full(lead, cfg.min_replicas, dtype=np.int64)])
        plan = np.lib.stride_tricks.sliding_window_view(padded, lead + 1).max(axis=1)
        self._plan = np.array([clamp(int(x), cfg.min_replicas, cfg.max_replicas)[0] for x in plan])

    def desired(self, view: StepView) -> int:
        return int(self._plan[view.t])
