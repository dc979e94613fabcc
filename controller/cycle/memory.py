"""Per-policy memory across cycles: recommendation window, scale failures, forecast checks.

One ``PolicyMemory`` per policy holds what a cycle needs from the cycles
before it, the same in every shell:

* ``RecommendationWindow``: the scale-down stabilization history, kept as
  runs (first time a count was recommended, the count, the last cycle it was
  recommended at). ``view`` gives ``decide`` what lies in the window;
  ``dump``/``load`` write and read the run-length-encoded
  ``status.recommendations`` list the operator keeps (so a new leader
  inherits it). A run loaded from status is taken to hold until the next
  one starts (the operator's cycles are dense); a run kept in memory holds
  until the last cycle that recommended it (exact on any clock, the
  simulator's hourly steps included).
* ``ScaleFailures``: consecutive failed calls to the scale target.
* ``ForecastChecks``: (actual, forecast upper quantile) per forecast step,
  the latest reading of a step winning, the last ``steps`` kept: what
  ``ForecastMiss`` reads. Counted per step, never per cycle, so the rule
  means the same at any sync period and any demo speed.

Used by ``controller.cycle.run`` (local loop, simulator), by the operator's
reconcile and incident reporter, and by ``controller.operator.status``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

MAX_RECOMMENDATIONS = 200  # entries dumped to status at most


def iso(at: datetime) -> str:
    """RFC 3339 in UTC with a Z, second precision (what Kubernetes writes)."""
    return pd.Timestamp(at).tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: Any) -> datetime | None:
    """An RFC 3339 string (or None) as a tz-aware datetime."""
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class Run:
    """One count recommended from ``start`` on; ``last``: the last cycle it was (None: until the next run)."""

    start: datetime
    replicas: int
    last: datetime | None


@dataclass
class RecommendationWindow:
    """The stabilization history of one policy (or its database replicas)."""

    runs: list[Run] = field(default_factory=list)

    @classmethod
    def load(cls, items: Iterable[Any] | None) -> RecommendationWindow:
        """From a status list of ``{"time", "replicas"}`` (entries without both are skipped)."""
        runs = []
        for item in items or []:
            if not isinstance(item, Mapping):
                continue
            at = parse_time(item.get("time"))
            if at is not None and isinstance(item.get("replicas"), int):
                runs.append(Run(at, int(item["replicas"]), None))
        runs.sort(key=lambda r: r.start)  # stable: entries of the same time keep their order
        return cls(runs)

    def view(self, now: datetime, window: timedelta) -> tuple[tuple[datetime, int], ...]:
        """The (time, replicas) the window ending at ``now`` sees; a run begun before it counts at its start."""
        cutoff = now - window
        out: list[tuple[datetime, int]] = []
        for i, run in enumerate(self.runs):
            if run.start > now:
                continue
            if run.start >= cutoff:
                out.append((run.start, run.replicas))
                continue
            if run.last is not None:
                held = run.last >= cutoff
            else:
                nxt = self.runs[i + 1].start if i + 1 < len(self.runs) else None
                held = nxt is None or nxt > cutoff
            if held:
                out.append((cutoff, run.replicas))
        return tuple(out)

    def add(self, replicas: int | None, now: datetime) -> None:
        """This cycle recommended ``replicas`` (None: nothing to remember)."""
        if replicas is None:
            return
        if self.runs and self.runs[-1].replicas == replicas:
            if self.runs[-1].last is not None:
                self.runs[-1].last = now
            return
        self.runs.append(Run(now, replicas, now))

    def forget_before(self, now: datetime, window: timedelta) -> None:
        """Drop runs the window ending at ``now`` (or later) can no longer see."""
        cutoff = now - window
        keep = [r for i, r in enumerate(self.runs)
                if (r.last if r.last is not None else
                    (self.runs[i + 1].start if i + 1 < len(self.runs) else now)) >= cutoff or i == len(self.runs) - 1]
        self.runs = keep

    def dump(self, now: datetime, window: timedelta) -> list[dict[str, Any]]:
        """The status list: from the last run begun at or before the window's start, at most MAX_RECOMMENDATIONS."""
        items = [{"time": iso(r.start), "replicas": r.replicas} for r in self.runs]
        cutoff = now - window
        keep_from = 0
        for i, run in enumerate(self.runs):
            if run.start <= cutoff:
                keep_from = i  # the last entry at or before the cutoff still holds at the cutoff
        return items[keep_from:][-MAX_RECOMMENDATIONS:]


@dataclass
class ScaleFailures:
    """Consecutive failed calls to the scale target (what ``ScalingFailing`` reads)."""

    count: int = 0
    last_error: str | None = None

    def record(self, error: str | None) -> None:
        """This cycle's calls: None when they all succeeded."""
        if error is None:
            self.count, self.last_error = 0, None
        else:
            self.count += 1
            self.last_error = error


@dataclass
class ForecastChecks:
    """(actual, forecast upper quantile) for the last ``steps`` forecast steps, oldest first."""

    steps: int = 3
    entries: deque[tuple[int, float | None, float | None]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        self.entries = deque(self.entries, maxlen=self.steps)

    def check(self, now: datetime, step: timedelta, actual: float | None, upper: float | None) -> None:
        """Remember this cycle's reading for the forecast step holding ``now`` (the latest reading wins)."""
        step_ns = int(step.total_seconds() * 1e9)
        number = pd.Timestamp(now).value // step_ns
        entry = (number, actual, upper)
        if self.entries and self.entries[-1][0] == number:
            self.entries[-1] = entry
        else:
            self.entries.append(entry)

    def pairs(self) -> list[tuple[float | None, float | None]]:
        """What ``CycleInput.forecast_checks`` takes."""
        return [(a, q) for _, a, q in self.entries]


@dataclass
class PolicyMemory:
    """Everything one policy's cycle carries to the next."""

    scope: dict[str, str]
    checks: ForecastChecks = field(default_factory=ForecastChecks)
    scale: ScaleFailures = field(default_factory=ScaleFailures)
    recommendations: RecommendationWindow = field(default_factory=RecommendationWindow)
    last_scale_time: datetime | None = None


__all__ = ["MAX_RECOMMENDATIONS", "ForecastChecks", "PolicyMemory", "RecommendationWindow", "Run", "ScaleFailures",
           "iso", "parse_time"]
