"""The custom resources' models: ScalingPolicy and TrafficEvent (pitboss.dev/v1alpha1).

One source of truth: the spec models extend ``controller.core.policy.Policy``
(the same fields ``decide`` obeys) with their Kubernetes references, and the
CRD schemas in manifests/crds are generated from these models by
``controller.operator.crds``. Read by the reconcile loop (``parse_policy``,
``parse_event``), written back as ``ScalingPolicyStatus``; the CLI prints the
generated CRDs. Validation errors name the field (camelCase, dotted path).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic.alias_generators import to_camel

from controller.core.policy import DatabaseReplicas, Duration, Policy
from controller.operator.slo import SLOSpec
from forecasting import registry
from forecasting.base import Event

GROUP = "pitboss.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
POLICY_PLURAL = "scalingpolicies"
EVENT_PLURAL = "trafficevents"
CONDITION_TYPES = ("Ready", "AbleToScale", "MetricsAvailable", "ForecastReady", "CapacityLimited", "InvalidSpec")

_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
APPS_SCALE_KINDS = ("Deployment", "ReplicaSet", "StatefulSet")


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class TargetRef(_Model):
    """The workload scaled through its /scale subresource (same namespace as the policy): any kind that has one."""

    # e.g. a Deployment or StatefulSet (apps/v1), a CloudNativePG Cluster (postgresql.cnpg.io/v1, whose
    # /scale is .spec.instances), a custom resource of one's own; resolved through discovery.

    api_version: str = Field(default="apps/v1", pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/v[0-9]+[a-z0-9]*$",
                             description="group/version of the kind, e.g. apps/v1 or postgresql.cnpg.io/v1")
    kind: str = Field(min_length=1, max_length=63, pattern=r"^[A-Z][A-Za-z0-9]*$",
                      description="a kind with a /scale subresource, e.g. Deployment, StatefulSet, Cluster")
    name: str = Field(min_length=1, max_length=253, pattern=_NAME)

    @model_validator(mode="after")
    def _apps(self) -> TargetRef:
        if self.api_version == "apps/v1" and self.kind not in APPS_SCALE_KINDS:
            raise ValueError(f"kind: apps/v1 kinds with /scale are {', '.join(APPS_SCALE_KINDS)}, got {self.kind!r}")
        return self


class ScrapeMetric(_Model):
    """Read demand by scraping each of the target's pods (no Prometheus): the named counter's rates, summed."""

    # The pods are the endpoints of ``service`` (its EndpointSlices) or, without it, the pods the target's
    # /scale selector picks. A pod that cannot be scraped makes the demand unknown (hold), never smaller.

    metric: str = Field(min_length=1, pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
                        description="counter whose rate is the demand, e.g. http_requests_total")
    labels: dict[str, str] = Field(default_factory=dict,
                                   description="only the counter's series with these label values")
    service: str | None = Field(default=None, min_length=1, max_length=63, pattern=_NAME,
                                description="scrape the endpoints of this Service (its EndpointSlices);"
                                " none: the pods of the target's /scale selector")
    port: str | None = Field(default=None, min_length=1, pattern=r"^([0-9]{1,5}|[a-z0-9]([-a-z0-9]*[a-z0-9])?)$",
                             description="port name or number; none: the pods' only port")
    path: str = Field(default="/metrics", pattern=r"^/")
    scheme: Literal["http", "https"] = "http"


class DemandMetric(_Model):
    """Where demand comes from: a PromQL query (units/s) or a direct scrape. Exactly one."""

    promql: str | None = Field(default=None, min_length=1, description="PromQL returning demand in units/s")
    scrape: ScrapeMetric | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> DemandMetric:
        if (self.promql is None) == (self.scrape is None):
            raise ValueError("metric: set exactly one of promql or scrape")
        return self


class ForecastSettings(_Model):
    """Which model forecasts demand, on what grid, from how much history."""

    model: str = Field(default="seasonal-naive", min_length=1,
                       description="forecasting registry name: " + ", ".join(registry.BUILTIN))
    step: Duration = Field(default=timedelta(minutes=1))
    history: Duration = Field(default=timedelta(days=7))
    horizon: Duration = Field(default=timedelta(hours=6), description="how far ahead status.nextPeak looks")

    @field_validator("model")
    @classmethod
    def _known_model(cls, value: str) -> str:
        # Checked at parse time (InvalidSpec naming forecast.model), never found out at forecast time.
        if value not in registry.MODELS:
            raise ValueError(f"model: unknown model {value!r}; expected one of {', '.join(registry.names())}")
        return value

    @model_validator(mode="after")
    def _grid(self) -> ForecastSettings:
        if self.step <= timedelta(0):
            raise ValueError("forecast.step: must be positive")
        if self.history < self.step * 2:
            raise ValueError("forecast.history: must cover at least two steps")
        if self.horizon < self.step:
            raise ValueError("forecast.horizon: must be at least one step")
        return self


class LabelSelectorRequirement(_Model):
    """One matchExpressions entry of a Kubernetes label selector."""

    key: str = Field(min_length=1)
    operator: Literal["In", "NotIn", "Exists", "DoesNotExist"]
    values: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _values(self) -> LabelSelectorRequirement:
        needs = self.operator in ("In", "NotIn")
        if needs and not self.values:
            raise ValueError(f"values: operator {self.operator} needs at least one value")
        if not needs and self.values:
            raise ValueError(f"values: operator {self.operator} takes no values")
        return self


class LabelSelector(_Model):
    """A Kubernetes label selector; empty selects everything."""

    match_labels: dict[str, str] = Field(default_factory=dict)
    match_expressions: list[LabelSelectorRequirement] = Field(default_factory=list)

    def matches(self, labels: dict[str, str]) -> bool:
        """True when ``labels`` satisfy every matchLabels entry and every expression."""
        if any(labels.get(k) != v for k, v in self.match_labels.items()):
            return False
        for req in self.match_expressions:
            present = req.key in labels
            if req.operator == "In" and (not present or labels[req.key] not in req.values):
                return False
            if req.operator == "NotIn" and present and labels[req.key] in req.values:
                return False
            if req.operator == "Exists" and not present:
                return False
            if req.operator == "DoesNotExist" and present:
                return False
        return True


class DatabaseReplicasSpec(DatabaseReplicas):
    """The core's database-replica sizing plus the workload it scales (any /scale kind) and its lag query."""

    target_ref: TargetRef
    lag_query: str | None = Field(
        default=None, min_length=1, description="PromQL returning replication lag in seconds, by replica"
    )
    primary_instances: int = Field(
        default=0, ge=0, description="instances the target's /scale counts that are not read replicas"
        " (1 for a CloudNativePG Cluster, whose .spec.instances includes the primary)")


class ScalingPolicySpec(Policy):
    """ScalingPolicy.spec: the core Policy plus targetRef, metric, forecast and event selector."""

    target_ref: TargetRef
    metric: DemandMetric
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    event_selector: LabelSelector | None = Field(
        default=None, description="TrafficEvents in the policy's namespace whose labels match; none: all"
    )
    database_replicas: DatabaseReplicasSpec | None = None
    slo: SLOSpec | None = Field(default=None, description="this service's SLIs for the burn-rate incidents; none: no"
                                " ErrorBudgetBurn for this policy")

    def to_policy(self) -> Policy:
        """The plain core Policy ``decide`` reads (Kubernetes references dropped)."""
        data = self.model_dump(include=set(Policy.model_fields), by_alias=False)
        if self.database_replicas is not None:
            data["database_replicas"] = DatabaseReplicas.model_validate(
                self.database_replicas.model_dump(include=set(DatabaseReplicas.model_fields))
            )
        return Policy.model_validate(data)


class TrafficEventSpec(_Model):
    """TrafficEvent.spec: a known-in-advance event; its metadata.labels select the policies."""

    kind: str = Field(min_length=1, description="events of one kind lift demand alike (tournament, promotion)")
    start: datetime
    end: datetime
    expected_lift: float | None = Field(default=None, gt=0, description="multiplier of normal demand")
    display_name: str | None = Field(default=None, description="human name; metadata.name when unset")

    @field_validator("start", "end")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("expected a timestamp with a zone, e.g. 2026-11-27T20:00:00Z")
        return value

    @model_validator(mode="after")
    def _order(self) -> TrafficEventSpec:
        if self.end <= self.start:
            raise ValueError(f"end: must be after start ({self.start.isoformat()})")
        return self


class Condition(_Model):
    """A standard Kubernetes condition (metav1.Condition)."""

    type: str
    status: Literal["True", "False", "Unknown"]
    reason: str = Field(pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    message: str = ""
    last_transition_time: datetime
    observed_generation: int | None = None


class LastDecision(_Model):
    """What the loop decided last, and why."""

    time: datetime
    reason: str
    message: str
    desired_replicas: int


class NextPeak(_Model):
    """The highest headroom-quantile demand forecast over the horizon, and when."""

    time: datetime
    demand: float
    replicas: int
    summary: str = Field(default="", description="one line for kubectl get, e.g. '1840/s -> 13 at 11-27 20:00Z'")


class Recommendation(_Model):
    """A past desired-replica recommendation, kept for the scale-down stabilization window."""

    time: datetime
    replicas: int


class ScaleFailuresStatus(_Model):
    """Consecutive failed calls to the scale target (what ScalingFailing counts), kept across restarts."""

    count: int
    last_error: str | None = None


class ForecastCheck(_Model):
    """One forecast step's (actual demand, forecast upper quantile), what ForecastMiss counts."""

    time: datetime = Field(description="the forecast step's start")
    actual: float | None = None
    upper: float | None = None


class DecisionRecord(_Model):
    """One past decision that moved replicas or changed reason (status.decisions, newest last, bounded)."""

    time: datetime
    reason: str
    from_replicas: int
    to_replicas: int = Field(description="replicas after the decision (ForecastOnly: what Active would ask for)")
    observed_demand: float | None = None
    forecast_peak: float | None = Field(default=None, description="headroom-quantile peak over the sizing window")
    forecast_peak_at: datetime | None = None
    headroom_quantile: float | None = None
    event: str | None = Field(default=None, description="the known event that drove it, e.g. 'tournament friday'")
    event_start: datetime | None = None
    database_replicas: int | None = None
    message: str = ""


class OpenIncident(_Model):
    """An open incident of the policy, for a new owner (a restart, a shard move) to carry on without a new Warning."""

    id: str = Field(min_length=1, description="the incident's fingerprint (the Events' id=...)")
    alertname: str = Field(min_length=1)
    severity: Literal["page", "ticket"]
    labels: dict[str, str] = Field(default_factory=dict)
    summary: str = Field(default="", max_length=256, description="as first announced")
    starts_at: datetime


class ScalingPolicyStatus(_Model):
    """ScalingPolicy.status, written by the loop every cycle in every mode except Paused."""

    observed_generation: int | None = None
    mode: str | None = None
    current_replicas: int | None = None
    ready_replicas: int | None = None
    desired_replicas: int | None = Field(
        default=None, description="what the policy asks for (ForecastOnly: what Active mode would recommend)"
    )
    database_current_replicas: int | None = None
    database_desired_replicas: int | None = None
    database_ready_replicas: int | None = None
    next_peak: NextPeak | None = None
    last_decision: LastDecision | None = None
    last_scale_time: datetime | None = None
    last_scale_up_time: datetime | None = Field(
        default=None, description="the last scale-up; within lead + sync + stabilization window after it the"
        " forecast does not cut the scale-down stabilization window short")
    recommendations: list[Recommendation] = Field(default_factory=list)
    database_recommendations: list[Recommendation] = Field(
        default_factory=list, description="database read-replica recommendations, for their stabilization window")
    database_scale_ups: list[Recommendation] = Field(
        default_factory=list, description="recent database scale-ups (replicas added), whose replicas may still"
        " be catching up")
    scale_failures: ScaleFailuresStatus | None = Field(
        default=None, description="consecutive failed scale calls (absent: the last call succeeded)")
    forecast_checks: list[ForecastCheck] = Field(
        default_factory=list, description="the latest forecast steps' checks ForecastMiss can still count (absent:"
        " the forecast holds)")
    conditions: list[Condition] = Field(default_factory=list)
    decisions: list[DecisionRecord] = Field(
        default_factory=list, description="the last decisions that moved replicas or changed reason (pitboss explain)"
    )
    open_incidents: list[OpenIncident] = Field(
        default_factory=list, description="the policy's open incidents, adopted by a new owner without Alertmanager"
        " (absent: none open)")


def field_error(exc: ValidationError, prefix: str = "spec") -> tuple[str, str]:
    """(dotted camelCase field, message) of the first error, e.g. ('spec.maxReplicas', '...')."""
    first = exc.errors()[0]
    loc = [str(part) for part in first.get("loc", ())]
    msg = str(first.get("msg", "invalid")).removeprefix("Value error, ")
    # Model-level validators name their own field at the start of the message ("maxReplicas: ...").
    head = msg.split(":", 1)[0]
    if head == "duration":  # parse_duration's generic field name: the loc already names the field
        msg, head = msg.split(":", 1)[1].strip(), ""
    if not loc and head and " " not in head:
        loc, msg = [head], msg.split(":", 1)[1].strip()
    elif loc and msg.startswith(f"{loc[-1]}:"):
        msg = msg.split(":", 1)[1].strip()
    elif head and " " not in head and ":" in msg:
        loc, msg = [*loc, *head.split(".")[-1:]], msg.split(":", 1)[1].strip()
    return ".".join([prefix, *loc]) if loc else prefix, msg


def parse_policy_spec(spec: Any) -> ScalingPolicySpec:
    """Validate a ScalingPolicy.spec dict; ValueError 'spec.<field>: <message>' on bad input."""
    if not isinstance(spec, dict):
        raise ValueError("spec: expected an object")
    try:
        return ScalingPolicySpec.model_validate(spec)
    except ValidationError as exc:
        field, msg = field_error(exc)
        raise ValueError(f"{field}: {msg}") from None


def parse_event(obj: dict[str, Any]) -> Event:
    """A TrafficEvent object as a forecasting Event; ValueError naming the field on bad input."""
    meta = obj.get("metadata") or {}
    try:
        spec = TrafficEventSpec.model_validate(obj.get("spec") or {})
    except ValidationError as exc:
        field, msg = field_error(exc)
        raise ValueError(f"TrafficEvent {meta.get('name', '?')}: {field}: {msg}") from None
    return Event(
        name=spec.display_name or str(meta.get("name", "")),
        kind=spec.kind,
        start=pd.Timestamp(spec.start).tz_convert("UTC"),
        end=pd.Timestamp(spec.end).tz_convert("UTC"),
        expected_lift=spec.expected_lift,
        labels=dict(meta.get("labels") or {}),
    )
