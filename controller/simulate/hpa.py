"""The reactive baselines: the Kubernetes HPA algorithm, and KEDA's cron lift on top of it.

``hpa`` follows the HPA controller (pkg/controller/podautoscaler) on one
demand metric: every 15 s sync it computes usage ratio = demand / (ready x
capacity x target utilization); within 10 % tolerance it keeps the replicas;
on a scale-up with unready pods it counts those at zero usage (and does
nothing if the ratio then falls within tolerance); the recommendation
ceil(demand / (capacity x target)) is stabilized downward over 300 s (max of
the window) and scale-up is rate-limited to max(2x, +4 pods) per 15 s. The
metric it reads is the last complete step's demand. Syncs are scaled to the
trace step: a 1-minute step runs 4 syncs on the same observed demand.

``keda-cron`` is the same HPA whose minReplicas is lifted during known events
(from ``lead`` before the start to the end), to a configured value or one
derived from the peak demand of the last past event of the same kind (what
KEDA users set by hand: "as much as last time"). Used by the simulator through ``controller.simulate.policies``.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

from controller.core.limits import replicas_for
from controller.simulate.engine import SimContext, StepView
from forecasting.base import Event

SYNC = timedelta(seconds=15)


class Hpa:
    """The HPA's replica calculator and default behaviour, on observed demand."""

    name = "hpa"

    def __init__(
        self,
        *,
        target_utilization: float = 0.8,
        tolerance: float = 0.1,
        stabilization: timedelta = timedelta(seconds=300),
    ) -> None:
        if not 0 < target_utilization <= 1:
            raise ValueError(f"hpa-target: expected a utilization in (0, 1], got {target_utilization}")
        self.target = target_utilization
        self.tolerance = tolerance
        self.stabilization = stabilization
        self.notes: list[str] = []
        self._min_schedule: np.ndarray | None = None

    def reset(self, ctx: SimContext) -> None:
        cfg = ctx.config
        self._cap = cfg.capacity_per_replica
        self._min, self._max = cfg.min_replicas, cfg.max_replicas
        step_s = ctx.step.total_seconds()
        self._syncs_per_step = max(1, round(step_s / SYNC.total_seconds()))
        self._sync_every = max(1, round(SYNC.total_seconds() / step_s))  # steps between syncs (sub-15 s steps)
        window_syncs = math.ceil(self.stabilization / SYNC)
        self._recs: deque[int] = deque(maxlen=max(1, window_syncs + 1))
        self._replicas = ctx.initial_replicas
        self._min_schedule = self.min_schedule(ctx)

    def min_schedule(self, ctx: SimContext) -> np.ndarray | None:
        """minReplicas per test step, or None for the constant minimum (overridden by keda-cron)."""
        return None

    def _recommend(self, demand: float, current: int, ready: int) -> int:
        """The replica calculator: usage ratio with tolerance and unready pods at zero."""
        per = self._cap * self.target
        if ready <= 0:
            return max(current, replicas_for(demand, per))
        ratio = demand / (ready * per)
        if ratio > 1 and current > ready:
            ratio = demand / (current * per)  # unready pods count as zero usage on scale-up
            if ratio <= 1 + self.tolerance:
                return current
        if abs(ratio - 1) <= self.tolerance:
            return current
        return replicas_for(demand, per)

    def desired(self, view: StepView) -> int:
        lo = self._min if self._min_schedule is None else int(self._min_schedule[view.t])
        if view.t % self._sync_every:
            return max(view.current_replicas, lo)
        current = view.current_replicas
        demand = view.observed_demand
        unchanged = 0
        for _ in range(self._syncs_per_step):
            # No metrics: the HPA holds (it never scales on missing data).
            rec = current if demand is None else self._recommend(demand, current, view.ready_replicas)
            rec = min(max(rec, lo), self._max)
            self._recs.append(rec)
            desired = current
            down_limit = max(self._recs)  # scale-down stabilization: max over the window
            if desired < rec:
                desired = rec
            if desired > down_limit:
                desired = down_limit
            up_limit = max(2 * current, current + 4)
            desired = min(desired, up_limit, self._max)
            desired = max(desired, lo)
            if desired == current:
                unchanged += 1
                if unchanged > (self._recs.maxlen or 1):  # window full of one answer: nothing more changes
                    break
            else:
                unchanged = 0
            current = desired
        return current


class KedaCron(Hpa):
    """HPA plus a cron schedule lifting minReplicas during known events."""

    name = "keda-cron"

    def __init__(
        self,
        *,
        event_min_replicas: int | None = None,
        target_utilization: float = 0.8,
        tolerance: float = 0.1,
        stabilization: timedelta = timedelta(seconds=300),
    ) -> None:
        super().__init__(target_utilization=target_utilization, tolerance=tolerance, stabilization=stabilization)
        if event_min_replicas is not None and event_min_replicas < 0:
            raise ValueError(f"keda-min: must be >= 0, got {event_min_replicas}")
        self.event_min = event_min_replicas

    def min_schedule(self, ctx: SimContext) -> np.ndarray | None:
        index = ctx.index
        floor = np.full(ctx.steps, ctx.config.min_replicas, dtype=np.int64)
        lead = pd.Timedelta(ctx.step * ctx.lead_steps)
        self.notes = []
        for event in ctx.events:
            lo = int(index.searchsorted(event.start - lead))
            hi = int(index.searchsorted(event.end))
            if hi <= 0 or lo >= ctx.steps:
                continue
            lift = self.event_min if self.event_min is not None else self._derived(ctx, event)
            if lift is None:
                self.notes.append(f"{event.name}: no past '{event.kind}' event and no expected lift; HPA only")
                continue
            lift = min(lift, ctx.config.max_replicas)
            floor[max(lo, 0) : hi] = np.maximum(floor[max(lo, 0) : hi], lift)
        return floor

    def _derived(self, ctx: SimContext, event: Event) -> int | None:
        """Replicas for the peak of the last past event of the same kind ("as much as last time").

        Without one, the event's expected lift times the peak of the same
        window a week earlier; without that either, None (plain HPA).
        """
        past = ctx.series.loc[: event.start - pd.Timedelta(ctx.step)]
        per = ctx.config.capacity_per_replica * self.target
        for other in sorted(_same_kind_before(ctx.events, event), key=lambda e: e.start, reverse=True):
            window = past.loc[other.start : other.end - pd.Timedelta(ctx.step)].to_numpy(dtype=float)
            if len(window) and not np.isnan(window).all():
                return replicas_for(float(np.nanmax(window)), per)
        if event.expected_lift is not None:
            week = pd.Timedelta(days=7)
            slot = past.loc[event.start - week : event.end - week].to_numpy(dtype=float)
            if len(slot) and not np.isnan(slot).all():
                return replicas_for(float(np.nanmax(slot)) * event.expected_lift, per)
        return None


def _same_kind_before(events: Sequence[Event], event: Event) -> list[Event]:
    return [e for e in events if e.kind == event.kind and e.end <= event.start]
