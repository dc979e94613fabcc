"""One fake of each port of the cycle, for tests of the cycle and of the shells (nothing real runs in them).

The scale target's fake is ``controller.targets.fake.InMemoryScaleTarget`` (re-exported here): it
keeps resourceVersions and answers a stale write with ``ScaleConflict`` as the API server does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.core.decision import Decision, ObservedState, ReplicaLag
from controller.core.policy import Policy
from controller.cycle.memory import PolicyMemory
from controller.cycle.run import At, CycleOutcome
from controller.errors import RetryableError
from controller.targets.fake import InMemoryScaleTarget
from forecasting.base import Event, Forecast

FakeClock = At  # stands where it is put


@dataclass
class FakeDemand:
    """A fixed demand; ``error`` makes it fail (retryable)."""

    value: float | None = 10.0
    error: str | None = None
    calls: list[datetime] = field(default_factory=list)

    def current(self, now: datetime) -> float | None:
        self.calls.append(now)
        if self.error is not None:
            raise RetryableError(self.error)
        return self.value


@dataclass
class FakeForecasts:
    """The same forecast every time (None: no forecast)."""

    forecast: Forecast | None = None
    seen: list[tuple[datetime, float | None]] = field(default_factory=list)
    note: str | None = None

    def at(self, now: datetime, observed: float | None) -> Forecast | None:
        self.seen.append((now, observed))
        return self.forecast


@dataclass
class FakeLagSource:
    """Fixed replica lags."""

    lagging: tuple[ReplicaLag, ...] = ()

    def lags(self, now: datetime) -> tuple[ReplicaLag, ...]:
        return self.lagging


@dataclass
class FakeIncidentSink:
    """Records what it was asked to evaluate; fires ``fire`` every time."""

    fire: list[str] = field(default_factory=list)
    seen: list[tuple[ObservedState, Decision, str | None, int]] = field(default_factory=list)

    def observe(self, memory: PolicyMemory, *, policy: Policy, state: ObservedState, decision: Decision,
                step: timedelta, forecast: Forecast | None, events: Sequence[Event],
                metrics_error: str | None) -> tuple[list[str], list[str]]:
        self.seen.append((state, decision, metrics_error, memory.scale.count))
        return list(self.fire), []


@dataclass
class FakeRecorder:
    """Keeps every outcome."""

    outcomes: list[CycleOutcome] = field(default_factory=list)

    def record(self, outcome: CycleOutcome) -> None:
        self.outcomes.append(outcome)


__all__ = ["FakeClock", "FakeDemand", "FakeForecasts", "FakeIncidentSink", "FakeLagSource", "FakeRecorder",
           "InMemoryScaleTarget"]
