"""The scaling policy: the declarative spec ``decide`` obeys.

The same fields the ScalingPolicy custom resource carries (camelCase on the
wire, snake_case in Python). Validation happens on load and every message
names the field. Built by the CLI, the simulator and the operator; read by
``controller.core.decide``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.alias_generators import to_camel

from controller.core.durations import parse_duration

Duration = Annotated[timedelta, BeforeValidator(lambda v: parse_duration(v))]
Mode = Literal["Active", "ForecastOnly", "Paused"]
HEADROOM_QUANTILES = (0.5, 0.9, 0.95, 0.99)


class _Spec(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


class ScaleDown(_Spec):
    """How fast replicas may be taken away."""

    stabilization_window: Duration = Field(default=timedelta(minutes=5))
    max_step_percent: int = Field(default=50, ge=1, le=100)
    margin: float = Field(
        default=0.25, ge=0, le=1, allow_inf_nan=False,
        description="spare capacity, in replicas, a scale-down must leave: down to n replicas only while the"
        " forecast over the next leadTime + syncPeriod + stabilizationWindow stays at or below (n - margin) x"
        " capacityPerReplica (a hysteresis band of a fraction of one replica, so a forecast revised up by less"
        " does not take the scale-down back)",
    )


class DatabaseScaleDown(_Spec):
    """How fast read replicas may be taken away: one per decision, after their own stabilization window."""

    stabilization_window: Duration = Field(
        default=timedelta(minutes=30),
        description="scale down only to the highest recommendation of this window (a replica takes a lead time"
        " to come back)",
    )


class DatabaseReplicas(_Spec):
    """Read replicas of the service's database, sized from the same forecast.

    ``lead_time`` is also the catch-up time: a replica added less than a lead time ago may still lag
    (it is copying the primary's WAL) and counts as capacity on the way, not as a lagging replica.
    """

    capacity_per_replica: float = Field(gt=0, description="read requests/s one replica serves")
    read_share: float = Field(default=1.0, gt=0, le=1, description="share of demand that reads hit")
    min_replicas: int = Field(default=0, ge=0)
    max_replicas: int = Field(default=10, ge=0)
    lead_time: Duration = Field(default=timedelta(minutes=30))
    max_lag_seconds: float = Field(default=30.0, gt=0)
    scale_down: DatabaseScaleDown = Field(default_factory=DatabaseScaleDown)

    @model_validator(mode="after")
    def _bounds(self) -> DatabaseReplicas:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"databaseReplicas.maxReplicas: must be >= minReplicas ({self.min_replicas}),"
                f" got {self.max_replicas}"
            )
        return self


class Costs(_Spec):
    """What an unserved request and a replica-hour cost (one currency); when set, each step is sized at the cost-minimising (newsvendor) forecast quantile instead of headroomQuantile."""  # noqa: E501

    unserved_request: float = Field(gt=0, allow_inf_nan=False, description="cost of one unserved demand unit")
    replica_hour: float = Field(gt=0, allow_inf_nan=False, description="cost of one replica running for an hour")


class Policy(_Spec):
    """A ScalingPolicy spec, minus its Kubernetes references."""

    capacity_per_replica: float = Field(gt=0, description="demand units/s one replica serves")
    min_replicas: int = Field(default=1, ge=0)
    max_replicas: int = Field(default=100, ge=1)
    lead_time: Duration = Field(default=timedelta(minutes=2))
    sync_period: Duration = Field(default=timedelta(seconds=15))
    headroom_quantile: float = Field(default=0.95)
    scale_down: ScaleDown = Field(default_factory=ScaleDown)
    mode: Mode = "Active"
    database_replicas: DatabaseReplicas | None = None
    costs: Costs | None = None  # set: size at the newsvendor quantile, not headroomQuantile

    @model_validator(mode="after")
    def _bounds(self) -> Policy:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"maxReplicas: must be >= minReplicas ({self.min_replicas}), got {self.max_replicas}"
            )
        if self.headroom_quantile not in HEADROOM_QUANTILES:
            raise ValueError(
                f"headroomQuantile: expected one of {HEADROOM_QUANTILES}, got {self.headroom_quantile}"
            )
        if self.sync_period <= timedelta(0):
            raise ValueError("syncPeriod: must be positive")
        return self
