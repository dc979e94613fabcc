"""Every PromQL expression of every dashboard is valid for a real Prometheus (Debian's, started by the harness).

Each panel query, variable selector and annotation is sent with Grafana's
variables substituted, as a range query (instant ones as instant queries);
Prometheus' parser and type checker answer 400 bad_data for anything wrong.
The data itself is tested in test_panels_data.py.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest

from dashboards.grafana import build
from dashboards.grafana.queries import Query, expressions
from tests.dashboards.promql import run, values

QUERIES = [q for text in build.build_all().values() for q in expressions(json.loads(text))]


@pytest.mark.prometheus
def test_every_dashboard_query_is_valid_promql(prometheus_factory: Any) -> None:
    prometheus = prometheus_factory()
    now = time.time()
    with httpx.Client(timeout=30) as client:
        for query in QUERIES:
            run(client, prometheus.url, query, values(), start=now - 600, end=now, step=15)
        # and the check can fail: Prometheus rejects a broken expression
        broken = Query("x", "panel 0 'broken' A", "broken", 'sum by (le (rate(x[5m]))')
        with pytest.raises(AssertionError, match="bad_data"):
            run(client, prometheus.url, broken, values(), start=now - 600, end=now)
    assert len(QUERIES) > 60
