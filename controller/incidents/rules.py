"""Incident rules: small pure functions over plain data, evaluated every cycle.

Each rule takes what the loop already has (the ``ObservedState``, the
``Decision``, the policy, the known events, SLI error ratios...) and returns
zero or more ``Signal``s. No clock (``state.now`` is the time), no I/O. The
reconcile loop and the simulator build a ``CycleInput`` and call ``evaluate``;
the engine (``controller.incidents.engine``) deduplicates and tracks lifecycles.

Burn rates follow the SRE workbook's multiwindow, multi-burn-rate alerts: an
alert fires when both its long and its short window burn the error budget
faster than the factor (page 14.4x over 1h and 5m, page 6x over 6h and 30m,
ticket 1x over 3d and 6h).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from controller.core.decision import Decision, ObservedState
from controller.core.durations import format_duration
from controller.core.policy import Policy
from controller.incidents.model import Severity, Signal
from forecasting.base import Event


@dataclass(frozen=True)
class BurnWindow:
    """One multiwindow burn-rate condition."""

    severity: Severity
    factor: float
    long: timedelta
    short: timedelta


BURN_WINDOWS: tuple[BurnWindow, ...] = (
    BurnWindow(Severity.PAGE, 14.4, timedelta(hours=1), timedelta(minutes=5)),
    BurnWindow(Severity.PAGE, 6.0, timedelta(hours=6), timedelta(minutes=30)),
    BurnWindow(Severity.TICKET, 1.0, timedelta(days=3), timedelta(hours=6)),
)
ALL_WINDOWS: tuple[timedelta, ...] = tuple(sorted({w for b in BURN_WINDOWS for w in (b.long, b.short)}))


class SLO(BaseModel):
    """A service level objective: the share of good events over the SLO period."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    objective: float = Field(gt=0, lt=1, description="e.g. 0.999 for 99.9% good")
    description: str = ""


DEFAULT_SLOS: tuple[SLO, ...] = (
    SLO(name="availability", objective=0.999, description="requests answered without a 5xx (admission 503s count)"),
    SLO(name="latency", objective=0.99, description="requests answered in under 0.25 s"),
)


class RuleSettings(BaseModel):
    """Thresholds of the non-SLO rules. Field names are the config keys."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ready_margin: timedelta = Field(default=timedelta(minutes=2), description="check readiness this long before")
    ready_tolerance: int = Field(default=0, ge=0, description="replicas short of the need that are tolerated")
    forecast_miss_steps: int = Field(default=3, ge=1)
    forecast_miss_quantile: float = Field(default=0.99, gt=0, lt=1)
    scale_failure_threshold: int = Field(default=3, ge=1)
    slos: tuple[SLO, ...] = DEFAULT_SLOS


@dataclass(frozen=True)
class CycleInput:
    """Everything the rules read for one policy in one cycle."""

    policy_name: str
    policy: Policy
    state: ObservedState
    decision: Decision
    namespace: str = "default"
    events: Sequence[Event] = ()
    # (actual demand, forecast quantile) for the most recent steps, oldest first.
    forecast_checks: Sequence[tuple[float | None, float | None]] = ()
    scale_failures: int = 0  # consecutive failed calls to the scale target
    last_scale_error: str | None = None
    error_ratios: Mapping[str, Mapping[timedelta, float | None]] | None = None
    slos: Sequence[SLO] | None = None  # the policy's own objectives (None: RuleSettings.slos)
    metrics_error: str | None = None
    extra_labels: Mapping[str, str] = field(default_factory=dict)

    def scope(self) -> dict[str, str]:
        """The labels every signal of this policy carries (and the engine resolves by)."""
        return {"namespace": self.namespace, "policy": self.policy_name, **self.extra_labels}


def _pct(x: float) -> str:
    return f"{x * 100:.3g}%"


def burn_rate(slo: SLO, ratios: Mapping[timedelta, float | None], scope: Mapping[str, str]) -> list[Signal]:
    """Multiwindow burn-rate signals for one SLO. A window with no data (None) never fires."""
    budget = 1 - slo.objective
    out: list[Signal] = []
    for bw in BURN_WINDOWS:
        long_r, short_r = ratios.get(bw.long), ratios.get(bw.short)
        if long_r is None or short_r is None:
            continue
        threshold = bw.factor * budget
        if long_r > threshold and short_r > threshold:
            long_s, short_s = format_duration(bw.long), format_duration(bw.short)
            out.append(Signal(
                alertname="ErrorBudgetBurn",
                severity=bw.severity,
                labels={**scope, "slo": slo.name, "long_window": long_s},
                summary=f"{slo.name} SLO burning its error budget {long_r / budget:.1f}x over {long_s}",
                description=(
                    f"{slo.name} error ratio is {_pct(long_r)} over {long_s} and {_pct(short_r)} over {short_s},"
                    f" both above {bw.factor:g}x the budget of {_pct(budget)} (objective {_pct(slo.objective)})"
                ),
                runbook="error-budget-burn",
                value=long_r / budget,
            ))
    return out


def _ns(ts: datetime) -> int:
    return ts.value if isinstance(ts, pd.Timestamp) else pd.Timestamp(ts).value


def capacity_not_ready(c: CycleInput, settings: RuleSettings) -> list[Signal]:
    """Ready replicas short of the decision's need from ``ready_margin`` before an event until its end."""
    now = c.state.now
    need = c.decision.desired_replicas - settings.ready_tolerance
    out: list[Signal] = []
    if c.state.ready_replicas >= need:
        return out
    now_ns = pd.Timestamp(now).value  # integer nanoseconds: comparing Timestamps one by one is slow
    horizon_ns = now_ns + int(settings.ready_margin.total_seconds() * 1e9)
    for event in c.events:
        if _ns(event.start) <= horizon_ns and now_ns < _ns(event.end):
            when = "started" if now >= event.start else f"starts at {event.start.isoformat()}"
            out.append(Signal(
                alertname="CapacityNotReady",
                severity=Severity.PAGE,
                labels={**c.scope(), "event": event.name},
                summary=f"{c.state.ready_replicas} of {c.decision.desired_replicas} replicas ready for {event.name}",
                description=(
                    f"event {event.name!r} ({event.kind}) {when}; the decision needs"
                    f" {c.decision.desired_replicas} replicas ({c.decision.reason}: {c.decision.message})"
                    f" but only {c.state.ready_replicas} are ready"
                ),
                runbook="capacity-not-ready",
                value=float(c.decision.desired_replicas - c.state.ready_replicas),
            ))
    return out


def capacity_ceiling(c: CycleInput) -> list[Signal]:
    """The forecast needs more replicas than maxReplicas allows."""
    if not c.decision.capacity_limited:
        return []
    peak = c.decision.forecast_peak
    need = f"{peak / c.policy.capacity_per_replica:.1f} replicas" if peak is not None else "more replicas"
    at = f" at {c.decision.forecast_peak_at.isoformat()}" if c.decision.forecast_peak_at else ""
    return [Signal(
        alertname="CapacityCeiling",
        severity=Severity.TICKET,
        labels=c.scope(),
        summary=f"forecast needs {need}, above maxReplicas {c.policy.max_replicas}",
        description=(
            f"forecast peak {peak if peak is not None else 'unknown'}{at} at"
            f" {c.policy.capacity_per_replica:g}/s per replica exceeds maxReplicas={c.policy.max_replicas};"
            f" decision: {c.decision.message}"
        ),
        runbook="capacity-ceiling",
        value=peak,
    )]


def forecast_miss(c: CycleInput, settings: RuleSettings) -> list[Signal]:
    """Actual demand above the forecast's upper quantile for N steps in a row."""
    n = settings.forecast_miss_steps
    recent = list(c.forecast_checks)[-n:]
    if len(recent) < n:
        return []
    if not all(a is not None and q is not None and a > q for a, q in recent):
        return []
    actual, upper = recent[-1]
    q = settings.forecast_miss_quantile
    return [Signal(
        alertname="ForecastMiss",
        severity=Severity.TICKET,
        labels=c.scope(),
        summary=f"demand above the forecast's q{round(q * 100)} for {n} steps in a row",
        description=f"latest demand {actual:.4g}/s vs q{round(q * 100)} {upper:.4g}/s; the forecast is under-sizing",
        runbook="forecast-miss",
        value=actual,
    )]


def metrics_unavailable(c: CycleInput) -> list[Signal]:
    """Demand could not be observed this cycle (source down, all replicas stale)."""
    if c.state.observed_demand is not None and c.decision.metrics_available:
        return []
    why = c.metrics_error or "no current demand (source unreachable, empty or every replica stale)"
    return [Signal(
        alertname="MetricsUnavailable",
        severity=Severity.PAGE,
        labels=c.scope(),
        summary="demand metrics unavailable: holding replicas",
        description=f"{why}; the controller holds the current {c.state.current_replicas} replicas",
        runbook="metrics-unavailable",
    )]


def database_metrics_unavailable(c: CycleInput) -> list[Signal]:
    """Replication lag of the read replicas is unknown: the database holds (the app side still scales)."""
    if c.policy.database_replicas is None or c.decision.database_metrics_available:
        return []
    return [Signal(
        alertname="MetricsUnavailable",
        severity=Severity.PAGE,
        labels={**c.scope(), "target": "database"},
        summary="replication lag unknown: holding database read replicas",
        description=(
            f"{c.decision.database_message or 'replication lag unknown'}; the controller keeps"
            f" {c.state.database_current_replicas} read replicas and never scales them down until lag is known"
        ),
        runbook="database-lag-unknown",
    )]


def scaling_failing(c: CycleInput, settings: RuleSettings) -> list[Signal]:
    """Calls to the scale target failed ``scale_failure_threshold`` times in a row."""
    if c.scale_failures < settings.scale_failure_threshold:
        return []
    return [Signal(
        alertname="ScalingFailing",
        severity=Severity.PAGE,
        labels=c.scope(),
        summary=f"{c.scale_failures} scaling calls failed in a row",
        description=f"last error: {c.last_scale_error or 'unknown'}; replicas stay at {c.state.current_replicas}",
        runbook="scaling-failing",
        value=float(c.scale_failures),
    )]


def replica_lag(c: CycleInput) -> list[Signal]:
    """A database read replica lags more than databaseReplicas.maxLagSeconds (unknown lag never fires)."""
    db = c.policy.database_replicas
    if db is None:
        return []
    out: list[Signal] = []
    for rep in c.state.database_replicas:
        if rep.lag_seconds is not None and rep.lag_seconds > db.max_lag_seconds:
            out.append(Signal(
                alertname="DatabaseReplicaLag",
                severity=Severity.TICKET,
                labels={**c.scope(), "replica": rep.name},
                summary=f"read replica {rep.name} lags {rep.lag_seconds:.0f}s",
                description=(
                    f"replication lag {rep.lag_seconds:.1f}s exceeds maxLagSeconds={db.max_lag_seconds:g};"
                    " it does not count as capacity"
                ),
                runbook="database-replica-lag",
                value=rep.lag_seconds,
            ))
    return out


def evaluate(c: CycleInput, settings: RuleSettings | None = None) -> list[Signal]:
    """Every rule, for one policy in one cycle."""
    settings = settings or RuleSettings()
    signals: list[Signal] = []
    if c.error_ratios is not None:
        for slo in settings.slos if c.slos is None else c.slos:
            if slo.name in c.error_ratios:
                signals += burn_rate(slo, c.error_ratios[slo.name], c.scope())
    signals += capacity_not_ready(c, settings)
    signals += capacity_ceiling(c)
    signals += forecast_miss(c, settings)
    signals += metrics_unavailable(c)
    signals += database_metrics_unavailable(c)
    signals += scaling_failing(c, settings)
    signals += replica_lag(c)
    return signals
