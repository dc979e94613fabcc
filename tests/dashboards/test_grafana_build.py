"""The Grafana dashboards as code: regenerated JSON is the committed JSON, and every dashboard is well-formed.

Well-formed: stable uids and titles, the ``datasource`` variable, links to the
other four dashboards, a unit and a description (the question it answers) on
every panel and an axis label on every time series, multi-value variables
matched with ``=~`` only, and PromQL that names only metrics the casino or
the operator exports (their registries, tests/dashboards/exported.py).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dashboards.grafana import build
from dashboards.grafana.common import UIDS
from dashboards.grafana.queries import expressions, metric_names, substitute
from tests.dashboards.exported import exported_names

BOARDS = {uid: json.loads(text) for uid, text in build.build_all().items()}


def test_regenerating_gives_exactly_the_committed_json() -> None:
    for uid, text in build.build_all().items():
        committed = (build.HERE / f"{uid}.json").read_text()
        assert text == committed, f"{uid}.json is stale: run `pitboss dashboards build`"
    assert sorted(p.stem for p in build.HERE.glob("*.json")) == sorted(UIDS)


def test_write_all_writes_the_same_files(tmp_path: Path) -> None:
    paths = build.write_all(tmp_path)
    assert [p.name for p in paths] == [f"{uid}.json" for uid in UIDS]
    assert build.load_all(tmp_path) == build.load_all()


def test_five_dashboards_with_stable_uids_datasource_variable_and_links() -> None:
    assert list(BOARDS) == ["pitboss-capacity", "pitboss-service", "pitboss-slo", "pitboss-business",
                            "pitboss-operator"]
    for uid, board in BOARDS.items():
        assert board["uid"] == uid and board["title"] == UIDS[uid]
        assert "pitboss" in board["tags"]
        variables = {v["name"]: v for v in board["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
        assert "namespace" in variables
        urls = {link["url"] for link in board["links"]}
        assert urls == {f"/d/{other}" for other in UIDS if other != uid}
        assert all(link["includeVars"] and link["keepTime"] for link in board["links"])
        for panel in board["panels"]:
            if panel["type"] != "row":
                assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert {v["name"] for v in BOARDS["pitboss-service"]["templating"]["list"]} >= {"policy", "service"}
    policy = next(v for v in BOARDS["pitboss-service"]["templating"]["list"] if v["name"] == "policy")
    assert policy["multi"] is False  # templated by one policy


def test_every_panel_has_a_unit_a_question_and_axis_labels() -> None:
    for uid, board in BOARDS.items():
        ids = [p["id"] for p in board["panels"]]
        assert ids == list(range(1, len(ids) + 1)), uid
        for panel in board["panels"]:
            if panel["type"] == "row":
                continue
            where = f"{uid} panel {panel['id']} {panel['title']!r}"
            defaults = panel["fieldConfig"]["defaults"]
            assert defaults.get("unit"), f"{where}: no unit"
            assert "?" in panel.get("description", ""), f"{where}: the description asks no question"
            assert panel["targets"], f"{where}: no query"
            assert [t["refId"] for t in panel["targets"]] == [chr(65 + i) for i in range(len(panel["targets"]))]
            if panel["type"] == "timeseries":
                assert defaults["custom"].get("axisLabel"), f"{where}: no axis label"


def test_multi_value_variables_are_matched_with_regex_only() -> None:
    for board in BOARDS.values():
        for q in expressions(board):
            for var in ("namespace", "policy", "service"):
                assert f'="${var}"' not in q.expr and f"!=\"${var}\"" not in q.expr, q


def test_every_query_names_only_exported_metrics() -> None:
    exported = exported_names()
    used: set[str] = set()
    for board in BOARDS.values():
        for q in expressions(board):
            names = metric_names(q.expr)
            assert names, f"{q.dashboard} {q.where}: selects no metric: {q.expr}"
            unknown = names - exported
            assert not unknown, f"{q.dashboard} {q.where}: not exported by casino/ or controller/: {unknown}"
            used |= names
    # The operator's and the casino's headline series are all on some dashboard.
    assert {"pitboss_operator_replica_seconds_total", "pitboss_operator_unserved_demand",
            "pitboss_operator_event_lead_seconds", "casino_tournament_entries_total"} <= used


def test_a_renamed_metric_is_caught() -> None:
    exported = exported_names()
    assert "casino_bets_total" in exported and "casino_bets" not in exported
    assert metric_names("sum(rate(casino_bets[5m]))") - exported == {"casino_bets"}


@pytest.mark.parametrize(("expr", "names"), [
    ('sum by (le, route) (rate(a_bucket{route!~"/x|y", le="0.25"}[$__rate_interval]))', {"a_bucket"}),
    ("histogram_quantile(0.99, sum by (le) (rate(b_bucket[5m:1m] offset 1h)))", {"b_bucket"}),
    ('(sum(rate(c_total{status=~"5.."}[1h])) or vector(0)) / sum(rate(c_total[1h]))', {"c_total"}),
    ("max by (event) (d) * on (namespace, policy) group_left (kind) e < time()", {"d", "e"}),
    ('label_replace(f, "pod", "$1", "instance", "(.*):.*") > 1e3 and g', {"f", "g"}),
])
def test_metric_names_skips_calls_labels_strings_and_durations(expr: str, names: set[str]) -> None:
    assert metric_names(expr) == names


def test_substitute_replaces_grafana_variables_and_names_unknown_ones() -> None:
    assert substitute('x{a=~"$namespace"}[${__rate_interval}]', {"namespace": "(a|b)", "__rate_interval": "1m"}) \
        == 'x{a=~"(a|b)"}[1m]'
    with pytest.raises(KeyError, match=r"\$policy"):
        substitute('x{p=~"$policy"}', {})
