"""Send dashboard queries to a real Prometheus, with Grafana's variables substituted as Grafana would.

``VALUES`` are the variables' values for the tests: the local run's and the
emulated cluster's namespaces as a multi-value regex, one policy, the casino
service, and the interval variables Grafana computes ($__rate_interval,
$__interval, $__range). Used by test_promql.py and test_panels_data.py.
"""

from __future__ import annotations

from typing import Any

import httpx

from dashboards.grafana.queries import Query, substitute


def values(*, namespaces: tuple[str, ...] = ("local", "casino"), policies: tuple[str, ...] = ("casino",),
           rate_interval: str = "15s", range_: str = "5m") -> dict[str, str]:
    """Grafana's substitutions: a multi-value variable becomes ``(a|b)``, as Grafana formats it for regexes."""
    return {
        "namespace": "(" + "|".join(namespaces) + ")",
        "policy": "(" + "|".join(policies) + ")",
        "service": "(casino)",
        "__rate_interval": rate_interval,
        "__interval": "5s",
        "__range": range_,
    }


def run(client: httpx.Client, base: str, query: Query, subs: dict[str, str], *, start: float, end: float,
        step: float = 2.0) -> dict[str, Any]:
    """The query's answer: instant at ``end`` or range over [start, end]; raises AssertionError naming it."""
    expr = substitute(query.expr, subs)
    if query.instant:
        response = client.get(f"{base}/api/v1/query", params={"query": expr, "time": end})
    else:
        response = client.get(f"{base}/api/v1/query_range",
                              params={"query": expr, "start": start, "end": end, "step": step})
    body = response.json()
    assert response.status_code == 200 and body.get("status") == "success", \
        f"{query.dashboard} {query.where}: Prometheus says {body.get('errorType')}: {body.get('error')}\n  {expr}"
    data: dict[str, Any] = body["data"]
    return data
