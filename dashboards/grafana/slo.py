"""Dashboard 3, Incidents and SLOs: error-budget burn per window, budget left, incidents and time to resolve.

The SLO formulas are those of manifests/prometheus/casino-rules.yaml and
controller/incidents/rules.py (availability 99.9 %: no 5xx; latency 99 %
under 0.25 s), computed from the casino's raw metrics per selected service;
the burn-rate thresholds drawn (14.4x, 6x, 1x) are the page and ticket
windows of the multiwindow alerts. Incidents are Pitboss' own (every
alertname its rules raise). Built by ``dashboards.grafana.build``.
"""

from __future__ import annotations

from grafana_foundation_sdk.models import dashboard as dm

from controller.incidents.rules import DEFAULT_SLOS
from dashboards.grafana.common import (
    POL,
    SVC,
    Q,
    bars,
    dashboard,
    finish,
    namespace_var,
    policy_var,
    row,
    service_var,
    stat_panel,
    ts,
)

UID = "pitboss-slo"
WINDOWS = ("5m", "30m", "1h", "6h", "3d")
BUDGET_PERIOD = "30d"
OBJECTIVES = {slo.name: slo.objective for slo in DEFAULT_SLOS}
BURN_THRESHOLDS = [(1.0, "yellow"), (6.0, "orange"), (14.4, "red")]


def error_ratio(slo: str, window: str) -> str:
    """The SLO's error ratio over ``window`` for the selected services (the recording rules' formula)."""
    total = f"sum(rate(casino_http_requests_total{{{SVC}}}[{window}]))"
    if slo == "availability":
        return f'((sum(rate(casino_http_requests_total{{{SVC}, status=~"5.."}}[{window}])) or vector(0)) / {total})'
    fast = f'sum(rate(casino_http_request_duration_seconds_bucket{{{SVC}, le="0.25"}}[{window}]))'
    return f"(1 - {fast} / sum(rate(casino_http_request_duration_seconds_count{{{SVC}}}[{window}])))"


def build() -> dm.Dashboard:
    board = (dashboard(UID, "How fast is each SLO burning its error budget, how much is left, what is firing and"
                            " how long do incidents take to resolve?", time_from="now-24h")
             .with_variable(namespace_var()).with_variable(service_var()).with_variable(policy_var()))

    board = board.with_row(row("Error budget burn"))
    for slo, objective in OBJECTIVES.items():
        budget = 1 - objective
        board = board.with_panel(ts(
            f"{slo.capitalize()} burn rate per window",
            f"How many times faster than allowed is the {slo} SLO ({objective:.1%}) burning its budget, per alert"
            " window? Above 14.4x over 1h and 5m pages; above 1x over 3d and 6h opens a ticket.",
            "x", "burn rate",
            [Q(f"{error_ratio(slo, w)} / {budget:g}", w) for w in WINDOWS], w=12, h=8,
            thresholds=BURN_THRESHOLDS))
    for slo, objective in OBJECTIVES.items():
        budget = 1 - objective
        board = board.with_panel(stat_panel(
            f"{slo.capitalize()} error budget left ({BUDGET_PERIOD})",
            f"How much of the {slo} SLO's {BUDGET_PERIOD} error budget ({budget:.2%} of requests) is left?",
            "percentunit", [Q(f"1 - {error_ratio(slo, BUDGET_PERIOD)} / {budget:g}", "left")], w=6, h=5,
            thresholds=[(0.0, "red"), (0.25, "orange"), (0.5, "green")]))
    board = board.with_panel(stat_panel(
        "Incidents firing", "How many Pitboss incidents are open now?", "short",
        [Q(f"sum(pitboss_operator_incident_firing{{{POL}}})", "firing")], w=6, h=5, thresholds=[(1, "red")]))
    board = board.with_panel(stat_panel(
        "Incidents resolved in range", "How many incidents resolved over the dashboard's time range?", "short",
        [Q("sum(increase(pitboss_operator_incident_resolve_duration_seconds_count[$__range]))", "resolved")],
        w=6, h=5))

    board = board.with_row(row("Incidents"))
    board = board.with_panel(ts(
        "Firing incidents by alert",
        "Which alerts fire, for which policy, and since when (CapacityNotReady, ForecastMiss, ErrorBudgetBurn, ...)?",
        "short", "incidents",
        [Q(f"sum by (alertname, severity) (pitboss_operator_incident_firing{{{POL}}})",
           "{{alertname}} ({{severity}})")],
        w=12, h=8, stack=True, links=["pitboss-service"]))
    board = board.with_panel(bars(
        "Time to resolve by alert (p90 over the range)",
        "How long do incidents of each alert stay open, firing to resolved?", "s",
        [Q("histogram_quantile(0.9, sum by (le, alertname) (increase("
           "pitboss_operator_incident_resolve_duration_seconds_bucket[$__range])))", "{{alertname}}")], w=6, h=8))
    board = board.with_panel(bars(
        "Mean time to resolve by alert",
        "On average, how long does an incident of each alert stay open?", "s",
        [Q("sum by (alertname) (increase(pitboss_operator_incident_resolve_duration_seconds_sum[$__range]))"
           " / sum by (alertname) (increase(pitboss_operator_incident_resolve_duration_seconds_count[$__range]))",
           "{{alertname}}")], w=6, h=8))
    return finish(board)
