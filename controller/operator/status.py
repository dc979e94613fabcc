"""Build a ScalingPolicy's status: conditions, last decision, next peak, recommendations.

Conditions follow metav1.Condition: lastTransitionTime only moves when the
condition's status flips, every condition carries observedGeneration, and
the last decision's time only moves when the decision itself changes, so a
steady policy's status stays byte-identical and is not rewritten. The
scale-down stabilization history lives in status.recommendations
(run-length encoded: one entry per change), so a new leader inherits it.
status.decisions keeps the last ``MAX_DECISIONS`` decisions that moved
replicas or changed reason, with their numbers and the event that drove them
(read by ``pitboss explain``); a steady policy appends nothing.
``scale_message`` writes the Event text that says why replicas moved;
``material`` projects a status onto what must be written at once (the
reconcile's ``controller.operator.status_writes`` holds back the rest).
The recommendations (and the rest of the policy's memory) are the shared
``controller.cycle.memory.PolicyMemory``, which the reconcile dumps into the
builder (``Effects.dump_memory``). Called by
``controller.operator.reconcile`` and ``controller.operator.effects``; pure (no I/O,
time passed in).
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from controller.core.decision import Decision, ObservedState
from controller.core.durations import format_duration
from controller.core.headroom import choose
from controller.cycle.memory import MAX_RECOMMENDATIONS, iso, parse_time
from controller.operator.resources import CONDITION_TYPES, ScalingPolicySpec
from forecasting.base import Event, Forecast
from forecasting.timeutil import stamps_ns, td_ns, ts_ns

READY, ABLE_TO_SCALE, METRICS_AVAILABLE, FORECAST_READY, CAPACITY_LIMITED, INVALID_SPEC = CONDITION_TYPES
MAX_DECISIONS = 20


def _conditions(old: dict[str, Any] | None) -> dict[str, dict[str, Any]]:
    return {c.get("type", ""): c for c in (old or {}).get("conditions") or [] if isinstance(c, dict)}


def transitioned(old: dict[str, Any] | None, ctype: str, status: str, message: str | None = None) -> bool:
    """True when condition ``ctype`` was not already ``status`` (with ``message``, if given)."""
    cond = _conditions(old).get(ctype)
    if cond is None or cond.get("status") != status:
        return True
    return message is not None and cond.get("message") != message


def decision_changed(old: dict[str, Any] | None, decision: Decision) -> bool:
    """True when the last recorded decision had another reason or recommendation."""
    last = (old or {}).get("lastDecision") or {}
    rec = decision.recommended_replicas if decision.recommended_replicas is not None else decision.desired_replicas
    return last.get("reason") != decision.reason or last.get("desiredReplicas") != rec


def next_peak(forecast: Forecast | None, spec: ScalingPolicySpec, now: datetime) -> dict[str, Any] | None:
    """The headroom-quantile peak over [now, now + horizon], its time and the replicas it needs."""
    if forecast is None or len(forecast.index) == 0:
        return None
    q = choose(spec, forecast, spec.lead_time + spec.sync_period).quantile  # newsvendor when costs are set
    values = np.asarray(forecast.quantile(q), dtype=float)
    # int64 nanoseconds, not DatetimeIndex comparisons: this runs for every policy every cycle (issue 14).
    stamps = stamps_ns(forecast.index)
    start = ts_ns(now)
    mask = (stamps + td_ns(spec.forecast.step) > start) & (stamps <= start + td_ns(spec.forecast.horizon))
    mask &= np.isfinite(values)
    if not mask.any():
        return None
    i = int(np.argmax(np.where(mask, values, -np.inf)))
    demand = float(values[i])
    replicas = min(spec.max_replicas, max(spec.min_replicas, math.ceil(demand / spec.capacity_per_replica - 1e-9)))
    at = datetime.fromtimestamp(int(stamps[i]) // 1_000_000_000, UTC)
    return {
        "time": at.strftime("%Y-%m-%dT%H:%M:%SZ"),  # memory.iso, without a pandas Timestamp
        "demand": round(demand, 3),
        "replicas": replicas,
        "summary": f"{demand:.4g}/s -> {replicas} at {at:%m-%d %H:%M}Z",
    }


class StatusBuilder:
    """Accumulates the new status from the old one."""

    def __init__(self, old: dict[str, Any] | None, generation: int, now: datetime) -> None:
        self.old = dict(old or {})
        self.generation = generation
        self.now = now
        self.fields: dict[str, Any] = {
            k: v for k, v in self.old.items() if k not in ("conditions", "observedGeneration")
        }
        self.conditions = _conditions(old)

    def set(self, **fields: Any) -> None:
        """Set (or, with None, drop) top-level status fields."""
        for key, value in fields.items():
            if value is None:
                self.fields.pop(key, None)
            else:
                self.fields[key] = value

    def ok(self, ctype: str, status: bool | None, reason: str, message: str) -> None:
        """Set one condition; lastTransitionTime moves only when the status flips."""
        text = "Unknown" if status is None else ("True" if status else "False")
        prev = self.conditions.get(ctype)
        since = prev.get("lastTransitionTime") if prev and prev.get("status") == text else iso(self.now)
        self.conditions[ctype] = {
            "type": ctype,
            "status": text,
            "reason": reason,
            "message": message[:1024],
            "lastTransitionTime": since,
            "observedGeneration": self.generation,
        }

    def decision(self, decision: Decision, now: datetime) -> None:
        """Record the last decision; its time moves only when reason, message or replicas change."""
        last = self.old.get("lastDecision") or {}
        entry = {
            "reason": decision.reason,
            "message": decision.message[:1024],
            "desiredReplicas": decision.recommended_replicas
            if decision.recommended_replicas is not None
            else decision.desired_replicas,
        }
        same = all(last.get(k) == v for k, v in entry.items())
        self.fields["lastDecision"] = {"time": last.get("time") if same and last.get("time") else iso(now), **entry}

    def remember(
        self, decision: Decision, state: ObservedState, *, after: int, spec: ScalingPolicySpec, events: list[Event]
    ) -> None:
        """Append to status.decisions when replicas move or the reason changes (the last MAX_DECISIONS kept).

        ``after`` is the replicas after acting; in ForecastOnly mode the entry
        records what Active mode would have asked for.
        """
        to = after
        if spec.mode != "Active" and decision.recommended_replicas is not None:
            to = decision.recommended_replicas
        items = [dict(i) for i in self.old.get("decisions") or [] if isinstance(i, dict)]
        last = items[-1] if items else {}
        if last.get("reason") == decision.reason and last.get("toReplicas") == to:
            return
        entry: dict[str, Any] = {
            "time": iso(state.now),
            "reason": decision.reason,
            "fromReplicas": state.current_replicas,
            "toReplicas": to,
            "headroomQuantile": decision.headroom_quantile or spec.headroom_quantile,
            "message": decision.message[:512],
        }
        if state.observed_demand is not None and math.isfinite(state.observed_demand):
            entry["observedDemand"] = round(float(state.observed_demand), 3)
        if decision.forecast_peak is not None and math.isfinite(decision.forecast_peak):
            entry["forecastPeak"] = round(decision.forecast_peak, 3)
        if decision.forecast_peak_at is not None:
            entry["forecastPeakAt"] = iso(decision.forecast_peak_at)
        if to > state.current_replicas:
            event = driving_event(spec, decision, events, state.now)
            if event is not None:
                entry["event"] = f"{event.kind} {event.name}"
                entry["eventStart"] = iso(event.start.to_pydatetime())
        if decision.database_desired_replicas is not None:
            entry["databaseReplicas"] = decision.database_desired_replicas
        self.fields["decisions"] = [*items, entry][-MAX_DECISIONS:]

    def build(self) -> dict[str, Any]:
        """The complete new status."""
        order = {t: i for i, t in enumerate(CONDITION_TYPES)}
        conditions = sorted(self.conditions.values(), key=lambda c: order.get(c["type"], 99))
        return {**self.fields, "observedGeneration": self.generation, "conditions": conditions}


# What a status says that matters (``material``): the rest (observed demand, the numbers in messages,
# timestamps that move with them, the next peak's time and demand) is volatile and may wait.
_CONDITION_KEYS = ("type", "status", "reason", "observedGeneration")
_DECISION_KEYS = ("reason", "desiredReplicas")
# The conditions whose messages carry the cycle's numbers: Ready says the decision ("forecast p95 peak 1237
# req/s ..."), MetricsAvailable the demand now. The others' figures are news ("2 event(s) known").
_NUMBERS_VOLATILE = (READY, METRICS_AVAILABLE)
_NUMBER = re.compile(r"\d+(?:\.\d+)?")


def words(message: object) -> object:
    """A message with its numbers masked ("demand now 1237/s" -> "demand now #/s"): what it says, not how much."""
    return _NUMBER.sub("#", message) if isinstance(message, str) else message


def material(status: dict[str, Any] | None) -> dict[str, Any]:
    """The status without its volatile parts: two statuses with the same projection differ only in numbers
    that move every cycle (the observed demand and forecast peak in the decision's and conditions'
    messages, the times that move with them, the next peak).

    Kept whole: replicas, mode, observedGeneration, the open incidents, status.decisions (it only grows
    when replicas move or the reason changes) and the memory's fields (recommendations, scale failures,
    forecast checks...); of each condition its type, status, reason, observedGeneration and message, the
    numbers masked in Ready's (the decision) and MetricsAvailable's (the demand now) (``words``: "deciding
    on the previous forecast" is news, a new demand figure is not); of the last decision its reason,
    replicas and masked message; of the next peak only that there is one (its time, demand and replicas
    move with every forecast update). The reconcile writes a status whose projection changed at once and
    holds back one that changed only elsewhere (``controller.operator.status_writes``, ``--status-max-age``).
    """
    out: dict[str, Any] = {}
    for key, value in (status or {}).items():
        if key == "conditions" and isinstance(value, list):
            out[key] = [{**{k: c.get(k) for k in _CONDITION_KEYS}, "message": words(c.get("message"))
                         if c.get("type") in _NUMBERS_VOLATILE else c.get("message")}
                        if isinstance(c, dict) else c for c in value]
        elif key == "lastDecision" and isinstance(value, dict):
            out[key] = {**{k: value.get(k) for k in _DECISION_KEYS}, "message": words(value.get("message"))}
        elif key == "nextPeak":
            out[key] = value is not None  # a forecast figure, moving with every update: only whether there is one
        else:
            out[key] = value
    return out


def driving_event(spec: ScalingPolicySpec, decision: Decision, events: list[Event], now: datetime) -> Event | None:
    """The known event a scale-up is for: the earliest one holding the forecast peak or overlapping the lead window."""
    window_end = pd.Timestamp(now) + spec.lead_time + spec.sync_period
    peak_at = pd.Timestamp(decision.forecast_peak_at) if decision.forecast_peak_at else None
    driving = [
        e for e in events
        if (peak_at is not None and e.start <= peak_at < e.end)
        or (e.start <= window_end and e.end > pd.Timestamp(now))
    ]
    return min(driving, key=lambda e: e.start) if driving else None


def scale_message(
    spec: ScalingPolicySpec, decision: Decision, before: int, after: int, events: list[Event], now: datetime
) -> str:
    """Why replicas moved, e.g. 'pre-scaled slots-api 4 -> 12 for tournament friday-frenzy at 20:00, lead 10m'."""
    target = spec.target_ref.name
    lead = format_duration(spec.lead_time)
    if after > before:
        event = driving_event(spec, decision, events, now)
        if event is not None:
            verb = "pre-scaled" if event.start > pd.Timestamp(now) else "scaled"
            when = f"{event.start:%H:%M}"
            return f"{verb} {target} {before} -> {after} for {event.kind} {event.name} at {when}, lead {lead}"
    return f"scaled {target} {before} -> {after} ({decision.reason}): {decision.message}"


__all__ = ["MAX_DECISIONS", "MAX_RECOMMENDATIONS", "StatusBuilder", "decision_changed", "driving_event", "iso",
           "material", "next_peak", "parse_time", "scale_message", "transitioned", "words"]
