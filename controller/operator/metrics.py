"""The operator's own Prometheus metrics and its small HTTP endpoint.

``OperatorMetrics`` owns a private registry (so tests and several instances
in one process do not collide): reconcile duration, decisions by reason,
desired vs current replicas per policy, forecast error, leader status, API
errors, open incidents and the incident delivery queue per sink. ``serve()``
exposes /metrics plus /healthz and /readyz for the Deployment's probes. Updated by the loop; scraped by Prometheus.
"""

from __future__ import annotations

import contextlib
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)


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
        self.heartbeat = time.monotonic()

    def forget(self, namespace: str, policy: str) -> None:
        """Drop the per-policy gauges of a deleted policy."""
        for gauge in (self.desired, self.current, self.forecast_error):
            with contextlib.suppress(KeyError):
                gauge.remove(namespace, policy)

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
