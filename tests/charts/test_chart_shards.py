"""charts/pitboss `operator.shards`: rendered as `--shards`, bounded by the schema, Leases granted by RBAC.

Through the real Helm engine (tests/charts/chart.py), like test_chart.py.
"""

from __future__ import annotations

from typing import Any

import helm_python
import pytest

from controller.operator.shards import MAX_SHARDS, shard_lease_name
from tests.charts.chart import CHART, NAMESPACE, find, render


def _args(docs: list[dict[str, Any]]) -> list[str]:
    return list(find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"])


def test_one_shard_renders_no_flag_and_three_render_it() -> None:
    assert not [a for a in _args(render()) if a.startswith("--shards")]
    assert "--shards=3" in _args(render({"operator": {"shards": 3, "replicas": 3}}))


@pytest.mark.parametrize("bad", [0, MAX_SHARDS + 1, "three"])
def test_the_schema_refuses_a_bad_shard_count_naming_the_field(bad: Any) -> None:
    with helm_python.Chart.load(CHART) as chart, pytest.raises(helm_python.HelmValuesError) as info:
        chart.render({"operator": {"shards": bad}}, name="pitboss", namespace=NAMESPACE)
    assert "/operator/shards" in str(info.value), str(info.value)


def test_the_leader_election_role_grants_every_shard_lease() -> None:
    docs = render({"operator": {"shards": MAX_SHARDS}})
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"].endswith("-leader-election"))
    names = {n for rule in role["rules"] for n in rule.get("resourceNames") or []}
    assert {shard_lease_name("pitboss-operator", i, MAX_SHARDS) for i in range(MAX_SHARDS)} <= names
