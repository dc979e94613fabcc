"""Shared pieces of the Pitboss Grafana dashboards, on grafana-foundation-sdk builders.

Every dashboard module (``capacity``, ``service``, ``slo``, ``business``,
``operator``) composes these: the ``datasource``/``namespace``/``policy``/
``service`` template variables, the links between the five dashboards, panel
factories that always set a unit (and an axis label on time series), a
description (the question the panel answers) and a Prometheus target per
query, and ``finish`` which numbers panels and query refIds so the JSON is
stable. Metric names come from the registries of ``casino/`` and
``controller/`` (``tests/dashboards`` checks every name). Called by
``dashboards.grafana.build``.
"""

from __future__ import annotations

import typing
from collections.abc import Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import bargauge, prometheus, stat, table, timeseries
from grafana_foundation_sdk.builders import common as cb
from grafana_foundation_sdk.builders import dashboard as db
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as cm
from grafana_foundation_sdk.models import dashboard as dm
from grafana_foundation_sdk.models.prometheus import PromQueryFormat

DS = dm.DataSourceRef(type_val="prometheus", uid="${datasource}")
TAG = "pitboss"
# The five dashboards, by uid (the file names are <uid>.json, the URLs /d/<uid>).
UIDS = {
    "pitboss-capacity": "Pitboss / Capacity overview",
    "pitboss-service": "Pitboss / Service detail",
    "pitboss-slo": "Pitboss / Incidents and SLOs",
    "pitboss-business": "Pitboss / Casino business",
    "pitboss-operator": "Pitboss / Operator health",
}
# Label filters every query carries (multi-value variables: always =~).
NS = 'namespace=~"$namespace"'
POL = f'{NS}, policy=~"$policy"'
SVC = f'{NS}, service=~"$service"'
BUSINESS_ROUTES = 'route!~"/metrics|/healthz|/readyz"'


def sel(metric: str, *matchers: str, base: str = POL) -> str:
    """``metric{base, matchers...}``: a selector with the dashboard's variable filters."""
    return metric + "{" + ", ".join(m for m in (base, *matchers) if m) + "}"


@dataclass(frozen=True)
class Q:
    """One Prometheus query of a panel."""

    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False


class PromAnnotation(dm.AnnotationQuery):
    """A Prometheus annotation with the query editor's field mappings.

    The SDK's AnnotationQuery (its 11.6 schema) has ``expr`` but not the Prometheus
    data source's ``step``, ``titleFormat``, ``textFormat``, ``tagKeys`` and
    ``useValueForTime``; Grafana reads them from the same object, so they are added here.
    """

    def __init__(self, name: str, expr: str, *, color: str, title: str = "", text: str = "", tags: str = "",
                 value_for_time: bool = False, step: str = "") -> None:
        super().__init__(name=name, datasource=DS, enable=True, hide=False, icon_color=color, expr=expr)
        self.extra = {"titleFormat": title, "textFormat": text, "tagKeys": tags, "useValueForTime": value_for_time,
                      "step": step}

    def to_json(self) -> dict[str, object]:
        return {**super().to_json(), **self.extra}


class _Built(cogbuilder.Builder[dm.AnnotationQuery]):
    def __init__(self, value: dm.AnnotationQuery) -> None:
        self.value = value

    def build(self) -> dm.AnnotationQuery:
        return self.value


def annotation(name: str, expr: str, **kwargs: typing.Any) -> _Built:
    """An annotation query for ``Dashboard.annotation``."""
    return _Built(PromAnnotation(name, expr, **kwargs))


# ---- variables ---------------------------------------------------------------------------------
def datasource_var() -> db.DatasourceVariable:
    return db.DatasourceVariable("datasource").label("Data source").type("prometheus")


def query_var(name: str, label: str, query: str, *, multi: bool = True) -> db.QueryVariable:
    """A variable over ``label_values(...)``; multi-value ones offer All (``.*``, which also matches no label)."""
    var = (db.QueryVariable(name).label(label).datasource(DS)
           .query({"query": query, "refId": "PrometheusVariableQueryEditor-VariableQuery"})
           .refresh(dm.VariableRefresh.ON_TIME_RANGE_CHANGED).sort(dm.VariableSort.ALPHABETICAL_ASC))
    if multi:
        var = var.multi(True).include_all(True).all_value(".*")
    return var


def namespace_var() -> db.QueryVariable:
    return query_var("namespace", "Namespace", "label_values(pitboss_operator_desired_replicas, namespace)")


def policy_var(*, multi: bool = True) -> db.QueryVariable:
    return query_var("policy", "Policy", f"label_values(pitboss_operator_desired_replicas{{{NS}}}, policy)",
                     multi=multi)


def service_var() -> db.QueryVariable:
    return query_var("service", "Service", f"label_values(casino_http_requests_total{{{NS}}}, service)")


# ---- dashboards and links -----------------------------------------------------------------------
def dashboard(uid: str, description: str, *, time_from: str = "now-6h", time_to: str = "now") -> db.Dashboard:
    """A dashboard with the Pitboss defaults and links to the other four (variables and time range kept)."""
    board = (db.Dashboard(UIDS[uid]).uid(uid).description(description).tags([TAG]).editable()
             .time(time_from, time_to).refresh("30s").timezone("browser")
             .tooltip(dm.DashboardCursorSync.CROSSHAIR).with_variable(datasource_var()))
    for other, title in UIDS.items():
        if other != uid:
            board = board.link(db.DashboardLink(title.removeprefix("Pitboss / ")).type(dm.DashboardLinkType.LINK)
                               .url(f"/d/{other}").include_vars(True).keep_time(True).icon("dashboard")
                               .tooltip(title))
    return board


def link(uid: str) -> db.DashboardLink:
    """A panel link to another dashboard, keeping the time range and the variables."""
    return (db.DashboardLink(UIDS[uid].removeprefix("Pitboss / ")).url(f"/d/{uid}?${{__url_time_range}}"
                                                                       "&${__all_variables}").target_blank(False))


# ---- panels ------------------------------------------------------------------------------------
def _target(q: Q) -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(q.expr).datasource(DS)
    if q.legend:
        target = target.legend_format(q.legend)
    if q.table:
        target = target.format(PromQueryFormat.TABLE)
    return target.instant() if q.instant else target.range()


PanelT = typing.TypeVar("PanelT", timeseries.Panel, stat.Panel, table.Panel, bargauge.Panel)


def _common(panel: PanelT, title: str, question: str, unit: str, queries: Sequence[Q], w: int, h: int,
            links: Sequence[str]) -> PanelT:
    panel = panel.title(title).description(question).unit(unit).datasource(DS).span(w).height(h)
    for q in queries:
        panel = panel.with_target(_target(q))
    if links:
        panel = panel.links([link(uid) for uid in links])
    return panel


def ts(title: str, question: str, unit: str, axis: str, queries: Sequence[Q], *, w: int = 12, h: int = 8,
       links: Sequence[str] = (), stack: bool = False, bars: bool = False, min_zero: bool = True,
       thresholds: Sequence[tuple[float, str]] = ()) -> timeseries.Panel:
    """A time series with a unit and a labelled axis."""
    panel = _common(timeseries.Panel(), title, question, unit, queries, w, h, links).axis_label(axis)
    panel = panel.legend(cb.VizLegendOptions().show_legend(True).display_mode(cm.LegendDisplayMode.LIST)
                         .placement(cm.LegendPlacement.BOTTOM))
    panel = panel.tooltip(cb.VizTooltipOptions().mode(cm.TooltipDisplayMode.MULTI).sort(cm.SortOrder.DESCENDING))
    if min_zero:
        panel = panel.min(0)
    if stack:
        panel = panel.stacking(cb.StackingConfig().mode(cm.StackingMode.NORMAL)).fill_opacity(40)
    if bars:
        panel = panel.draw_style(cm.GraphDrawStyle.BARS).fill_opacity(80)
    if thresholds:
        panel = panel.thresholds(_steps(thresholds)).thresholds_style(
            cb.GraphThresholdsStyleConfig().mode(cm.GraphThresholdsStyleMode.DASHED))
    return panel


def stat_panel(title: str, question: str, unit: str, queries: Sequence[Q], *, w: int = 6, h: int = 5,
               links: Sequence[str] = (), thresholds: Sequence[tuple[float, str]] = (),
               mappings: dict[str, str] | None = None, decimals: int | None = None) -> stat.Panel:
    """A single number (the last value of each query) with a unit."""
    panel = _common(stat.Panel(), title, question, unit, queries, w, h, links)
    panel = panel.graph_mode(cm.BigValueGraphMode.AREA).color_mode(cm.BigValueColorMode.VALUE).reduce_options(
        cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))
    if thresholds:
        panel = panel.thresholds(_steps(thresholds))
    if decimals is not None:
        panel = panel.decimals(decimals)
    if mappings:
        panel = panel.mappings([dm.ValueMap(options={k: dm.ValueMappingResult(text=v) for k, v in mappings.items()})])
    return panel


def bars(title: str, question: str, unit: str, queries: Sequence[Q], *, w: int = 12, h: int = 8,
         links: Sequence[str] = ()) -> bargauge.Panel:
    """A horizontal bar gauge (one bar per series, the last value)."""
    panel = _common(bargauge.Panel(), title, question, unit, queries, w, h, links)
    return panel.orientation(cm.VizOrientation.HORIZONTAL).display_mode(cm.BarGaugeDisplayMode.BASIC).reduce_options(
        cb.ReduceDataOptions().calcs(["lastNotNull"]).values(False))


def table_panel(title: str, question: str, unit: str, queries: Sequence[Q], *, w: int = 12, h: int = 8,
                links: Sequence[str] = ()) -> table.Panel:
    """A table of instant values (one row per series), labels as columns."""
    panel = _common(table.Panel(), title, question, unit, queries, w, h, links)
    return panel.with_transformation(dm.DataTransformerConfig(id_val="merge", options={}))


def _steps(thresholds: Sequence[tuple[float, str]]) -> db.ThresholdsConfig:
    steps = [dm.Threshold(value=None, color="green")] + [dm.Threshold(value=v, color=c) for v, c in thresholds]
    return db.ThresholdsConfig().mode(dm.ThresholdsMode.ABSOLUTE).steps(steps)


def row(title: str) -> db.Row:
    return db.Row(title)


def fill_between(panel: timeseries.Panel, upper: str, lower: str) -> timeseries.Panel:
    """Shade the band between the series named ``upper`` and ``lower`` (the forecast's headroom band)."""
    return panel.override_by_name(upper, [dm.DynamicConfigValue(id_val="custom.fillBelowTo", value=lower),
                                          dm.DynamicConfigValue(id_val="custom.lineWidth", value=0)]) \
        .override_by_name(lower, [dm.DynamicConfigValue(id_val="custom.lineStyle",
                                                        value={"fill": "dash", "dash": [10, 10]})])


def dashed(panel: timeseries.Panel, name: str) -> timeseries.Panel:
    """Draw the series ``name`` dashed (a counterfactual, not what ran)."""
    return panel.override_by_name(name, [dm.DynamicConfigValue(id_val="custom.lineStyle",
                                                               value={"fill": "dash", "dash": [10, 10]})])


def finish(board: db.Dashboard) -> dm.Dashboard:
    """Build, then number the panels (1..n in grid order) and each panel's queries (A, B, ...)."""
    model = board.build()
    for i, panel in enumerate(model.panels or [], start=1):
        panel.id_val = i
        for j, target in enumerate(getattr(panel, "targets", None) or []):
            target.ref_id = chr(ord("A") + j)
    return model
