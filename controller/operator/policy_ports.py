"""The shared cycle's ports over the operator's adapters, one set per policy per cycle.

``controller.operator.reconcile`` builds them for each policy and hands them
to the cycle's phases (``controller.cycle.run``):

* ``PolicyDemand``: the demand source's history over ``forecast.history``
  (kept for the forecast; with the policy's ``HistoryWindow``, only its tail
  is read, ``controller.operator.history``) and its current reading; too
  little history or no current reading is ``DemandUnavailable`` with the reason;
* ``PolicyForecasts``: the ``ForecastCache`` over that history (``note``: why
  there is no forecast, or why it is not a fit for the spec: a queued refit);
* ``TimedLags``: the database lag query, timed as source time;
* ``ReporterSink``: the incident port over the ``IncidentReporter`` (SLI
  ratios, engine), evaluating with the cycle's memory;
* ``fragment``: the part of a status a ``PolicyMemory`` dumps, to tell whose
  memory a status holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from controller.core.decision import Decision, ObservedState, ReplicaLag
from controller.core.durations import format_duration
from controller.core.policy import Policy
from controller.cycle.memory import PolicyMemory
from controller.cycle.ports import DemandUnavailable, LagSource
from controller.errors import PermanentError, RetryableError
from controller.operator.effects import IncidentCall
from controller.operator.history import Basis, HistoryWindow, known_points
from controller.operator.kube import PolicyObject
from controller.operator.resources import ScalingPolicySpec
from controller.sources.base import DemandSource
from controller.sources.observe import read_current
from forecasting.base import Event, Forecast


@dataclass
class PolicyDemand:
    """The demand port: the source's history over ``forecast.history`` (kept for the forecast) and demand now.

    Too little history or no current reading is ``DemandUnavailable`` with the reason (the value read kept).
    """

    source: Callable[[], DemandSource]
    spec: ScalingPolicySpec
    timed: Callable[[], AbstractContextManager[object]]
    history: pd.Series | None = None
    window: HistoryWindow | None = None  # the policy's kept window (its tail read each cycle); None: read it all

    def current(self, now: datetime) -> float | None:
        step = self.spec.forecast.step
        end = floor_to(now, step)
        try:
            source = self.source()
            with self.timed():
                if self.window is None:
                    history = source.history(end - self.spec.forecast.history, end, step)
                else:
                    basis = Basis(source, self.spec.metric, step, self.spec.forecast.history)
                    history = self.window.read(source, basis, end, now)
                reading = read_current(source, now)  # a retryable failure -> unknown, with the reason
        except (RetryableError, PermanentError, OSError, TimeoutError) as exc:
            raise DemandUnavailable(f"demand source failed: {exc}") from exc
        known = known_points(history, self.window)
        if known < 2:
            window = format_duration(self.spec.forecast.history)
            why = "" if reading.value is not None or not reading.error else f"; {reading.error}"
            raise DemandUnavailable(f"only {known} demand point(s) in the last {window}{why}", reading.value)
        self.history = history
        if reading.value is None:
            raise DemandUnavailable(f"current demand unavailable: {reading.error or 'stale or missing'}")
        return reading.value


@dataclass
class PolicyForecasts:
    """The forecast port: the ForecastCache over the history the demand port read (``note``: why none, or
    why the one it has is not a fit for the spec)."""

    forecast: Callable[[pd.Series | None], tuple[Forecast | None, str | None]]
    demand: PolicyDemand
    note: str | None = None

    def at(self, now: datetime, observed: float | None) -> Forecast | None:
        forecast, self.note = self.forecast(self.demand.history)
        return forecast


@dataclass(frozen=True)
class TimedLags:
    """The lag port, its queries timed as source time."""

    source: LagSource
    timed: Callable[[], AbstractContextManager[object]]

    def lags(self, now: datetime) -> tuple[ReplicaLag, ...]:
        with self.timed():
            return tuple(self.source.lags(now))


@dataclass(frozen=True)
class ReporterSink:
    """The incident port over the IncidentReporter (SLI ratios, engine), with the cycle's memory."""

    call: Callable[[str, IncidentCall], None]  # the Reconciler's guarded, timed call
    policy: PolicyObject
    spec: ScalingPolicySpec

    def observe(self, memory: PolicyMemory, *, policy: Policy, state: ObservedState, decision: Decision,
                step: timedelta, forecast: Forecast | None, events: Sequence[Event],
                metrics_error: str | None) -> tuple[list[str], list[str]]:
        self.call("observe", lambda r: r.observe(
            self.policy, self.spec, policy, state, decision, events=events, forecast=forecast,
            metrics_error=metrics_error, memory=memory))
        return [], []


# The status fields a PolicyMemory dumps (PolicyMemory.dump): compared to tell whose memory the status holds.
MEMORY_FIELDS = ("recommendations", "lastScaleTime", "lastScaleUpTime", "scaleFailures", "forecastChecks",
                 "databaseRecommendations", "databaseScaleUps", "databaseCurrentReplicas")


def fragment(status: Mapping[str, Any] | None) -> dict[str, Any]:
    """The memory's part of a status (empty fields left out)."""
    return {k: v for k in MEMORY_FIELDS if (v := (status or {}).get(k)) is not None and v != []}


def floor_to(now: datetime, step: timedelta) -> datetime:
    """``now`` down to a whole ``step`` since the epoch (what ``pd.Timestamp.floor`` gives, without pandas:
    it ran for every policy every cycle, issue 14)."""
    if now.tzinfo is None:
        return pd.Timestamp(now).floor(pd.Timedelta(step)).to_pydatetime()
    return now - (now - _EPOCH) % step


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


__all__ = ["MEMORY_FIELDS", "PolicyDemand", "PolicyForecasts", "ReporterSink", "TimedLags", "fragment"]
