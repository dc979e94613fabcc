"""charts/pitboss `operator.writeConcurrency`, `cacheMaxStale`, `statusMaxAge`: rendered as the operator's flags.

Through the real Helm engine (tests/charts/chart.py), like test_chart.py: the defaults render none of
them (the CLI's defaults apply), set values render the flag, the schema refuses bad values naming the
field, and `pitboss operator run` accepts what the chart renders.
"""

from __future__ import annotations

from typing import Any

import helm_python
import pytest
from typer.testing import CliRunner

from cli.app import app
from tests.charts.chart import CHART, NAMESPACE, find, render

FLAGS = ("--write-concurrency", "--cache-max-stale", "--status-max-age")
SET = {"operator": {"writeConcurrency": 16, "cacheMaxStale": "45s", "statusMaxAge": "2m"}}


def _args(docs: list[dict[str, Any]]) -> list[str]:
    return list(find(docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"])


def test_the_defaults_render_none_of_the_flags() -> None:
    assert not [a for a in _args(render()) if a.startswith(FLAGS)]


def test_set_values_render_their_flags() -> None:
    args = _args(render(SET))
    assert {"--write-concurrency=16", "--cache-max-stale=45s", "--status-max-age=2m"} <= set(args), args
    zero = _args(render({"operator": {"statusMaxAge": "0s", "cacheMaxStale": "0s"}}))
    assert {"--status-max-age=0s", "--cache-max-stale=0s"} <= set(zero), zero


@pytest.mark.parametrize(
    ("values", "field"),
    [
        ({"writeConcurrency": 0}, "/operator/writeConcurrency"),
        ({"writeConcurrency": 65}, "/operator/writeConcurrency"),
        ({"writeConcurrency": "eight"}, "/operator/writeConcurrency"),
        ({"cacheMaxStale": "-5s"}, "/operator/cacheMaxStale"),
        ({"statusMaxAge": "soon"}, "/operator/statusMaxAge"),
    ],
)
def test_the_schema_refuses_bad_values_naming_the_field(values: dict[str, Any], field: str) -> None:
    with helm_python.Chart.load(CHART) as chart, pytest.raises(helm_python.HelmValuesError) as info:
        chart.render({"operator": values}, name="pitboss", namespace=NAMESPACE)
    assert field in str(info.value), str(info.value)


def test_the_operator_accepts_the_rendered_flags() -> None:
    """The rendered flags pass `pitboss operator run`'s checks: the run gets as far as the kubeconfig."""
    rendered = [a for a in _args(render(SET)) if a.startswith((*FLAGS, "--sync-period"))]
    assert len(rendered) == 4, rendered
    result = CliRunner().invoke(app, ["operator", "run", "--once", *rendered, "--kubeconfig", "/nonexistent/kc"],
                                env={"KUBERNETES_SERVICE_HOST": ""})
    assert result.exit_code == 2 and "--kubeconfig" in result.stderr, result.output
