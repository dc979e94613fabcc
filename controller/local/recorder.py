"""The run recorder: the timeline of a local run, its summary numbers, and its JSON file.

Written by the control loop (``controller.local.loop``, one ``CycleRecord`` per
cycle) and the orchestration (``controller.local.run``: run metadata, the
replayed trace, the planning forecast, replica and incident events). Read by
the HTML report (``dashboards.report``) and the CLI summary table. Times on
the timeline are *simulated* (the compressed clock); ``elapsed`` is real
seconds since the run started.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass
class CycleRecord:
    """One cycle of observe -> forecast -> decide -> act."""

    t: pd.Timestamp  # simulated time (UTC)
    elapsed: float  # real seconds since the run started
    trace_rate: float  # requests/s the trace asks for now
    observed: float | None  # scraped demand (requests/s, rejected included); None = unknown
    offered: int  # arrivals since the previous cycle
    served: int
    rejected: int
    unserved: int  # rejected + failed + unrouted + dropped
    current: int  # replicas asked for before this cycle's action
    ready: int
    desired: int
    q50: float | None
    q95: float | None
    q99: float | None
    reason: str
    message: str
    scaled: bool  # this cycle changed the replica count
    fired: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    # What `pitboss status --run` shows (absent from records written before they existed):
    flags: list[str] = field(default_factory=list)  # the decision's flags (ForecastUnavailable, CapacityLimited...)
    peak: float | None = None  # the decision's headroom-quantile forecast peak over its sizing window
    peak_at: str | None = None  # when that peak is forecast (ISO 8601, simulated time)
    metrics_error: str | None = None  # why demand was unknown this cycle


@dataclass(frozen=True)
class EventSpan:
    """A known event shown on the timeline."""

    name: str
    kind: str
    start: pd.Timestamp
    end: pd.Timestamp
    expected_lift: float | None = None


@dataclass
class Summary:
    """The headline numbers of a run."""

    offered: int
    served: int
    unserved: int
    unserved_share: float
    replica_seconds: float  # real seconds x ready replicas
    replica_minutes_sim: float  # the same on the simulated clock
    peak_ready: int
    scale_ups: int
    scale_downs: int
    # Per event, in simulated minutes: how long before its start replicas were first scaled up for it,
    # and the first extra replica was ready (negative: after the start; None: never); and by how much
    # ready capacity stayed ahead of the event's demand at its worst replica step (negative: demand
    # needed k replicas that long before k were ready; None: it never got them).
    scale_up_lead_min: dict[str, float | None]
    ready_lead_min: dict[str, float | None]
    ahead_of_demand_min: dict[str, float | None]
    incidents: int


@dataclass
class RunRecord:
    """Everything a local run produced."""

    meta: dict[str, Any] = field(default_factory=dict)
    cycles: list[CycleRecord] = field(default_factory=list)
    events: list[EventSpan] = field(default_factory=list)
    trace: list[tuple[pd.Timestamp, float]] = field(default_factory=list)  # the replayed demand (req/s)
    plan: list[tuple[pd.Timestamp, float, float, float]] = field(default_factory=list)  # t, q50, q95, q99
    replica_events: list[dict[str, Any]] = field(default_factory=list)
    incidents: list[dict[str, Any]] = field(default_factory=list)

    def add(self, cycle: CycleRecord) -> None:
        self.cycles.append(cycle)

    @property
    def capacity(self) -> float:
        return float(self.meta["capacity_per_replica"])

    def decisions(self) -> list[CycleRecord]:
        """Cycles that changed the replica count or the reason (the decision table)."""
        out: list[CycleRecord] = []
        for c in self.cycles:
            if c.scaled or not out or c.reason != out[-1].reason:
                out.append(c)
        return out

    def summary(self) -> Summary:
        cycles = self.cycles
        offered = sum(c.offered for c in cycles)
        served = sum(c.served for c in cycles)
        unserved = sum(c.unserved for c in cycles)
        speed = float(self.meta.get("speed", 1.0))
        replica_seconds = 0.0
        for a, b in itertools.pairwise(cycles):
            replica_seconds += a.ready * (b.elapsed - a.elapsed)
        scale_up_lead: dict[str, float | None] = {}
        ready_lead: dict[str, float | None] = {}
        ahead: dict[str, float | None] = {}
        for ev in self.events:
            scale_up_lead[ev.name], ready_lead[ev.name], ahead[ev.name] = self._leads(ev)
        return Summary(
            offered=offered,
            served=served,
            unserved=unserved,
            unserved_share=unserved / offered if offered else 0.0,
            replica_seconds=replica_seconds,
            replica_minutes_sim=replica_seconds * speed / 60.0,
            peak_ready=max((c.ready for c in cycles), default=0),
            scale_ups=sum(1 for c in cycles if c.scaled and c.desired > c.current),
            scale_downs=sum(1 for c in cycles if c.scaled and c.desired < c.current),
            scale_up_lead_min=scale_up_lead,
            ready_lead_min=ready_lead,
            ahead_of_demand_min=ahead,
            incidents=len(self.incidents),
        )

    def _leads(self, ev: EventSpan) -> tuple[float | None, float | None, float | None]:
        """(scale-up lead, first-extra-replica-ready lead, capacity-ahead-of-demand) in simulated minutes."""
        window = [c for c in self.cycles if ev.start - pd.Timedelta(hours=2) <= c.t <= ev.end]
        before = [c for c in window if c.t < ev.start]
        baseline = before[0].ready if before else (window[0].ready if window else 0)

        def minutes(at: pd.Timestamp | None) -> float | None:
            return None if at is None else (ev.start - at).total_seconds() / 60.0

        scale_at = next((c.t for c in window if c.scaled and c.desired > max(c.current, baseline)), None)
        ready_at = next((c.t for c in window if c.ready > baseline), None)
        # For each replica count k above the baseline that the event's demand needs: when demand first
        # needed k (trace > (k-1) x capacity) minus when k replicas were first ready; the worst k.
        cap = self.capacity
        ahead: float | None = None
        demand = [(t, r) for t, r in self.trace if ev.start - pd.Timedelta(hours=1) <= t < ev.end]
        peak_need = max((math.ceil(r / cap - 1e-9) for _, r in demand), default=0)
        peak_need = min(peak_need, int(self.meta.get("max_replicas", peak_need)))
        for k in range(baseline + 1, peak_need + 1):
            need_at = next(t for t, r in demand if math.ceil(r / cap - 1e-9) >= k)
            ready_k = next((c.t for c in window if c.ready >= k), None)
            margin = None if ready_k is None else (need_at - ready_k).total_seconds() / 60.0
            if margin is None:
                return minutes(scale_at), minutes(ready_at), None
            ahead = margin if ahead is None else min(ahead, margin)
        return minutes(scale_at), minutes(ready_at), ahead

    # ------------------------------------------------------------------ files
    def to_json(self) -> dict[str, Any]:
        def ts(x: pd.Timestamp) -> str:
            return x.isoformat()

        return {
            "meta": self.meta,
            "cycles": [{**asdict(c), "t": ts(c.t)} for c in self.cycles],
            "events": [{**asdict(e), "start": ts(e.start), "end": ts(e.end)} for e in self.events],
            "trace": [[ts(t), v] for t, v in self.trace],
            "plan": [[ts(t), a, b, c] for t, a, b, c in self.plan],
            "replica_events": self.replica_events,
            "incidents": self.incidents,
            "summary": asdict(self.summary()),
        }

    def save(self, path: Path) -> Path:
        """Write the run as JSON (atomically: a temp file renamed into place)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=1, default=str))
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: Path) -> RunRecord:
        data = json.loads(Path(path).read_text())
        t = pd.Timestamp
        return cls(
            meta=data["meta"],
            cycles=[CycleRecord(**{**c, "t": t(c["t"])}) for c in data["cycles"]],
            events=[EventSpan(**{**e, "start": t(e["start"]), "end": t(e["end"])}) for e in data["events"]],
            trace=[(t(a), float(v)) for a, v in data["trace"]],
            plan=[(t(a), float(x), float(y), float(z)) for a, x, y, z in data["plan"]],
            replica_events=data["replica_events"],
            incidents=data["incidents"],
        )
