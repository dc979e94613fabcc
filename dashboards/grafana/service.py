"""Dashboard 2, Service detail (SREs): one policy's replicas, decisions, forecast, latency and database.

Templated by ``policy`` (one at a time) and the casino ``service`` it scales:
desired/current/ready replicas beside the reactive counterfactual, decision
reasons over time, forecast error, lead time achieved before each event,
p99 latency, admission rejections, database read replicas and their lag.
Built by ``dashboards.grafana.build``.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from dashboards.grafana.common import (
    BUSINESS_ROUTES,
    POL,
    SVC,
    Q,
    bars,
    dashboard,
    dashed,
    fill_between,
    finish,
    namespace_var,
    policy_var,
    row,
    sel,
    service_var,
    stat_panel,
    ts,
)

UID = "pitboss-service"


def build() -> dm.Dashboard:
    board = (dashboard(UID, "Why did this policy scale, was it early enough, and how did the service and its"
                            " database read replicas hold up?")
             .with_variable(namespace_var()).with_variable(policy_var(multi=False)).with_variable(service_var()))

    board = board.with_row(row("Replicas and decisions"))
    replicas = ts(
        "Replicas: desired, current, ready",
        "What did Pitboss ask for, what exists, what is ready, and what would a reactive autoscaler ask for?",
        "short", "replicas",
        [Q(f"max(pitboss_operator_desired_replicas{{{POL}}})", "desired"),
         Q(f"max(pitboss_operator_current_replicas{{{POL}}})", "current"),
         Q(f"max(pitboss_operator_ready_replicas{{{POL}}})", "ready"),
         Q(f"max(pitboss_operator_reactive_desired_replicas{{{POL}}})", "reactive")], w=12, h=8)
    board = board.with_panel(dashed(replicas, "reactive"))
    board = board.with_panel(ts(
        "Decisions by reason",
        "Why did the policy decide what it did, cycle after cycle (ScaleUpForecast, Hold, ScaleDown, ...)?",
        "opm", "decisions/min",
        [Q(f"sum by (reason) (rate(pitboss_operator_decisions_total{{{POL}}}[$__rate_interval])) * 60",
           "{{reason}}")], w=12, h=8, stack=True, bars=True))

    board = board.with_row(row("Forecast"))
    demand = ts(
        "Demand and forecast",
        "Did demand stay inside the forecast's band (median to headroom quantile)?", "reqps", "requests/s",
        [Q(f"max(pitboss_operator_observed_demand{{{POL}}})", "demand"),
         Q(f'max(pitboss_operator_forecast_demand{{{POL}, quantile="0.5"}})', "forecast median"),
         Q(f"max(pitboss_operator_forecast_demand{{{POL}}})", "forecast headroom"),
         Q(f"max(pitboss_operator_forecast_peak_demand{{{POL}}})", "sized for (peak over lead time)")], w=12, h=8)
    board = board.with_panel(fill_between(demand, "forecast headroom", "forecast median"))
    board = board.with_panel(ts(
        "Forecast error",
        "How far was the forecast median from observed demand (|observed - median| / observed)?",
        "percentunit", "error", [Q(f"max(pitboss_operator_forecast_error_ratio{{{POL}}})", "error")], w=6, h=8,
        thresholds=[(0.25, "orange"), (0.5, "red")]))
    board = board.with_panel(bars(
        "Lead time achieved before each event",
        "Was capacity ready before each event started, and by how much (negative: after the start)?", "s",
        [Q(f"max by (event) (pitboss_operator_event_lead_seconds{{{POL}}})", "{{event}}")], w=6, h=8))

    board = board.with_row(row("Service: latency and admission"))
    board = board.with_panel(ts(
        "p99 latency by route",
        "Are requests still fast (the latency SLO counts requests under 0.25 s)?", "s", "seconds",
        [Q("histogram_quantile(0.99, sum by (le, route) (rate("
           f"{sel('casino_http_request_duration_seconds_bucket', BUSINESS_ROUTES, base=SVC)}[$__rate_interval])))",
           "{{route}}")], w=12, h=8, thresholds=[(0.25, "red")], links=["pitboss-slo"]))
    board = board.with_panel(ts(
        "Admission rejections",
        "Are replicas turning requests away (503 at the in-flight cap: demand above ready capacity)?",
        "reqps", "rejected requests/s",
        [Q(f"sum by (route) (rate(casino_admission_rejections_total{{{SVC}}}[$__rate_interval]))", "{{route}}")],
        w=6, h=8, stack=True))
    board = board.with_panel(ts(
        "Admission slots in use",
        "How close are replicas to their in-flight cap (requests in flight / admission capacity)?",
        "percentunit", "share of capacity",
        [Q(f"sum(casino_http_requests_in_flight{{{SVC}}}) / sum(casino_admission_capacity{{{SVC}}})", "in use")],
        w=6, h=8, thresholds=[(0.8, "orange"), (1.0, "red")]))

    board = board.with_row(row("Database read replicas"))
    board = board.with_panel(ts(
        "Database read replicas: desired and current",
        "Did read replicas follow the forecast, ahead of their longer lead time?", "short", "replicas",
        [Q(f"max(pitboss_operator_database_desired_replicas{{{POL}}})", "desired"),
         Q(f"max(pitboss_operator_database_current_replicas{{{POL}}})", "current")], w=12, h=8))
    board = board.with_panel(ts(
        "Replication lag per read replica",
        "Which read replicas lag (those above maxLagSeconds do not count as capacity)?", "s", "lag",
        [Q(f"max by (replica) (pitboss_operator_database_replica_lag_seconds{{{POL}}})", "{{replica}}")],
        w=8, h=8))
    board = board.with_panel(stat_panel(
        "Database connections in use",
        "Is the service's connection pool saturated (checked out / pool size)?", "percentunit",
        [Q(f"sum(casino_db_pool_in_use{{{SVC}}}) / sum(casino_db_pool_size{{{SVC}}})", "in use")], w=4, h=8,
        thresholds=[(0.8, "orange"), (0.95, "red")]))
    return finish(board)
