"""Dashboard 1, Capacity overview (managers): is capacity ready for demand, what does it cost, what is coming.

Per policy (the panel repeats for each selected one): demand against the
forecast's median and headroom band and the ready capacity; upcoming and
running TrafficEvents as annotations; replica-hours of the last 7 days against
what a reactive (HPA-like) autoscaler would have used; the unserved-demand
estimate; incidents firing. Built by ``dashboards.grafana.build``.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from dashboards.grafana.common import (
    POL,
    Q,
    annotation,
    bars,
    dashboard,
    dashed,
    fill_between,
    finish,
    namespace_var,
    policy_var,
    row,
    sel,
    stat_panel,
    table_panel,
    ts,
)

UID = "pitboss-capacity"
BY_EVENT = "max by (namespace, policy, event, kind)"
EVENT_START = f"{BY_EVENT} ({sel('pitboss_operator_traffic_event_start_timestamp_seconds')})"
EVENT_END = f"{BY_EVENT} ({sel('pitboss_operator_traffic_event_end_timestamp_seconds')})"
REPLICA_SECONDS = sel("pitboss_operator_replica_seconds_total")
PITBOSS_SECONDS = sel("pitboss_operator_replica_seconds_total", 'autoscaler="pitboss"')
REACTIVE_SECONDS = sel("pitboss_operator_replica_seconds_total", 'autoscaler="reactive"')


def build() -> dm.Dashboard:
    board = (dashboard(UID, "Is capacity ready before demand arrives, what does it cost against a reactive"
                            " autoscaler, and what is coming? One row of demand per policy.",
                       time_from="now-12h", time_to="now+3h")
             .with_variable(namespace_var()).with_variable(policy_var())
             .annotation(annotation("Upcoming events", f"{EVENT_START} * 1000", color="purple",
                                    title="{{event}} ({{kind}})", text="starts; policy {{policy}}", tags="kind",
                                    value_for_time=True, step="5m"))
             .annotation(annotation("Events running", f"({EVENT_START} < time()) and on (namespace, policy, event,"
                                    f" kind) ({EVENT_END} > time())", color="orange", title="{{event}} ({{kind}})",
                                    text="running; policy {{policy}}", tags="kind")))

    board = board.with_row(row("Demand, forecast and ready capacity"))
    demand = ts(
        "$policy: demand, forecast and ready capacity",
        "Is ready capacity above demand, and above the forecast's headroom quantile, before each event? The"
        " shaded band runs from the forecast median to the headroom quantile the replicas are sized at.",
        "reqps", "requests/s",
        [Q(f"sum by (namespace, policy) (pitboss_operator_observed_demand{{{POL}}})", "demand"),
         Q(f'sum by (namespace, policy) (pitboss_operator_forecast_demand{{{POL}, quantile="0.5"}})',
           "forecast median"),
         Q(f"max by (namespace, policy) (pitboss_operator_forecast_demand{{{POL}}})", "forecast headroom"),
         Q(f"sum by (namespace, policy) (pitboss_operator_ready_replicas{{{POL}}} * on (namespace, policy)"
           f" pitboss_operator_capacity_per_replica{{{POL}}})", "ready capacity")],
        w=24, h=9, links=["pitboss-service"])
    board = board.with_panel(fill_between(demand, "forecast headroom", "forecast median").repeat("policy")
                             .repeat_direction("v"))

    board = board.with_row(row("Cost against a reactive autoscaler"))
    board = board.with_panel(stat_panel(
        "Replica-hours, last 7 days",
        "How many replica-hours did Pitboss use, and how many would a reactive (HPA-like) autoscaler on the same"
        " demand have used?",
        "h", [Q(f"sum by (autoscaler) (increase({REPLICA_SECONDS}[7d])) / 3600", "{{autoscaler}}")],
        w=8, h=6, decimals=1))
    board = board.with_panel(stat_panel(
        "Pitboss cost against reactive, last 7 days",
        "What does being ready before events cost against a reactive autoscaler? Pitboss' replica-hours as a share"
        " of the reactive autoscaler's: above 100 % is the price of readiness, below 100 % is saved capacity.",
        "percentunit",
        [Q(f"sum(increase({PITBOSS_SECONDS}[7d])) / sum(increase({REACTIVE_SECONDS}[7d]))", "pitboss / reactive")],
        w=8, h=6, thresholds=[(1.0, "orange"), (1.5, "red")]))
    board = board.with_panel(stat_panel(
        "Incidents firing",
        "Is anything wrong right now? Open Pitboss incidents for the selected policies (details: Incidents and"
        " SLOs).", "short",
        [Q(f"sum(pitboss_operator_incident_firing{{{POL}}})", "firing")], w=8, h=6,
        thresholds=[(1, "red")], links=["pitboss-slo"]))
    replicas = ts(
        "Replicas: Pitboss and a reactive autoscaler",
        "When did Pitboss add replicas, and how much earlier than a reactive autoscaler would have (dashed)?",
        "short", "replicas",
        [Q(f"sum by (policy) (pitboss_operator_current_replicas{{{POL}}})", "{{policy}} pitboss"),
         Q(f"sum by (policy) (pitboss_operator_reactive_desired_replicas{{{POL}}})", "{{policy}} reactive")],
        w=12, h=8)
    board = board.with_panel(dashed(replicas, "reactive"))
    board = board.with_panel(ts(
        "Replica-hours per hour: Pitboss and reactive",
        "Where does the cost difference come from? Hour by hour, the replica-hours of each autoscaler.",
        "short", "replica-hours per hour",
        [Q(f"sum by (autoscaler) (rate({REPLICA_SECONDS}[$__rate_interval]))", "{{autoscaler}}")], w=12, h=8))

    board = board.with_row(row("Unserved demand and upcoming events"))
    board = board.with_panel(ts(
        "Unserved demand (estimate)",
        "How much demand arrived above ready capacity (demand - ready replicas x capacityPerReplica)?",
        "reqps", "requests/s", [Q(f"sum by (policy) (pitboss_operator_unserved_demand{{{POL}}})", "{{policy}}")],
        w=8, h=8))
    board = board.with_panel(stat_panel(
        "Requests unserved, last 7 days (estimate)",
        "How many requests did ready capacity miss in the last week?", "short",
        [Q(f"sum(increase(pitboss_operator_unserved_requests_total{{{POL}}}[7d]))", "unserved")], w=4, h=8))
    board = board.with_panel(table_panel(
        "Upcoming events",
        "Which TrafficEvents are coming, for which policy, and when do they start?", "dateTimeAsIso",
        [Q(f"{EVENT_START} * 1000", instant=True, table=True)], w=12, h=8))
    board = board.with_panel(bars(
        "Lead time achieved before each event",
        "How long before each event's start was the capacity it needed ready (negative: late)?", "s",
        [Q(f"max by (policy, event) (pitboss_operator_event_lead_seconds{{{POL}}})", "{{policy}} {{event}}")],
        w=24, h=6, links=["pitboss-service"]))
    return finish(board)
