"""The ScalingPolicy ``slo`` block: validation naming the field, and no SLI for a policy without one."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from controller.operator.kube import PolicyObject
from controller.operator.resources import parse_policy_spec
from controller.operator.slo import PolicySLIFactory

BASE: dict[str, Any] = {"targetRef": {"kind": "Deployment", "name": "x"}, "metric": {"promql": "up"},
                        "capacityPerReplica": 10}
QUERY = 'sum(rate(http_requests_total{code=~"5.."}[{{.window}}])) / sum(rate(http_requests_total[{{.window}}]))'


@pytest.mark.parametrize(
    ("slo", "message"),
    [
        ({}, "spec.slo: set availability and/or latency"),
        ({"availability": {"objective": 0.999, "errorRatioQuery": "sum(rate(x[5m]))"}},
         "spec.slo.availability.errorRatioQuery: must contain the range placeholder {{.window}}"),
        ({"latency": {"objective": 1.0, "errorRatioQuery": QUERY}}, "spec.slo.latency.objective"),
        ({"latency": {"errorRatioQuery": QUERY}}, "spec.slo.latency.objective"),
        ({"availability": {"objective": 0.99, "errorRatioQuery": QUERY, "query": QUERY}},
         "spec.slo.availability.query"),
    ],
)
def test_bad_slo_blocks_name_the_field(slo: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}").replace(".", r"\.")):
        parse_policy_spec({**BASE, "slo": slo})


def test_queries_get_each_window_and_objectives_come_from_the_policy() -> None:
    spec = parse_policy_spec({**BASE, "slo": {"availability": {"objective": 0.995, "errorRatioQuery": QUERY}}})
    assert spec.slo is not None
    sli = spec.slo.slis()["availability"]
    assert sli.query(timedelta(minutes=5)) == QUERY.replace("{{.window}}", "5m")
    assert sli.query(timedelta(days=3)).endswith("[3d]))")
    assert [(o.name, o.objective) for o in spec.slo.objectives()] == [("availability", 0.995)]


class _Prometheus:
    """Stands in for PrometheusClient: records the queries (the real one is tested in test_slo_real.py)."""

    def __init__(self) -> None:
        self.queries: list[str] = []

    def query(self, expr: str, at: Any) -> list[tuple[dict[str, str], float]]:
        self.queries.append(expr)
        return [({}, 0.5)]


def test_no_slo_no_sli_and_no_prometheus_no_sli(caplog: pytest.LogCaptureFixture) -> None:
    policy = PolicyObject("casino", "slots", "uid-1", 1, {})
    without = parse_policy_spec(BASE)
    with_slo = parse_policy_spec({**BASE, "slo": {"latency": {"objective": 0.99, "errorRatioQuery": QUERY}}})
    prometheus = _Prometheus()
    assert PolicySLIFactory(prometheus)(policy, without) is None  # nothing built in for a policy that asked for none
    source = PolicySLIFactory(prometheus)(policy, with_slo)
    assert source is not None
    ratios = source.error_ratios(None, [timedelta(minutes=5), timedelta(hours=1)])  # type: ignore[arg-type]
    assert ratios == {"latency": {timedelta(minutes=5): 0.5, timedelta(hours=1): 0.5}}
    assert prometheus.queries == [QUERY.replace("{{.window}}", w) for w in ("5m", "1h")]
    assert PolicySLIFactory(None)(policy, with_slo) is None
    assert "needs the operator's --prometheus-url" in caplog.text
