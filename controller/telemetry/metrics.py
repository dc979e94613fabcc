"""The operator's own Prometheus metrics and its small HTTP endpoint.

``OperatorMetrics`` owns a private registry (so tests and several instances
in one process do not collide): reconcile duration, decisions by reason,
desired vs current replicas per policy, forecast error, leader status, API
errors, open incidents and the incident delivery queue per sink. ``serve()``
exposes /metrics plus /healthz and /readyz for the Deployment's probes. Updated by the loop; scraped by Prometheus.

The dashboards (``dashboards/grafana``) read these names; so does the local
loop (``controller.local``), which exports the same registry. Per policy and
cycle, ``observe_policy`` records capacity accounting (demand, forecast
quantiles, ready capacity, the reactive counterfactual, replica-seconds,
unserved demand, lead time per event: ``controller.telemetry.accounting``);
``observe_incidents`` the open incidents by alert and time to resolve. Every
name is listed in docs/observe.md.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from controller.telemetry.accounting import CycleFacts, PolicyAccounting

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
# Time to resolve an incident: a minute to a day (the local loop's simulated minutes land here too).
_RESOLVE_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)
# Reasons a reconcile can fail: created at zero per policy, so "no errors" is a 0, not a missing series.
ERROR_REASONS = ("InternalError", "InvalidSpec", "TargetNotFound", "Forbidden", "APIUnavailable", "ScaleFailed")


class OperatorMetrics:
    """Every pitboss_operator_* metric, in one registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.reconcile_seconds = Histogram(
            "pitboss_operator_reconcile_duration_seconds",
            "Time to reconcile one policy (scope=policy) or every policy (scope=cycle).",
            ["scope"],
            buckets=_BUCKETS,
            registry=self.registry,
        )
        self.decisions = Counter(
            "pitboss_operator_decisions_total",
            "Decisions made, by policy and reason.",
            ["namespace", "policy", "reason"],
            registry=self.registry,
        )
        self.desired = Gauge(
            "pitboss_operator_desired_replicas", "Desired replicas per policy.", ["namespace", "policy"],
            registry=self.registry,
        )
        self.current = Gauge(
            "pitboss_operator_current_replicas", "Current replicas of the policy's target.", ["namespace", "policy"],
            registry=self.registry,
        )
        self.forecast_error = Gauge(
            "pitboss_operator_forecast_error_ratio",
            "|observed - forecast median| / observed demand for the current step, per policy.",
            ["namespace", "policy"],
            registry=self.registry,
        )
        self.leader = Gauge(
            "pitboss_operator_leader", "1 when this instance holds the leader lease.", ["identity"],
            registry=self.registry,
        )
        self.errors = Counter(
            "pitboss_operator_reconcile_errors_total", "Per-policy reconcile failures, by reason.",
            ["namespace", "policy", "reason"], registry=self.registry,
        )
        self.scales = Counter(
            "pitboss_operator_scale_writes_total", "Patches of /scale, by target kind.", ["kind"],
            registry=self.registry,
        )
        self.incidents_firing = Gauge(
            "pitboss_operator_incidents_firing", "Open incidents this instance raised.", registry=self.registry,
        )
        self.incident_queue = Gauge(
            "pitboss_operator_incident_queue", "Incidents waiting for delivery, per sink.", ["sink"],
            registry=self.registry,
        )
        self.status_writes = Counter(
            "pitboss_operator_status_writes_total",
            "Status PATCHes sent (result=written) and held back because only volatile fields changed"
            " (result=skipped, until --status-max-age).",
            ["result"], registry=self.registry,
        )
        self.cache_fallbacks = Counter(
            "pitboss_operator_cache_fallbacks_total",
            "Reads that bypassed the watch-fed cache, by resource and reason (unsynced, conflict, miss).",
            ["resource", "reason"], registry=self.registry,
        )
        self.cache_synced = Gauge(
            "pitboss_operator_cache_synced", "1 while the resource's cache is synced and read, 0 while it is not.",
            ["resource"], registry=self.registry,
        )
        self.cache_stale = Gauge(
            "pitboss_operator_cache_stale_seconds",
            "Age of the snapshot the resource's cache serves while it relists (0: synced; past --cache-max-stale"
            " the API is read instead).", ["resource"], registry=self.registry,
        )
        self._capacity_metrics()
        self.heartbeat = time.monotonic()

    def _capacity_metrics(self) -> None:
        """The metrics behind the dashboards' capacity, forecast, event and incident panels."""
        pol = ["namespace", "policy"]
        r = self.registry
        self.ready = Gauge("pitboss_operator_ready_replicas", "Ready replicas of the policy's target.", pol, registry=r)
        self.demand = Gauge("pitboss_operator_observed_demand",
                            "Demand the policy's metric reports now (its units per second, usually requests/s).",
                            pol, registry=r)
        self.forecast_demand = Gauge(
            "pitboss_operator_forecast_demand",
            "Forecast demand for the current step, by quantile (0.5 and the policy's headroom quantile).",
            [*pol, "quantile"], registry=r)
        self.forecast_peak = Gauge(
            "pitboss_operator_forecast_peak_demand",
            "Headroom-quantile forecast peak over the sizing window: the demand desired replicas are sized for.",
            pol, registry=r)
        self.capacity_per_replica = Gauge("pitboss_operator_capacity_per_replica",
                                          "The policy's capacityPerReplica (demand units/s one replica serves).",
                                          pol, registry=r)
        self.reactive_desired = Gauge(
            "pitboss_operator_reactive_desired_replicas",
            "What a reactive (HPA-like) autoscaler would ask for now: ceil(demand / capacityPerReplica), clamped,"
            " scale-down stabilized over 5 minutes.", pol, registry=r)
        self.replica_seconds = Counter(
            "pitboss_operator_replica_seconds",
            "Replica-seconds used by autoscaler: pitboss (the target's replicas) or reactive (the counterfactual).",
            [*pol, "autoscaler"], registry=r)
        self.unserved_demand = Gauge(
            "pitboss_operator_unserved_demand",
            "Estimated demand above ready capacity now: max(0, demand - ready replicas x capacityPerReplica).",
            pol, registry=r)
        self.unserved_requests = Counter(
            "pitboss_operator_unserved_requests",
            "Estimated requests above ready capacity: the integral of pitboss_operator_unserved_demand.",
            pol, registry=r)
        self.event_lead = Gauge(
            "pitboss_operator_event_lead_seconds",
            "Per TrafficEvent: how long before its start ready replicas reached what it needed (negative: after).",
            [*pol, "event"], registry=r)
        self.event_start = Gauge("pitboss_operator_traffic_event_start_timestamp_seconds",
                                 "Start of each TrafficEvent the policy selects (Unix time), from a day ago to a"
                                 " week ahead.", [*pol, "event", "kind"], registry=r)
        self.event_end = Gauge("pitboss_operator_traffic_event_end_timestamp_seconds",
                               "End of each TrafficEvent the policy selects (Unix time).", [*pol, "event", "kind"],
                               registry=r)
        self.forecast_fit = Histogram(
            "pitboss_operator_forecast_fit_duration_seconds",
            "Time to fit a policy's forecast model (kind=fit) or absorb new points without a refit (kind=update).",
            ["kind"], buckets=_BUCKETS, registry=r)
        self.db_desired = Gauge("pitboss_operator_database_desired_replicas", "Database read replicas wanted.", pol,
                                registry=r)
        self.db_current = Gauge("pitboss_operator_database_current_replicas", "Database read replicas now.", pol,
                                registry=r)
        self.db_lag = Gauge("pitboss_operator_database_replica_lag_seconds",
                            "Replication lag of each database read replica as the policy's lagQuery reports it.",
                            [*pol, "replica"], registry=r)
        self.incident_firing = Gauge(
            "pitboss_operator_incident_firing", "Open incidents by alert (what pitboss_operator_incidents_firing"
            " counts, with labels).", ["alertname", "severity", "namespace", "policy"], registry=r)
        self.incident_resolve = Histogram(
            "pitboss_operator_incident_resolve_duration_seconds", "Time from an incident's firing to its resolution.",
            ["alertname"], buckets=_RESOLVE_BUCKETS, registry=r)
        self._accounts: dict[tuple[str, str], PolicyAccounting] = {}
        self._exported: dict[tuple[str, str], dict[Any, set[tuple[str, ...]]]] = {}
        self._open: dict[str, tuple[str, datetime, tuple[str, ...]]] = {}  # incident id -> alertname, start, labels
        self._firing_labels: set[tuple[str, ...]] = set()
        # The per-policy children observe_policy writes, by (metric, label values): ``labels()`` takes a lock
        # and validates its values on every call, ~15 times per policy per cycle (issue 14: at most 1 ms per
        # policy). Every removal goes through ``_drop``, so a cached child is always the registered one.
        self._children: dict[tuple[str, str], dict[tuple[int, tuple[str, ...]], Any]] = {}

    def observe_policy(self, facts: CycleFacts, *, time_scale: float = 1.0) -> None:
        """Record one policy's cycle: capacity, forecast, reactive counterfactual, unserved demand, events."""
        key = (facts.namespace, facts.policy)
        account = self._accounts.get(key)
        if account is None:
            account = self._accounts[key] = PolicyAccounting(time_scale)
            for reason in ERROR_REASONS:  # exist at zero from the first cycle on
                self.errors.labels(*key, reason)
            for who in ("pitboss", "reactive"):
                self.replica_seconds.labels(*key, who)
            self.unserved_requests.labels(*key)
        step = account.step(facts)
        child = self._child
        child(self.ready, key).set(facts.ready)
        child(self.capacity_per_replica, key).set(facts.capacity_per_replica)
        child(self.replica_seconds, key, "pitboss").inc(step.pitboss_replica_seconds)
        child(self.replica_seconds, key, "reactive").inc(step.reactive_replica_seconds)
        child(self.unserved_requests, key).inc(step.unserved_requests)
        self._set_or_drop(self.demand, key, facts.observed)
        self._set_or_drop(self.unserved_demand, key, step.unserved_demand)
        self._set_or_drop(self.reactive_desired, key, step.reactive_desired)
        self._set_or_drop(self.forecast_peak, key, facts.forecast_peak)
        quantiles = {"0.5": facts.forecast_median, f"{facts.headroom_quantile:g}": facts.forecast_headroom}
        self._replace(self.forecast_demand, key, {(q,): v for q, v in quantiles.items() if v is not None})
        self._replace(self.event_lead, key, {(name,): account.leads[name] for name in account.leads})
        self._replace(self.event_start, key, {(n, kind): s for n, (kind, s, _) in step.events.items()})
        self._replace(self.event_end, key, {(n, kind): e for n, (kind, _, e) in step.events.items()})
        self._set_or_drop(self.db_desired, key, facts.database_desired)
        self._set_or_drop(self.db_current, key, facts.database_current)
        self._replace(self.db_lag, key, {(lag.name,): lag.lag_seconds for lag in facts.database_lags
                                         if lag.lag_seconds is not None})

    def observe_decision(self, namespace: str, policy: str, reason: str, desired: int, current: int) -> None:
        """One policy's decision this cycle: its reason counted, desired and current replicas set."""
        key = (namespace, policy)
        self._child(self.decisions, key, reason).inc()
        self._child(self.desired, key).set(desired)
        self._child(self.current, key).set(current)

    def observe_incidents(self, active: Iterable[Any], now: datetime) -> None:
        """Open incidents (``controller.incidents.model.Incident``) by alert; resolutions since the last call.

        An incident that was open at the previous call and is not now has resolved at ``now``.
        """
        current: dict[str, tuple[str, datetime, tuple[str, ...]]] = {}
        counts: dict[tuple[str, ...], int] = {}
        for incident in active:
            labels: tuple[str, ...] = (incident.alertname, str(incident.severity), incident.labels.get("namespace", ""),
                      incident.labels.get("policy", ""))
            current[incident.id] = (incident.alertname, incident.starts_at, labels)
            counts[labels] = counts.get(labels, 0) + 1
        for ident, (alertname, started, _) in self._open.items():
            if ident not in current:
                self.incident_resolve.labels(alertname).observe(max(0.0, (now - started).total_seconds()))
        for gone in self._firing_labels - set(counts):
            self.incident_firing.labels(*gone).set(0)  # stays at 0: "none firing" is data, not a gap
        for firing, n in counts.items():
            self.incident_firing.labels(*firing).set(n)
        self._firing_labels |= set(counts)
        self._open = current

    def _child(self, metric: Any, key: tuple[str, str], *extra: str) -> Any:
        """The metric's child for the policy (and ``extra`` labels), created once and then cached."""
        mine = self._children.get(key)
        if mine is None:
            mine = self._children[key] = {}
        found = mine.get((id(metric), extra))
        if found is None:
            found = mine[(id(metric), extra)] = metric.labels(*key, *extra)
        return found

    def _drop(self, metric: Any, key: tuple[str, str], *extra: str) -> None:
        """Remove the metric's child for the policy (if it exists) and forget its cached handle."""
        self._children.get(key, {}).pop((id(metric), extra), None)
        with contextlib.suppress(KeyError):
            metric.remove(*key, *extra)

    def _set_or_drop(self, gauge: Gauge, key: tuple[str, str], value: float | None) -> None:
        """Set the policy's child, or remove it when the value is unknown (a gap, never a fake zero)."""
        if value is None:
            if (id(gauge), ()) in self._children.get(key, {}):  # only observe_policy creates these children
                self._drop(gauge, key)
        else:
            self._child(gauge, key).set(value)

    def _replace(self, gauge: Gauge, key: tuple[str, str], values: dict[tuple[str, ...], float]) -> None:
        """Set these children of the policy's ``gauge`` and remove the ones it exported before but not now."""
        exported = self._exported.setdefault(key, {}).setdefault(gauge, set())
        if exported:
            for extra in exported - values.keys():
                self._drop(gauge, key, *extra)
        for extra, value in values.items():
            self._child(gauge, key, *extra).set(value)
        exported.clear()
        exported.update(values)

    def forget(self, namespace: str, policy: str) -> None:
        """Drop the per-policy gauges of a deleted policy."""
        key = (namespace, policy)
        for gauge in (self.desired, self.current, self.forecast_error, self.ready, self.demand, self.forecast_peak,
                      self.capacity_per_replica, self.reactive_desired, self.unserved_demand, self.db_desired,
                      self.db_current):
            self._drop(gauge, key)
        for gauge, children in self._exported.pop(key, {}).items():
            for extra in children:
                self._drop(gauge, key, *extra)
        self._accounts.pop(key, None)
        self._children.pop(key, None)  # the counters' handles too (their series stay, as before)

    def forget_except(self, keep: set[tuple[str, str]]) -> None:
        """After a complete pass: forget every (namespace, policy) not in ``keep``."""
        for namespace, policy in [k for k in self._accounts if k not in keep]:
            self.forget(namespace, policy)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)


def serve(
    metrics: OperatorMetrics, port: int, *, host: str = "0.0.0.0", stale_after: float = 120.0
) -> ThreadingHTTPServer:
    """Serve /metrics, /healthz (the loop ran within ``stale_after`` s) and /readyz in a daemon thread."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path.startswith("/metrics"):
                body, ctype, code = metrics.exposition(), CONTENT_TYPE_LATEST, 200
            elif self.path.startswith(("/healthz", "/readyz")):
                fresh = time.monotonic() - metrics.heartbeat < stale_after
                body, ctype, code = (b"ok\n" if fresh else b"loop stalled\n"), "text/plain", 200 if fresh else 503
            else:
                body, ctype, code = b"not found\n", "text/plain", 404
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # quiet
            return

    server = ThreadingHTTPServer((host, port), Handler)
    threading.Thread(target=server.serve_forever, name="operator-metrics", daemon=True).start()
    return server
