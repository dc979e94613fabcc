"""Burn-rate incidents per policy, from each policy's own SLI, through a real Prometheus.

Two services (tests/exporter_app.py processes with the casino metric contract, scraped by a
real Prometheus from tests/harness.py, told apart by their ``instance``); one has a 5xx burst.
The operator is wired as ``pitboss operator run`` wires it; Kubernetes is the strict emulator.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from controller.incidents.store import IncidentLog
from controller.operator.app import SourceFactory
from controller.operator.clock import SystemClock
from tests.controller.operator.harness import make_incident_operator
from tests.harness import wait_until
from tests.kube.fixtures import NAMESPACE, create, deployment, scaling_policy


def _policy(target: str, instance: str, *, slo: bool) -> dict[str, Any]:
    sel = f'instance="{instance}"'
    spec: dict[str, Any] = {
        "targetRef": {"kind": "Deployment", "name": target},
        "metric": {"promql": f"sum(rate(casino_http_requests_total{{{sel}}}[5s]))"},
        "capacityPerReplica": 100, "minReplicas": 1, "maxReplicas": 10, "leadTime": "10s",
        "forecast": {"model": "seasonal-naive", "step": "2s", "history": "1m", "horizon": "1m"},
    }
    if slo:
        window = "{{.window}}"
        spec["slo"] = {"availability": {
            "objective": 0.999,
            "errorRatioQuery": f'(sum(rate(casino_http_requests_total{{{sel},status=~"5.."}}[{window}])) or vector(0))'
                               f" / sum(rate(casino_http_requests_total{{{sel}}}[{window}]))",
        }}
    return spec


def _burns(db: Path) -> list[Any]:
    log = IncidentLog(db)
    try:
        return [i for i in log.incidents() if i.alertname == "ErrorBudgetBurn"]
    finally:
        log.close()


@pytest.mark.prometheus
def test_a_5xx_burst_pages_only_the_policy_whose_sli_names_that_service(
    kube: Any, api: Any, tmp_path: Path, exporter_factory: Any, prometheus_factory: Any,
) -> None:
    _, url = kube
    slots = exporter_factory(rate=200.0, error_share=0.5)  # the burst
    wallet = exporter_factory(rate=200.0)
    prometheus = prometheus_factory(targets=[slots.target, wallet.target])
    create(api, deployment("slots-api", 2))
    create(api, deployment("wallet-api", 2))
    create(api, scaling_policy("slots", _policy("slots-api", slots.target, slo=True)))
    create(api, scaling_policy("wallet", _policy("wallet-api", wallet.target, slo=True)))
    create(api, scaling_policy("slots-no-slo", _policy("slots-api", slots.target, slo=False)))
    sources = SourceFactory(prometheus.url)
    db = tmp_path / "incidents.db"
    op = make_incident_operator(url, SystemClock(), sources, db, sli=sources.sli, namespace=NAMESPACE)
    assert op.incidents is not None
    op.incidents.sli_interval = 1.0  # re-read the SLIs every second (a minute in production)
    try:
        def burning() -> bool:
            op.loop.step()
            found = bool(_burns(db))
            if not found:
                time.sleep(0.5)
            return found

        wait_until(burning, timeout=60, interval=0, what="ErrorBudgetBurn for the policy with the 5xx burst")
        for _ in range(4):  # more cycles with every SLI known: still only that one
            time.sleep(0.5)
            op.loop.step()
        burns = _burns(db)
        assert {i.labels["policy"] for i in burns} == {"slots"}
        assert {i.labels["slo"] for i in burns} == {"availability"} and {str(i.severity) for i in burns} >= {"page"}
        page = next(i for i in burns if i.labels["long_window"] == "1h")
        assert "objective 99.9%" in page.description and page.value is not None and page.value > 14.4
    finally:
        op.close()
