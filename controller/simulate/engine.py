"""The what-if simulator: replay a demand trace against scaling policies.

Discrete time over the trace's own step. At the start of step ``t`` a policy
sees the past only (demand up to step ``t-1``, its own replicas) and asks for
a replica count. Replicas asked for become ready ``lead_steps`` later; scale
down takes effect at once (the newest, still-warming pods go first). During
step ``t`` the service serves ``min(d[t], ready[t] * capacity)``; the rest is
unserved. Every policy runs through the same loop and the same metrics.

Called by ``pitboss simulate`` (cli/simulate_cmd.py) and benchmarks/bench_simulate.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Protocol

import numpy as np
import pandas as pd

from controller.core.limits import clamp, replicas_for
from controller.simulate.metrics import PolicyMetrics, compute_metrics
from forecasting.base import Event

Progress = Callable[[int], None]  # called with the number of steps just simulated


@dataclass(frozen=True)
class SimConfig:
    """What every policy shares: capacity, bounds, lead time and the test window."""

    capacity_per_replica: float
    lead_time: timedelta
    min_replicas: int = 1
    max_replicas: int = 500
    test_days: float | None = 7.0  # simulate the last N days; the rest is history; None: all

    def __post_init__(self) -> None:
        if not self.capacity_per_replica > 0 or not math.isfinite(self.capacity_per_replica):
            raise ValueError(f"capacity-per-replica: expected a positive number, got {self.capacity_per_replica}")
        if self.lead_time < timedelta(0):
            raise ValueError(f"lead-time: must not be negative, got {self.lead_time}")
        if self.min_replicas < 0:
            raise ValueError(f"min: must be >= 0, got {self.min_replicas}")
        if self.max_replicas < max(1, self.min_replicas):
            raise ValueError(f"max: must be >= 1 and >= min ({self.min_replicas}), got {self.max_replicas}")
        if self.test_days is not None and not self.test_days > 0:
            raise ValueError(f"test-days: must be positive, got {self.test_days}")


@dataclass
class SimContext:
    """The trace and settings one simulation runs over (read by every policy).

    ``series`` holds the whole trace (warm-up history and test window);
    ``start`` is the position of the first simulated step in it. Policies
    other than the oracle must read only ``history(t)`` and ``StepView``.
    """

    series: pd.Series
    events: Sequence[Event]
    config: SimConfig
    start: int
    step: timedelta
    lead_steps: int
    initial_replicas: int
    demand: np.ndarray = field(repr=False)  # the test window's demand (NaN = gap)

    @property
    def steps(self) -> int:
        return len(self.demand)

    @property
    def index(self) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(self.series.index[self.start :])

    def history(self, t: int, max_steps: int | None = None) -> pd.Series:
        """The trace strictly before test step ``t`` (at most ``max_steps`` points): the past only."""
        end = self.start + t
        begin = 0 if max_steps is None else max(0, end - max_steps)
        return self.series.iloc[begin:end]


@dataclass(frozen=True)
class StepView:
    """What a policy may see at the start of test step ``t``."""

    t: int
    now: pd.Timestamp
    observed_demand: float | None  # demand of the last complete step; None at a gap
    current_replicas: int  # replicas asked for (running or warming)
    ready_replicas: int  # replicas ready to serve during this step


class Scaler(Protocol):
    """A scaling policy under simulation."""

    name: str

    def reset(self, ctx: SimContext) -> None:
        """Prepare for a run over ``ctx`` (fit nothing from the future, except the oracle)."""
        ...

    def desired(self, view: StepView) -> int:
        """Replicas to ask for at the start of step ``view.t``."""
        ...


@dataclass
class PolicyRun:
    """One policy's trajectory over the test window and its metrics."""

    name: str
    asked: np.ndarray  # replicas existing (running or warming) during each step
    ready: np.ndarray  # replicas ready to serve during each step
    metrics: PolicyMetrics
    notes: list[str] = field(default_factory=list)
    # Forecast-driven policies only (None for the others): steps decided with no forecast
    # covering now, decisions per reason, and the model a refit fell back to.
    steps_without_forecast: int | None = None
    reasons: dict[str, int] = field(default_factory=dict)
    fallback: str | None = None

    def as_dict(self) -> dict[str, object]:
        """The policy's ``--json`` object: its metrics, and for a forecast policy how far it had one."""
        out: dict[str, object] = dict(self.metrics.as_dict())
        if self.steps_without_forecast is not None:
            out["steps_without_forecast"] = self.steps_without_forecast
            out["fallback"] = self.fallback
        return out


@dataclass
class SimResult:
    """Every policy's run over one trace."""

    series_name: str
    index: pd.DatetimeIndex
    demand: np.ndarray
    capacity_per_replica: float
    lead_steps: int
    runs: dict[str, PolicyRun]
    events: Sequence[Event] = ()

    def to_json(self) -> dict[str, object]:
        """The ``--json`` object of the CLI."""
        return {
            "series": self.series_name,
            "steps": len(self.demand),
            "policies": {name: run.as_dict() for name, run in self.runs.items()},
        }


def lead_steps_for(lead_time: timedelta, step: timedelta) -> int:
    """Lead time in whole steps, rounded up: a replica is ready at the first step boundary after it warms."""
    return math.ceil(lead_time / step - 1e-9) if lead_time > timedelta(0) else 0


def make_context(series: pd.Series, events: Sequence[Event], config: SimConfig) -> SimContext:
    """Split ``series`` into history and test window; ValueError naming the flag when it cannot."""
    if not isinstance(series.index, pd.DatetimeIndex) or len(series) < 2:
        raise ValueError("series: expected at least two points on a regular time index")
    step = pd.Timedelta(series.index[1] - series.index[0]).to_pytimedelta()
    if config.test_days is None:
        start = 0
    else:
        test_steps = math.floor(timedelta(days=config.test_days) / step + 1e-9)
        if test_steps < 1:
            raise ValueError(f"test-days: {config.test_days} days is shorter than one step ({step})")
        if test_steps > len(series) - 1:
            span = (series.index[-1] - series.index[0]).total_seconds() / 86400
            raise ValueError(
                f"test-days: {config.test_days} days needs a longer series; it spans {span:.2f} days"
                " and the test window must leave some history before it"
            )
        start = len(series) - test_steps
    demand = series.to_numpy(dtype=float)[start:]
    if np.isnan(demand).all():
        raise ValueError("series: every value in the test window is empty")
    lead = lead_steps_for(config.lead_time, step)
    first = demand[: lead + 1]
    peak = float(np.nanmax(first)) if not np.isnan(first).all() else 0.0
    initial, _ = clamp(replicas_for(peak, config.capacity_per_replica), config.min_replicas, config.max_replicas)
    return SimContext(
        series=series,
        events=list(events),
        config=config,
        start=start,
        step=step,
        lead_steps=lead,
        initial_replicas=initial,
        demand=demand,
    )


def ready_from_asked(asked: np.ndarray, initial: int, lead_steps: int) -> np.ndarray:
    """Ready replicas per step: those that existed throughout the last ``lead_steps`` steps.

    With newest-first removal, the pods ready at step s are the ones that
    survived from s - lead to s: min(asked[s - lead .. s]) (``initial`` before 0).
    """
    if lead_steps == 0:
        return asked.copy()
    padded = np.concatenate([np.full(lead_steps, initial, dtype=asked.dtype), asked])
    windows = np.lib.stride_tricks.sliding_window_view(padded, lead_steps + 1)
    return windows.min(axis=1)


def run_policy(ctx: SimContext, scaler: Scaler, progress: Progress | None = None, chunk: int = 256) -> PolicyRun:
    """Simulate one policy over the test window."""
    scaler.reset(ctx)
    n, lead, cfg = ctx.steps, ctx.lead_steps, ctx.config
    asked = np.empty(n, dtype=np.int64)
    # Ring of the last ``lead`` asks (initial replicas before the window starts).
    recent = np.full(max(lead, 1), ctx.initial_replicas, dtype=np.int64)
    current = ctx.initial_replicas
    index = ctx.series.index
    demand_all = ctx.series.to_numpy(dtype=float)
    done = 0
    for t in range(n):
        i = ctx.start + t
        prev = demand_all[i - 1] if i > 0 else math.nan
        ready = int(min(recent.min(), current)) if lead else current
        view = StepView(
            t=t,
            now=index[i],
            observed_demand=None if math.isnan(prev) else float(prev),
            current_replicas=current,
            ready_replicas=ready,
        )
        want = int(scaler.desired(view))
        current, _ = clamp(want, cfg.min_replicas, cfg.max_replicas)
        asked[t] = current
        if lead:
            recent[t % lead] = current
        done += 1
        if progress is not None and done == chunk:
            progress(done)
            done = 0
    if progress is not None and done:
        progress(done)
    ready_arr = ready_from_asked(asked, ctx.initial_replicas, lead)
    metrics = compute_metrics(ctx.demand, asked, ready_arr, ctx.config.capacity_per_replica, ctx.step)
    notes = list(getattr(scaler, "notes", []))
    return PolicyRun(
        name=scaler.name,
        asked=asked,
        ready=ready_arr,
        metrics=metrics,
        notes=notes,
        steps_without_forecast=getattr(scaler, "steps_without_forecast", None),
        reasons=dict(getattr(scaler, "reasons", {})),
        fallback=getattr(scaler, "fallback", None),
    )


def simulate(
    series: pd.Series,
    events: Sequence[Event],
    config: SimConfig,
    scalers: Sequence[Scaler],
    *,
    progress: Progress | None = None,
    reference: Scaler | None = None,
) -> SimResult:
    """Run every scaler over the trace; ``cost_vs_oracle`` divides by ``reference``'s replica-hours.

    ``reference`` (the oracle) is run but not reported when it is not among
    ``scalers``; without it ``cost_vs_oracle`` is None.
    """
    ctx = make_context(series, events, config)
    runs: dict[str, PolicyRun] = {}
    for scaler in scalers:
        if scaler.name in runs:
            raise ValueError(f"policies: {scaler.name!r} listed twice")
        runs[scaler.name] = run_policy(ctx, scaler, progress)
    base = None
    if reference is not None:
        base = runs.get(reference.name) or run_policy(ctx, reference, None)
    for run in runs.values():
        oracle_hours = None if base is None else base.metrics.replica_hours
        run.metrics.cost_vs_oracle = None if not oracle_hours else run.metrics.replica_hours / oracle_hours
    return SimResult(
        series_name=str(series.name or "series"),
        index=ctx.index,
        demand=ctx.demand,
        capacity_per_replica=config.capacity_per_replica,
        lead_steps=ctx.lead_steps,
        runs=runs,
        events=list(events),
    )
