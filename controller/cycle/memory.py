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
* ``DatabaseMemory``: the same for a policy's database read replicas (their
  recommendations, recent scale-ups that may still be catching up, the count
  last seen); ``controller.cycle.database`` reads and changes it.

``PolicyMemory.dump`` / ``PolicyMemory.load`` write and read all of it as
status fields (``recommendations``, ``lastScaleTime``, ``lastScaleUpTime``, ``scaleFailures``,
``forecastChecks``, ``database*``), so a restarted operator or a new shard
owner continues where the last one left off. A healthy policy dumps the same
fields every cycle (no failures, no forecast check that could still count),
so its status is not rewritten.

Used by ``controller.cycle.run`` (every shell's phases), by the operator's
reconcile (``load``/``dump`` against status) and incident reporter, and by
``controller.operator.status``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import pandas as pd

if TYPE_CHECKING:
    from controller.core.policy import Policy

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

    @classmethod
    def load(cls, item: Any) -> ScaleFailures:
        """From ``status.scaleFailures`` (``{"count", "lastError"}``; anything else: none)."""
        if not isinstance(item, Mapping) or not isinstance(item.get("count"), int) or item["count"] <= 0:
            return cls()
        error = item.get("lastError")
        return cls(int(item["count"]), None if error is None else str(error))

    def dump(self) -> dict[str, Any] | None:
        """The status object (None while the calls succeed: nothing to write)."""
        if self.count <= 0:
            return None
        return {"count": self.count, **({} if self.last_error is None else {"lastError": self.last_error[:1024]})}


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

    @classmethod
    def load(cls, items: Iterable[Any] | None, steps: int, step: timedelta) -> ForecastChecks:
        """From ``status.forecastChecks`` (``{"time": the step's start, "actual", "upper"}``, oldest first)."""
        step_ns = int(step.total_seconds() * 1e9)
        entries: list[tuple[int, float | None, float | None]] = []
        for item in items or []:
            at = parse_time(item.get("time")) if isinstance(item, Mapping) else None
            if at is None or step_ns <= 0:
                continue
            actual, upper = item.get("actual"), item.get("upper")
            entries.append((pd.Timestamp(at).value // step_ns,
                            float(actual) if isinstance(actual, int | float) else None,
                            float(upper) if isinstance(upper, int | float) else None))
        return cls(steps, deque(sorted(entries, key=lambda e: e[0])))

    def dump(self, step: timedelta) -> list[dict[str, Any]] | None:
        """The status list: only what ``ForecastMiss`` can still count (None: nothing).

        The rule fires on ``steps`` misses in a row, so only the trailing misses
        matter, plus the latest step's reading (a later reading of the same step
        replaces it). A policy whose forecast holds dumps nothing, and its status
        is not rewritten every step.
        """
        entries = list(self.entries)
        misses = 0
        for _, actual, upper in reversed(entries[:-1]):
            if actual is None or upper is None or not actual > upper:
                break
            misses += 1
        last = entries[-1] if entries else None
        if last is None or (misses == 0 and not (last[1] is not None and last[2] is not None and last[1] > last[2])):
            return None
        step_ns = int(step.total_seconds() * 1e9)
        return [{"time": iso(pd.Timestamp(number * step_ns, tz="UTC").to_pydatetime()),
                 **({} if actual is None else {"actual": actual}), **({} if upper is None else {"upper": upper})}
                for number, actual, upper in entries[len(entries) - 1 - misses:]]


@dataclass
class DatabaseMemory:
    """A policy's database read replicas across cycles (``controller.cycle.database`` reads and changes it)."""

    recommendations: RecommendationWindow = field(default_factory=RecommendationWindow)
    scale_ups: list[tuple[datetime, int]] = field(default_factory=list)  # (when, replicas added)
    current: int | None = None  # read replicas after the last cycle

    @classmethod
    def load(cls, status: Mapping[str, Any]) -> DatabaseMemory:
        ups = []
        for item in status.get("databaseScaleUps") or []:
            at = parse_time(item.get("time")) if isinstance(item, Mapping) else None
            if at is not None and isinstance(item.get("replicas"), int):
                ups.append((at, int(item["replicas"])))
        current = status.get("databaseCurrentReplicas")
        return cls(RecommendationWindow.load(status.get("databaseRecommendations")), sorted(ups),
                   current if isinstance(current, int) else None)

    def dump(self, now: datetime, window: timedelta) -> dict[str, Any]:
        return {"databaseRecommendations": self.recommendations.dump(now, window),
                "databaseScaleUps": [{"time": iso(at), "replicas": n} for at, n in self.scale_ups] or None,
                "databaseCurrentReplicas": self.current}


@dataclass
class PolicyMemory:
    """Everything one policy's cycle carries to the next."""

    scope: dict[str, str]
    checks: ForecastChecks = field(default_factory=ForecastChecks)
    scale: ScaleFailures = field(default_factory=ScaleFailures)
    recommendations: RecommendationWindow = field(default_factory=RecommendationWindow)
    last_scale_time: datetime | None = None
    last_scale_up_time: datetime | None = None  # the scale-down guard's dwell starts here (controller.core.decide)
    database: DatabaseMemory = field(default_factory=DatabaseMemory)

    @classmethod
    def load(cls, scope: dict[str, str], status: Mapping[str, Any] | None, *, steps: int,
             step: timedelta) -> PolicyMemory:
        """From a status a ``dump`` wrote (None or empty: a new policy's empty memory)."""
        status = status or {}
        return cls(scope, checks=ForecastChecks.load(status.get("forecastChecks"), steps, step),
                   scale=ScaleFailures.load(status.get("scaleFailures")),
                   recommendations=RecommendationWindow.load(status.get("recommendations")),
                   last_scale_time=parse_time(status.get("lastScaleTime")),
                   last_scale_up_time=parse_time(status.get("lastScaleUpTime")),
                   database=DatabaseMemory.load(status))

    def dump(self, policy: Policy, now: datetime, step: timedelta) -> dict[str, Any]:
        """The status fields of this memory (None: drop the field); ``load`` reads them back."""
        fields: dict[str, Any] = {
            "recommendations": self.recommendations.dump(now, policy.scale_down.stabilization_window),
            "lastScaleTime": None if self.last_scale_time is None else iso(self.last_scale_time),
            "lastScaleUpTime": None if self.last_scale_up_time is None else iso(self.last_scale_up_time),
            "scaleFailures": self.scale.dump(),
            "forecastChecks": self.checks.dump(step),
        }
        if policy.database_replicas is not None:
            fields.update(self.database.dump(now, policy.database_replicas.scale_down.stabilization_window))
        return fields


__all__ = ["MAX_RECOMMENDATIONS", "DatabaseMemory", "ForecastChecks", "PolicyMemory", "RecommendationWindow", "Run",
           "ScaleFailures", "iso", "parse_time"]
