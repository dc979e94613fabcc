"""Per-policy capacity accounting for the dashboards: the facts behind the managers' numbers.

Once per policy per cycle, the reconcile loop (``controller.operator.reconcile``)
and the local loop (``controller.local.loop``) hand a ``CycleFacts`` to
``OperatorMetrics.observe_policy``, which keeps one ``PolicyAccounting`` per
policy and turns its ``Step`` into ``pitboss_operator_*`` samples. Pure: no
clock, no I/O; time comes in with the facts.

What it works out:

* the **reactive counterfactual**: what an HPA-like autoscaler on the same
  demand metric would ask for now: ceil(observed demand / capacityPerReplica),
  clamped to [min, max], scale-down stabilized over the HPA's default 5
  minutes (the highest recommendation in the window), no forecast, no lead
  time. capacityPerReplica already is the per-replica load at the wanted
  utilization, so no extra target factor applies;
* **replica-seconds** of Pitboss (the target's replicas) and of the reactive
  counterfactual since the previous cycle (the previous cycle's counts held
  over the interval, capped at ``MAX_GAP`` so a stalled loop is not billed);
* the **unserved-demand estimate**: demand above ready capacity now, and its
  integral (requests that ready replicas could not have served);
* the **lead time achieved** per event: at the event's start, how long ready
  replicas had already been at least what the decision wanted then (negative:
  that many seconds after the start, once they were; the event's whole length
  when it never happened).

``time_scale`` is simulated seconds per real second: 1 in the operator, the
run's speed in the local loop, whose durations are all on its simulated clock
(``wall_now`` places events on the wall clock for Grafana's annotations).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from controller.core.decision import ReplicaLag
from controller.core.limits import clamp, replicas_for
from forecasting.base import Event

REACTIVE_WINDOW = timedelta(minutes=5)  # the HPA's default scale-down stabilization
MAX_GAP = timedelta(minutes=5)  # longest interval billed between two cycles
LEAD_HISTORY = timedelta(hours=2)  # how far back "ready since" is looked for
EVENT_PAST = timedelta(days=1)  # events ended longer ago are no longer exported
EVENT_AHEAD = timedelta(days=7)  # events starting later are not exported yet


@dataclass(frozen=True)
class CycleFacts:
    """What one cycle knew about one policy (plain data, in the policy's units)."""

    namespace: str
    policy: str
    now: datetime  # the loop's clock (simulated in the local loop)
    wall_now: float  # Unix seconds on the wall clock at ``now``
    capacity_per_replica: float
    min_replicas: int
    max_replicas: int
    headroom_quantile: float
    current: int
    ready: int
    desired: int
    observed: float | None  # demand now; None when unknown
    forecast_median: float | None = None
    forecast_headroom: float | None = None
    forecast_peak: float | None = None
    events: Sequence[Event] = ()
    database_desired: int | None = None
    database_current: int | None = None
    database_lags: tuple[ReplicaLag, ...] = ()


@dataclass
class Step:
    """What changed in one cycle."""

    reactive_desired: int | None
    pitboss_replica_seconds: float
    reactive_replica_seconds: float
    unserved_demand: float | None
    unserved_requests: float
    leads: dict[str, float] = field(default_factory=dict)  # event name -> seconds, newly settled ones only
    events: dict[str, tuple[str, float, float]] = field(default_factory=dict)  # name -> (kind, wall start, end)


@dataclass
class _Lead:
    need: int  # replicas the decision wanted at the event's start
    settled: bool = False


class PolicyAccounting:
    """One policy's memory across cycles."""

    def __init__(self, time_scale: float = 1.0) -> None:
        if time_scale <= 0:
            raise ValueError(f"time_scale: must be positive, got {time_scale}")
        self.time_scale = time_scale
        self._recs: deque[tuple[datetime, int]] = deque()
        self._ready: deque[tuple[datetime, int]] = deque()
        self._last: tuple[datetime, int, int | None, float | None] | None = None  # now, current, reactive, unserved
        self._leads: dict[str, _Lead] = {}
        self.leads: dict[str, float] = {}  # every settled lead, by event name

    def reactive(self, facts: CycleFacts) -> int | None:
        """The HPA-like recommendation now (None without an observed demand: an HPA would hold)."""
        while self._recs and self._recs[0][0] < facts.now - REACTIVE_WINDOW:
            self._recs.popleft()
        if facts.observed is None:
            return max((r for _, r in self._recs), default=None)
        raw, _ = clamp(replicas_for(max(facts.observed, 0.0), facts.capacity_per_replica),
                       facts.min_replicas, facts.max_replicas)
        self._recs.append((facts.now, raw))
        return max(r for _, r in self._recs)

    def step(self, facts: CycleFacts) -> Step:
        """Account for the interval since the previous cycle and for this cycle's state."""
        reactive = self.reactive(facts)
        unserved = None
        if facts.observed is not None:
            unserved = max(0.0, facts.observed - facts.ready * facts.capacity_per_replica)
        pitboss_s = reactive_s = unserved_n = 0.0
        if self._last is not None:
            then, current, last_reactive, last_unserved = self._last
            seconds = min(max((facts.now - then).total_seconds(), 0.0), MAX_GAP.total_seconds())
            pitboss_s = current * seconds
            reactive_s = (last_reactive if last_reactive is not None else current) * seconds
            unserved_n = (last_unserved or 0.0) * seconds
        self._last = (facts.now, facts.current, reactive, unserved)
        step = Step(reactive, pitboss_s, reactive_s, unserved, unserved_n)
        self._track_leads(facts, step)
        return step

    def _track_leads(self, facts: CycleFacts, step: Step) -> None:
        now = facts.now
        self._ready.append((now, facts.ready))
        while self._ready and self._ready[0][0] < now - LEAD_HISTORY:
            self._ready.popleft()
        for event in facts.events:
            if event.end < now - EVENT_PAST or event.start > now + EVENT_AHEAD:
                continue
            to_wall = facts.wall_now - (now - event.start).total_seconds() / self.time_scale
            end_wall = facts.wall_now - (now - event.end).total_seconds() / self.time_scale
            step.events[event.name] = (event.kind, to_wall, end_wall)
            if now < event.start or event.name in self.leads:
                continue
            lead = self._leads.setdefault(event.name, _Lead(need=facts.desired))
            if lead.settled:
                continue
            seconds = self._lead_seconds(event, lead.need, now)
            if seconds is not None:
                lead.settled = True
                self.leads[event.name] = step.leads[event.name] = seconds
        for name in [n for n in self._leads if n not in step.events]:
            del self._leads[name]  # past the export window
            self.leads.pop(name, None)

    def _lead_seconds(self, event: Event, need: int, now: datetime) -> float | None:
        """Seconds between ready >= need (held since) and the event's start; None while still short."""
        if self._ready[-1][1] >= need:
            since = now
            for t, ready in reversed(self._ready):
                if ready < need:
                    break
                since = t
            return (event.start - since).total_seconds()
        if now >= event.end:
            return -(event.end - event.start).total_seconds()  # never ready during the event
        return None
