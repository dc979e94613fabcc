"""The ports of the cycle: what a shell plugs in, one protocol each (fakes in ``controller.cycle.fakes``).

* ``DemandSource``: the demand now (None: unknown, never zero); raises a
  ``PitbossError`` when the source fails (a scrape, Prometheus, a replayed trace),
  ``DemandUnavailable`` when what it read is not enough to trust (too little
  history: the value read is kept, the reason is the metrics error);
* ``ScaleTarget``: read and write a workload's replicas (``/scale``, local
  processes, the simulator's warming replicas): ``controller.targets.base``;
* ``LagSource``: replication lag of database read replicas (the operator);
* ``Forecasts``: the forecast to decide with now, given what was observed (a
  ``ForecastFeed`` behind it);
* ``IncidentSink``: the incident rules of one policy's cycle, typed;
* ``Recorder``: where a cycle's outcome goes (run record, metrics, status);
* ``Clock``: what time it is for the cycle (wall, compressed or simulated).

Used by ``controller.cycle.run`` and the shells that adapt to it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from controller.core.decision import Decision, ObservedState, ReplicaLag
from controller.core.policy import Policy
from controller.errors import RetryableError
from controller.targets.base import ScaleTarget
from forecasting.base import Event, Forecast

if TYPE_CHECKING:
    from controller.cycle.memory import PolicyMemory
    from controller.cycle.run import CycleOutcome


class DemandUnavailable(RetryableError):
    """The demand cannot be trusted this cycle (the message says why); ``value``: what was read anyway."""

    def __init__(self, message: str, value: float | None = None) -> None:
        super().__init__(message)
        self.value = value


class DemandSource(Protocol):
    """The demand a policy's target sees now."""

    def current(self, now: datetime) -> float | None:
        """Demand (per second) at ``now``; None when unknown."""
        ...


class LagSource(Protocol):
    """Replication lag of each database read replica (None: unknown); raises when the query fails."""

    def lags(self, now: datetime) -> tuple[ReplicaLag, ...]: ...


class Forecasts(Protocol):
    """The forecast to decide with at ``now`` (None: none), absorbing ``observed`` when a step completed.

    ``note``, after ``at``: why there is no forecast, or why the one given is not a fit for the policy's
    current spec (its refit is queued); None when there is nothing to say. It goes into the decision.
    """

    @property
    def note(self) -> str | None: ...

    def at(self, now: datetime, observed: float | None) -> Forecast | None: ...


class IncidentSink(Protocol):
    """The incident rules of one policy's cycle: evaluated after it decided and acted."""

    def observe(self, memory: PolicyMemory, *, policy: Policy, state: ObservedState, decision: Decision,
                step: timedelta, forecast: Forecast | None, events: Sequence[Event],
                metrics_error: str | None) -> tuple[list[str], list[str]]:
        """Evaluate and apply; (alertnames fired, alertnames resolved)."""
        ...


class Recorder(Protocol):
    """Takes each cycle's outcome."""

    def record(self, outcome: CycleOutcome) -> None: ...


class Clock(Protocol):
    """The cycle's time."""

    def now(self) -> datetime: ...


__all__ = ["Clock", "DemandSource", "DemandUnavailable", "Forecasts", "IncidentSink", "LagSource", "Recorder",
           "ScaleTarget"]
