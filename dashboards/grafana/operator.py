"""Dashboard 5, Operator health: is the control plane itself well?

Reconcile duration per policy and per cycle, reconcile and Kubernetes API
errors by reason, which instance leads, incidents waiting for delivery per
sink, forecast fit and update time, /scale writes. From the operator's own
registry (controller/telemetry/metrics.py). Built by ``dashboards.grafana.build``.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from dashboards.grafana.common import NS, Q, dashboard, finish, namespace_var, row, stat_panel, ts

UID = "pitboss-operator"
RECONCILE = "pitboss_operator_reconcile_duration_seconds_bucket"
FIT = "pitboss_operator_forecast_fit_duration_seconds_bucket"


def build() -> dm.Dashboard:
    board = (dashboard(UID, "Is the operator reconciling on time, without errors, with one leader, delivering its"
                            " incidents and fitting forecasts fast enough?")
             .with_variable(namespace_var()))

    board = board.with_row(row("Loop"))
    board = board.with_panel(stat_panel(
        "Leader", "Which operator instance holds the lease (exactly one should lead)?", "short",
        [Q("max by (identity) (pitboss_operator_leader)", "{{identity}}")], w=6, h=6,
        mappings={"0": "follower", "1": "leader"}))
    board = board.with_panel(ts(
        "Reconcile duration (p50, p99)",
        "How long does one policy, and one whole cycle over every policy, take? A cycle should stay well under the"
        " sync period.", "s", "seconds",
        [Q(f"histogram_quantile(0.5, sum by (le, scope) (rate({RECONCILE}[$__rate_interval])))", "{{scope}} p50"),
         Q(f"histogram_quantile(0.99, sum by (le, scope) (rate({RECONCILE}[$__rate_interval])))", "{{scope}} p99")],
        w=18, h=6))
    board = board.with_panel(ts(
        "Reconcile and API errors by reason",
        "Is the operator failing to reconcile, and why (APIUnavailable, ScaleFailed, Forbidden, InvalidSpec, ...)?",
        "ops", "errors/s",
        [Q(f"sum by (reason) (rate(pitboss_operator_reconcile_errors_total{{{NS}}}[$__rate_interval]))",
           "{{reason}}")], w=12, h=8, stack=True, links=["pitboss-service"]))
    board = board.with_panel(ts(
        "/scale writes by target kind", "How often does the operator change replicas?", "ops", "writes/s",
        [Q("sum by (kind) (rate(pitboss_operator_scale_writes_total[$__rate_interval]))", "{{kind}}")], w=12, h=8))

    board = board.with_row(row("Incidents and forecasts"))
    board = board.with_panel(ts(
        "Undelivered incidents per sink",
        "Are incidents stuck on their way to Alertmanager or Kubernetes Events (the queue grows while a sink is"
        " down)?", "short", "incidents queued",
        [Q("max by (sink) (pitboss_operator_incident_queue)", "{{sink}}")], w=8, h=8,
        thresholds=[(1, "orange"), (100, "red")], links=["pitboss-slo"]))
    board = board.with_panel(ts(
        "Open incidents", "How many incidents does the operator hold open?", "short", "incidents",
        [Q("sum(pitboss_operator_incidents_firing)", "open")], w=8, h=8))
    board = board.with_panel(ts(
        "Forecast fit and update time (p90, last hour)",
        "How long does a full model fit, and an incremental update, take?", "s", "seconds",
        [Q(f"histogram_quantile(0.9, sum by (le, kind) (rate({FIT}[1h])))", "{{kind}}")], w=8, h=8))
    return finish(board)
