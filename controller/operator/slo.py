"""A ScalingPolicy's own SLIs: the ``slo`` block of its spec, and the Prometheus reader of it.

Burn-rate incidents (``ErrorBudgetBurn``) fire only for a policy that names
its SLIs: ``spec.slo.availability`` and/or ``spec.slo.latency``, each a
PromQL error ratio (bad / total, 0..1) with the literal placeholder
``{{.window}}`` where the range goes (as Sloth writes it), and the
objective it must meet. No built-in query is ever applied to a service that
did not ask for it; without an ``slo`` block a policy gets no burn-rate
incident at all. ``PolicySLI`` runs the queries for every burn-rate window
(5m ... 3d); ``PolicySLIFactory`` keeps one per policy and spec generation.
Read by ``controller.operator.resources`` (the spec model, hence the CRD),
``controller.operator.incidents`` (objectives) and ``controller.operator.app``
(the factory).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from controller.core.durations import format_duration
from controller.incidents.rules import SLO

log = logging.getLogger(__name__)

WINDOW = "{{.window}}"


class _Model(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True)


class SLIObjective(_Model):
    """One SLI of the policy's service and the objective it must meet."""

    objective: float = Field(gt=0, lt=1, description="share of good events over the SLO period, e.g. 0.999")
    error_ratio_query: str = Field(
        min_length=1,
        description="PromQL returning bad / total (0..1) over the range written literally as {{.window}}, e.g."
        ' sum(rate(http_requests_total{service="slots",code=~"5.."}[{{.window}}]))'
        ' / sum(rate(http_requests_total{service="slots"}[{{.window}}]))',
    )

    @field_validator("error_ratio_query")
    @classmethod
    def _has_window(cls, value: str) -> str:
        if WINDOW not in value:
            raise ValueError(f"must contain the range placeholder {WINDOW}, e.g. [{WINDOW}]")
        return value

    def query(self, window: timedelta) -> str:
        """The PromQL for one window."""
        return self.error_ratio_query.replace(WINDOW, format_duration(window))


class SLOSpec(_Model):
    """The SLIs of this policy's service for the burn-rate incidents; omit the block for none."""

    availability: SLIObjective | None = Field(default=None, description="error ratio: e.g. 5xx / all requests")
    latency: SLIObjective | None = Field(default=None, description="slow ratio: e.g. requests over 250 ms / all")

    @model_validator(mode="after")
    def _one(self) -> SLOSpec:
        if self.availability is None and self.latency is None:
            raise ValueError("slo: set availability and/or latency (or omit slo for no burn-rate incidents)")
        return self

    def slis(self) -> dict[str, SLIObjective]:
        """The SLIs that are set, by SLO name (the ``slo`` label of the incident)."""
        return {name: sli for name, sli in (("availability", self.availability), ("latency", self.latency))
                if sli is not None}

    def objectives(self) -> tuple[SLO, ...]:
        """The rules' SLO objects (name and objective)."""
        return tuple(SLO(name=name, objective=sli.objective) for name, sli in self.slis().items())


class PolicySLI:
    """Error ratios of one policy's SLIs from Prometheus (an instant query per SLI and window)."""

    def __init__(self, client: Any, slo: SLOSpec) -> None:
        self.client = client
        self.slo = slo

    def error_ratios(self, now: datetime, windows: Iterable[timedelta]) -> dict[str, dict[timedelta, float | None]]:
        """{slo name: {window: ratio}}; an empty or NaN answer (no traffic) is None."""
        out: dict[str, dict[timedelta, float | None]] = {}
        spans = list(windows)
        for name, sli in self.slo.slis().items():
            out[name] = {}
            for window in spans:
                rows = self.client.query(sli.query(window), now)
                value = rows[0][1] if rows else math.nan
                out[name][window] = value if math.isfinite(value) else None
        return out


class PolicySLIFactory:
    """An SLIFactory: one ``PolicySLI`` per policy (rebuilt when its slo block changes); None without one."""

    def __init__(self, client: Any) -> None:
        self.client = client  # a PrometheusClient, or None when the operator has no --prometheus-url
        self._sources: dict[tuple[str, str], PolicySLI] = {}
        self._warned: set[tuple[str, str]] = set()

    def __call__(self, policy: Any, spec: Any) -> PolicySLI | None:
        slo: SLOSpec | None = getattr(spec, "slo", None)
        key = (policy.namespace, policy.name)
        if slo is None or self.client is None:
            if slo is not None and key not in self._warned:
                self._warned.add(key)
                log.warning("%s/%s: spec.slo needs the operator's --prometheus-url; no burn-rate incidents",
                            *key)
            self._sources.pop(key, None)
            return None
        source = self._sources.get(key)
        if source is None or source.slo != slo:
            source = self._sources[key] = PolicySLI(self.client, slo)
        return source
