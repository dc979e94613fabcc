"""The cost/safety frontier: every policy over its own knob on one trace (``pitboss simulate --sweep``).

Each policy is replayed at every value of the knob that trades replica-hours
for unserved demand: ``hpa`` over its target utilization (0.3 .. 0.9),
``keda-cron`` over its event floor (fixed floors around what the history's
peak needs, and "as much as last time"), ``holt-winters`` and ``pitboss``
over the headroom quantile (the values a ScalingPolicy accepts), plus the
oracle's one point. A policy's frontier is its Pareto-efficient points
(fewer replica-hours never at more unserved demand). At the unserved level
of each HPA setting the result says how much cheaper pitboss is, reading
pitboss's frontier between its two neighbouring points (linear: alternating
the two settings over time gets about that mix).

Forecasting policies are fitted once per trace: a forecast depends on the
trace only, never on the quantile, so the first quantile's run records the
forecast at every refit and update, and the others replay that tape through
``decide`` (the same result as a fresh run, at a fraction of the cost).
Deterministic: the same trace and settings give the same points. Called by
``cli.simulate_cmd``; plotted by ``controller.simulate.frontier_plot``.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from controller.core.headroom import label
from controller.core.limits import replicas_for
from controller.core.policy import HEADROOM_QUANTILES
from controller.simulate.engine import Progress, SimConfig, SimContext, make_context, run_policy
from controller.simulate.hpa import Hpa, KedaCron
from controller.simulate.policies import PolicySettings
from controller.simulate.predictive import Oracle, Predictive
from forecasting.base import Event, Forecast

HPA_TARGETS: tuple[float, ...] = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
QUANTILES: tuple[float, ...] = HEADROOM_QUANTILES
KEDA_FACTORS: tuple[float, ...] = (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1.0)  # of what the history's peak needs
KNOBS = {"hpa": "target", "keda-cron": "floor", "holt-winters": "quantile", "pitboss": "quantile", "oracle": "-"}
SWEEPABLE = tuple(KNOBS)


@dataclass(frozen=True)
class SweepSpec:
    """Which policies, over which knob values (None: the defaults above)."""

    policies: tuple[str, ...] = SWEEPABLE
    hpa_targets: tuple[float, ...] = HPA_TARGETS
    quantiles: tuple[float, ...] = QUANTILES
    keda_floors: tuple[int, ...] | None = None  # None: KEDA_FACTORS x what the history's peak needs
    settings: PolicySettings = field(default_factory=PolicySettings)

    def __post_init__(self) -> None:
        for name in self.policies:
            if name not in KNOBS:
                raise ValueError(f"policies: unknown policy {name!r}; expected some of {', '.join(KNOBS)}")
        for t in self.hpa_targets:
            if not 0 < t <= 1:
                raise ValueError(f"hpa-targets: expected utilizations in (0, 1], got {t:g}")
        for q in self.quantiles:
            if q not in HEADROOM_QUANTILES:
                raise ValueError(f"quantiles: expected some of {', '.join(map(str, HEADROOM_QUANTILES))}, got {q:g}")
        for f in self.keda_floors or ():
            if f < 0:
                raise ValueError(f"keda-floors: expected replica counts >= 0, got {f}")


@dataclass
class SweepPoint:
    """One policy at one knob value."""

    policy: str
    knob: str
    value: float | None  # None: keda-cron's "as much as last time", the oracle
    unserved_fraction: float
    replica_hours: float
    peak_replicas: int
    cost_vs_oracle: float | None = None
    on_frontier: bool = False

    @property
    def label(self) -> str:
        if self.value is None:
            return "last time" if self.policy == "keda-cron" else "-"
        if self.knob == "floor":
            return str(int(self.value))
        return label(self.value) if self.knob == "quantile" else f"{self.value:g}"  # p95, q0.995, q0.9999


@dataclass(frozen=True)
class Saving:
    """Pitboss's replica-hours at the unserved level of one HPA setting."""

    hpa_target: float
    unserved_fraction: float
    hpa_replica_hours: float
    pitboss_replica_hours: float | None  # None: safer than any pitboss setting swept
    saving: float | None  # 1 - pitboss / hpa
    how: str  # interpolated | cheapest (pitboss's cheapest point is already safer) | beyond
    pitboss_points: tuple[str, ...] = ()  # the frontier points read: ('p50',) or ('p90', 'p99')


@dataclass
class SweepResult:
    """Every point, each policy's frontier, the oracle and the savings against HPA."""

    series_name: str
    steps: int
    capacity_per_replica: float
    lead_steps: int
    points: list[SweepPoint]
    savings: list[Saving]
    notes: list[str] = field(default_factory=list)

    @property
    def oracle(self) -> SweepPoint | None:
        return next((p for p in self.points if p.policy == "oracle"), None)

    def of(self, policy: str) -> list[SweepPoint]:
        return [p for p in self.points if p.policy == policy]

    def frontier(self, policy: str) -> list[SweepPoint]:
        """The policy's Pareto-efficient points, cheapest first (unserved strictly falling)."""
        return pareto(self.of(policy))

    def to_json(self) -> dict[str, Any]:
        return {
            "series": self.series_name,
            "steps": self.steps,
            "points": [{**asdict(p), "label": p.label} for p in self.points],
            "frontiers": {name: [p.label for p in self.frontier(name)]
                          for name in dict.fromkeys(p.policy for p in self.points)},
            "savings_vs_hpa": [asdict(s) for s in self.savings],
            "notes": self.notes,
        }


def pareto(points: Sequence[SweepPoint]) -> list[SweepPoint]:
    """Points no other point beats on both replica-hours and unserved demand, cheapest first."""
    out: list[SweepPoint] = []
    best = math.inf
    for p in sorted(points, key=lambda p: (p.replica_hours, p.unserved_fraction)):
        if p.unserved_fraction < best - 1e-15:
            out.append(p)
            best = p.unserved_fraction
    return out


def at_unserved(frontier: Sequence[SweepPoint], unserved: float
                ) -> tuple[float | None, str, tuple[SweepPoint, ...]]:
    """Replica-hours on ``frontier`` at ``unserved``, how, and the frontier points it was read from.

    'cheapest': the cheapest point is already as safe; 'interpolated': between
    two neighbours (or on one); 'beyond': safer than every point (None).
    """
    if not frontier:
        return None, "beyond", ()
    if unserved >= frontier[0].unserved_fraction:
        return frontier[0].replica_hours, "cheapest", (frontier[0],)
    for a, b in itertools.pairwise(frontier):
        if a.unserved_fraction >= unserved >= b.unserved_fraction:
            w = (a.unserved_fraction - unserved) / (a.unserved_fraction - b.unserved_fraction)
            used = (b,) if w >= 1 else (a, b)
            return a.replica_hours + w * (b.replica_hours - a.replica_hours), "interpolated", used
    return None, "beyond", ()


class TapedPredictive(Predictive):
    """A Predictive that records its forecasts (``source=None``) or replays another run's (the same trace).

    Only ``_forecast_at`` differs (and the refit counters it replays): what ``decide`` sees is identical.
    """

    def __init__(self, *args: Any, source: TapedPredictive | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.source = source
        self.tape: dict[int, tuple[Forecast | None, int, int]] = {} if source is None else source.tape
        self._replayed = (0, 0)  # (refits, failed refits) of the source at the replayed step

    def reset(self, ctx: SimContext) -> None:
        super().reset(ctx)
        self._replayed = (0, 0)
        if self.source is not None:
            self.notes = list(self.source.notes)

    @property
    def refits(self) -> int:
        return self._replayed[0] if self.source is not None else super().refits

    @property
    def failed_refits(self) -> int:
        return self._replayed[1] if self.source is not None else super().failed_refits

    def _forecast_at(self, t: int) -> Forecast | None:
        if self.source is None:
            forecast = super()._forecast_at(t)
            self.tape[t] = (forecast, self.refits, self.failed_refits)
            return forecast
        forecast, *counts = self.tape[t]
        self._replayed = (counts[0], counts[1])
        return forecast


def keda_floors(ctx: SimContext, target: float) -> tuple[int, ...]:
    """Floors around the replicas the history's peak needs (the test window is not looked at)."""
    history = ctx.series.iloc[: ctx.start].to_numpy(dtype=float)
    if not len(history) or np.isnan(history).all():
        history = ctx.series.to_numpy(dtype=float)[: max(1, ctx.start)]
    peak = float(np.nanmax(history)) if not np.isnan(history).all() else 0.0
    need = replicas_for(peak, ctx.config.capacity_per_replica * target)
    lo, hi = ctx.config.min_replicas, ctx.config.max_replicas
    return tuple(sorted({min(hi, max(lo, round(need * f))) for f in KEDA_FACTORS}))


def runs_of(spec: SweepSpec, ctx: SimContext) -> list[tuple[str, str, float | None]]:
    """(policy, knob, value) of every run, in order."""
    out: list[tuple[str, str, float | None]] = []
    s = spec.settings
    for name in spec.policies:
        if name == "hpa":
            out += [(name, "target", t) for t in spec.hpa_targets]
        elif name == "keda-cron":
            floors = spec.keda_floors if spec.keda_floors is not None else keda_floors(ctx, s.hpa_target)
            out += [(name, "floor", float(f)) for f in floors] + [(name, "floor", None)]
        elif name in ("holt-winters", "pitboss"):
            out += [(name, "quantile", q) for q in spec.quantiles]
        else:
            out.append((name, "-", None))
    return out


def sweep(series: pd.Series, events: Sequence[Event], config: SimConfig, spec: SweepSpec | None = None, *,
          progress: Progress | None = None) -> SweepResult:
    """Run every (policy, knob value) over the trace and build the frontiers and the savings against HPA."""
    spec = spec or SweepSpec()
    ctx = make_context(series, events, config)
    runs = runs_of(spec, ctx)
    s = spec.settings
    notes: list[str] = []
    first, last = ctx.index[0] - pd.Timedelta(ctx.step * ctx.lead_steps), ctx.index[-1]
    if "keda-cron" in spec.policies and not any(e.start <= last and e.end > first for e in ctx.events):
        notes.append("keda-cron: no known event in the test window, so every floor is plain HPA"
                     + ("" if ctx.events else " (pass --events)"))
    tapes: dict[str, TapedPredictive] = {}
    points: list[SweepPoint] = []
    for name, knob, value in runs:
        if name == "hpa":
            scaler: Any = Hpa(target_utilization=float(value or s.hpa_target))
        elif name == "keda-cron":
            scaler = KedaCron(target_utilization=s.hpa_target, event_min_replicas=None if value is None
                              else int(value))
        elif name in ("holt-winters", "pitboss"):
            model = s.holt_winters_model if name == "holt-winters" else s.pitboss_model
            scaler = TapedPredictive(name, model, use_events=name == "pitboss", refit_every=s.refit_every,
                                     max_history=s.max_history, headroom_quantile=float(value or 0.95),
                                     scale_down=s.scale_down, model_params=s.model_params.get(model),
                                     source=tapes.get(name))
            tapes.setdefault(name, scaler)
        else:
            scaler = Oracle()
        run = run_policy(ctx, scaler, progress)
        m = run.metrics
        points.append(SweepPoint(name, knob, value, m.unserved_fraction, m.replica_hours, m.peak_replicas))
        for note in run.notes:
            if f"{name}: {note}" not in notes:
                notes.append(f"{name}: {note}")
    oracle_hours = next((p.replica_hours for p in points if p.policy == "oracle"), None)
    by_policy: dict[str, list[SweepPoint]] = {}
    for p in points:
        p.cost_vs_oracle = p.replica_hours / oracle_hours if oracle_hours else None
        by_policy.setdefault(p.policy, []).append(p)
    for group in by_policy.values():
        for p in pareto(group):
            p.on_frontier = True
    savings = []
    if "hpa" in by_policy and "pitboss" in by_policy:
        front = pareto(by_policy["pitboss"])
        for h in by_policy["hpa"]:
            rh, how, used = at_unserved(front, h.unserved_fraction)
            savings.append(Saving(hpa_target=float(h.value or 0), unserved_fraction=h.unserved_fraction,
                                  hpa_replica_hours=h.replica_hours, pitboss_replica_hours=rh,
                                  saving=None if rh is None or not h.replica_hours else 1 - rh / h.replica_hours,
                                  how=how, pitboss_points=tuple(p.label for p in used)))
    return SweepResult(series_name=str(series.name or "series"), steps=ctx.steps,
                       capacity_per_replica=config.capacity_per_replica, lead_steps=ctx.lead_steps, points=points,
                       savings=savings, notes=notes)


def total_steps(series: pd.Series, events: Sequence[Event], config: SimConfig, spec: SweepSpec) -> int:
    """Steps the whole sweep simulates (for a progress bar's total)."""
    ctx = make_context(series, events, config)
    return ctx.steps * len(runs_of(spec, ctx))


__all__ = ["Saving", "SweepPoint", "SweepResult", "SweepSpec", "at_unserved", "pareto", "sweep"]
