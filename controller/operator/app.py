"""Assemble a running operator from a Kubernetes API client: the one wiring place.

``build_operator`` connects the Reconciler to the real adapters (policy
store, /scale targets, Event recorder, Lease), the demand sources
(``controller.sources``: Prometheus for ``metric.promql``, a direct scrape for
``metric.scrape``) and the forecasting registry. ``watch_stream`` feeds the
loop's wake-ups from ScalingPolicy and TrafficEvent watches. Called by
``pitboss operator run``; tests build the same pieces against the emulator.
"""

from __future__ import annotations

import logging
import math
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kubernetes import client, watch

from controller.core.decision import ReplicaLag
from controller.errors import PermanentError
from controller.incidents.events import EventRecorder as IncidentEventRecorder
from controller.operator.clock import Clock, SystemClock
from controller.operator.kube import (
    KubernetesEventRecorder,
    KubernetesLeaseApi,
    KubernetesPolicyStore,
    PolicyObject,
    default_identity,
)
from controller.operator.leader import LeaderElector
from controller.operator.loop import OperatorLoop
from controller.operator.metrics import OperatorMetrics
from controller.operator.reconcile import DemandFactory, LagFactory, LagSource, Reconciler
from controller.operator.resources import EVENT_PLURAL, GROUP, POLICY_PLURAL, VERSION, ScalingPolicySpec
from controller.sources.base import DemandSource
from controller.targets.kubernetes import KubernetesScaleTarget

log = logging.getLogger(__name__)


class _Unavailable:
    """A DemandSource that always fails: the policy holds with MetricsAvailable=False and says why."""

    def __init__(self, why: str) -> None:
        self.why = why

    def history(self, start: Any, end: Any, step: Any) -> Any:
        raise PermanentError(self.why)

    def current(self, now: Any) -> float | None:
        raise PermanentError(self.why)


class PrometheusLagSource:
    """Replication lag per read replica from ``databaseReplicas.lagQuery`` (one instant query per cycle)."""

    def __init__(self, client: Any, query: str) -> None:
        self.client = client
        self.query = query

    def lags(self, now: datetime) -> tuple[ReplicaLag, ...]:
        """(replica, lag seconds) from the query's vector; NaN or +Inf lag counts as unknown."""
        out = []
        for i, (labels, value) in enumerate(self.client.query(self.query, now)):
            name = labels.get("pod") or labels.get("instance") or labels.get("replica") or f"replica-{i}"
            out.append(ReplicaLag(name, value if math.isfinite(value) else None))
        return tuple(sorted(out, key=lambda r: r.name))


class SourceFactory:
    """One DemandSource per policy and metric, built from controller.sources and reused across cycles."""

    def __init__(self, prometheus_url: str | None) -> None:
        self.prometheus_url = prometheus_url
        self._sources: dict[tuple[str, str, str], DemandSource] = {}
        self._client: Any = None

    def __call__(self, policy: PolicyObject, spec: ScalingPolicySpec) -> DemandSource:
        metric = spec.metric
        ident = metric.promql or (metric.scrape.url if metric.scrape else "")
        key = (policy.namespace, policy.name, ident)
        if key not in self._sources:
            self._sources[key] = self._build(spec)
        return self._sources[key]

    def _build(self, spec: ScalingPolicySpec) -> DemandSource:
        if spec.metric.promql is not None:
            if not self.prometheus_url:
                return _Unavailable("metric.promql needs the operator's --prometheus-url")
            from controller.sources.prometheus import PrometheusSource

            return PrometheusSource(self._prometheus(), spec.metric.promql)
        assert spec.metric.scrape is not None
        from controller.sources.scrape import ScrapeSource

        return ScrapeSource([spec.metric.scrape.url])

    def _prometheus(self) -> Any:
        from controller.sources.prometheus import PrometheusClient, PrometheusConfig

        if self._client is None:
            self._client = PrometheusClient(PrometheusConfig(url=self.prometheus_url or ""))
        return self._client

    def lag(self, policy: PolicyObject, spec: ScalingPolicySpec) -> LagSource | None:
        """A LagFactory: the lagQuery through Prometheus (None without a query or a Prometheus)."""
        db = spec.database_replicas
        if db is None or db.lag_query is None or not self.prometheus_url:
            return None
        return PrometheusLagSource(self._prometheus(), db.lag_query)


@dataclass
class Operator:
    """The assembled parts (kept for tests and the CLI)."""

    loop: OperatorLoop
    reconciler: Reconciler
    elector: LeaderElector | None
    metrics: OperatorMetrics
    api_client: client.ApiClient


def build_operator(
    api_client: client.ApiClient,
    *,
    namespace: str | None,
    demand: DemandFactory,
    clock: Clock | None = None,
    sync_period: timedelta = timedelta(seconds=15),
    leader_election: bool = True,
    lease_namespace: str = "pitboss-system",
    lease_name: str = "pitboss-operator",
    lease_duration: timedelta = timedelta(seconds=15),
    identity: str | None = None,
    metrics: OperatorMetrics | None = None,
    forecaster: Any = None,
    lag: LagFactory | None = None,
) -> Operator:
    """Wire the Reconciler, leader election and loop to the Kubernetes API behind ``api_client``."""
    clock = clock or SystemClock()
    identity = identity or default_identity()
    metrics = metrics or OperatorMetrics()
    reconciler = Reconciler(
        store=KubernetesPolicyStore(api_client),
        targets=KubernetesScaleTarget(api_client),
        recorder=KubernetesEventRecorder(api_client, instance=identity),
        demand=demand,
        clock=clock,
        namespace=namespace,
        metrics=metrics,
        forecaster=forecaster,
        lag=lag,
    )
    elector = (
        LeaderElector(KubernetesLeaseApi(api_client), clock, namespace=lease_namespace, name=lease_name,
                      identity=identity, lease_duration=lease_duration)
        if leader_election
        else None
    )
    loop = OperatorLoop(reconciler, elector=elector, sync_period=sync_period, identity=identity)
    return Operator(loop, reconciler, elector, metrics, api_client)


def incident_event_recorder(api_client: client.ApiClient, identity: str | None = None) -> IncidentEventRecorder:
    """The incidents engine's EventRecorder (controller.incidents.events), backed by this operator's client.

    Wire it with ``KubernetesEventSink(incident_event_recorder(api_client))``: incidents then show up as
    Warning/Normal Events on their ScalingPolicy (mypy checks that the protocol matches).
    """
    return KubernetesEventRecorder(api_client, instance=identity)


def watch_stream(api_client: client.ApiClient, plural: str, namespace: str | None, loop: OperatorLoop,
                 *, timeout_seconds: int = 60) -> Any:
    """A function for ``OperatorLoop.start_watch``: watch ``plural`` and wake the loop on every change."""
    custom = client.CustomObjectsApi(api_client)

    def stream(stop: threading.Event) -> None:
        resource_version = None
        while not stop.is_set():
            w = watch.Watch()
            kwargs: dict[str, Any] = {"timeout_seconds": timeout_seconds}
            if resource_version:
                kwargs["resource_version"] = resource_version
            if namespace:
                events = w.stream(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural, **kwargs)
            else:
                events = w.stream(custom.list_cluster_custom_object, GROUP, VERSION, plural, **kwargs)
            for event in events:
                if stop.is_set():
                    w.stop()
                    return
                obj = event.get("raw_object") or event.get("object") or {}
                if event.get("type") == "ERROR":
                    resource_version = None  # 410 Gone: start over from a fresh list
                    break
                resource_version = (obj.get("metadata") or {}).get("resourceVersion", resource_version)
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED") and _spec_event(plural, event):
                    loop.wake()

    return stream


def _spec_event(plural: str, event: dict[str, Any]) -> bool:
    """Wake for spec changes, not for our own status writes (generation == observedGeneration)."""
    if plural != POLICY_PLURAL or event.get("type") != "MODIFIED":
        return True
    obj = event.get("raw_object") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return generation != observed


def start_watches(op: Operator, namespace: str | None) -> None:
    """Watch ScalingPolicies and TrafficEvents so changes are reconciled at once."""
    for plural in (POLICY_PLURAL, EVENT_PLURAL):
        op.loop.start_watch(plural, watch_stream(op.api_client, plural, namespace, op.loop))
