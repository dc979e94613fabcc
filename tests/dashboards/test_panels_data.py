"""Every dashboard panel returns data from a real run scraped by a real Prometheus.

What runs, all on loopback, bounded and self-stopping:

* the local loop (``controller.local.run``, what ``pitboss demo`` runs): casino
  replicas started and stopped by the loop, a load generator replaying a
  trace with one tournament, the forecaster and the incident rules, its
  ``pitboss_operator_*`` metrics served on a port and its replicas listed in a
  ``file_sd`` file (namespace ``local``, policy ``casino``); maxReplicas is
  held at 2 so the tournament outgrows it (a ``CapacityCeiling`` incident);
* two more casino processes under a business workload: players registering,
  depositing, spinning, withdrawing and entering a tournament;
* the operator itself (``build_operator``, the production wiring, with
  leader election on a Lease) against the strict Kubernetes emulator, its
  demand read from this Prometheus, a read-replica block whose lagQuery
  stands in for postgres_exporter's ``pg_replication_lag``, incidents
  delivered to a real Alertmanager, its metrics endpoint scraped; its
  maxReplicas is raised mid-run so its ``CapacityCeiling`` resolves;
* Prometheus scraping everything every second.

Then every panel query, variable selector and annotation is evaluated over
the run's window with Grafana's variables substituted, and must return at
least one finite value. ``CLUSTER_ONLY`` is the reviewed allow-list of
panels that cannot have data here, with the reason for each (empty today).
"""

from __future__ import annotations

import json
import math
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from controller.local.run import RunConfig, run_local
from controller.operator.app import SourceFactory, build_incidents, build_operator
from controller.operator.clock import SystemClock
from controller.telemetry.metrics import serve
from dashboards.grafana import build
from dashboards.grafana.queries import expressions
from tests.dashboards.promql import run, values
from tests.harness import free_port, wait_until
from tests.kube.fixtures import NAMESPACE, api_client_for, create, deployment, scaling_policy, traffic_event

ADMIN = "dashboards-admin-token-0123456789abcdef"  # >= 32 characters
# (dashboard uid, panel title) -> why it cannot have data outside a cluster. Reviewed: keep it short.
CLUSTER_ONLY: dict[tuple[str, str], str] = {}


def _business(base_url: str, stop: threading.Event, errors: list[str]) -> None:
    """A few players doing everything the business dashboard shows, until ``stop`` (bounded: 400 requests)."""
    with httpx.Client(base_url=base_url, timeout=10) as c:
        now = datetime.now(UTC)
        event = {"name": "dashboards-cup", "kind": "tournament", "start": (now - timedelta(minutes=1)).isoformat(),
                 "end": (now + timedelta(hours=1)).isoformat()}
        tid = c.post("/v1/admin/events", json=event, headers={"Authorization": f"Bearer {ADMIN}"}) \
            .raise_for_status().json()["id"]
        for n in range(400):
            if stop.is_set():
                return
            i = n // 40
            body = {"username": f"dash{base_url[-5:]}p{i}", "password": "dashboards-password"}
            if n % 40 == 0:
                c.post("/v1/players", json=body).raise_for_status()
                token = c.post("/v1/sessions", json=body).raise_for_status().json()["token"]
                auth = {"Authorization": f"Bearer {token}"}
                c.post("/v1/wallet/deposits", json={"amount": 5000},
                       headers={**auth, "Idempotency-Key": f"d{i}"}).raise_for_status()
                c.post(f"/v1/tournaments/{tid}/entries", headers=auth).raise_for_status()
            elif n % 10 == 0:
                c.post("/v1/wallet/withdrawals", json={"amount": 10},
                       headers={**auth, "Idempotency-Key": f"w{n}"}).raise_for_status()
            else:
                response = c.post("/v1/games/slots/spins", json={"bet": 5},
                                  headers={**auth, "Idempotency-Key": f"s{n}"})
                if response.status_code not in (201, 409):
                    errors.append(f"spin: {response.status_code} {response.text[:100]}")
            time.sleep(0.1)


def _operator(kube: Any, prometheus_url: str, alertmanager_url: str, tmp: Path, stop: threading.Event,
              port: int, errors: list[str]) -> None:
    """The operator's loop against the emulator, one step a second, until ``stop``."""
    emu, url = kube
    api = api_client_for(url)
    create(api, deployment("casino", 1))
    create(api, deployment("pg-replica", 1, kind="StatefulSet", labels={"app": "pg"}))
    now = datetime.now(UTC)
    create(api, traffic_event("evening-cup", {"kind": "tournament", "start": (now + timedelta(seconds=20)).isoformat(),
                                              "end": (now + timedelta(minutes=30)).isoformat()}))
    spec = {
        "targetRef": {"kind": "Deployment", "name": "casino"},
        "metric": {"promql": 'sum(rate(casino_http_requests_total{service="casino"}[5s]))'},
        "capacityPerReplica": 2, "minReplicas": 1, "maxReplicas": 2, "leadTime": "10s",
        "forecast": {"model": "seasonal-naive", "step": "2s", "history": "1m", "horizon": "1m"},
        "databaseReplicas": {"targetRef": {"kind": "StatefulSet", "name": "pg-replica"}, "capacityPerReplica": 1000,
                             "maxReplicas": 3, "maxLagSeconds": 30,
                             "lagQuery": 'label_replace(vector(0.4), "pod", "pg-replica-0", "", "")'},
    }
    create(api, scaling_policy("casino", spec))
    sources = SourceFactory(prometheus_url)
    incidents = build_incidents(api, db=tmp / "operator-incidents.db", alertmanager_url=alertmanager_url,
                                sli=sources.sli, resend_interval=timedelta(seconds=5))
    op = build_operator(api, namespace=NAMESPACE, demand=sources, lag=sources.lag, clock=SystemClock(),
                        identity="dashboards-op", incidents=incidents)
    server = serve(op.metrics, port, host="127.0.0.1")
    raised = False
    try:
        while not stop.is_set():
            op.loop.step()
            firing = {i.alertname for i in incidents.engine.active.values()}
            if "CapacityCeiling" in firing and not raised:  # let it resolve: room for the demand
                spec["maxReplicas"] = 50
                emu.put_object({**scaling_policy("casino", spec)}, "scalingpolicies")
                raised = True
            stop.wait(1.0)
    except Exception as exc:  # surfaced by the test
        errors.append(f"operator: {exc!r}")
        raise
    finally:
        op.close()
        server.shutdown()
        server.server_close()


@pytest.mark.slow
@pytest.mark.prometheus
@pytest.mark.alertmanager
def test_every_panel_returns_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, prometheus_factory: Any,
                                  alertmanager_factory: Any, casino_factory: Any, kube: Any) -> None:
    monkeypatch.setenv("PITBOSS_CASINO_ADMIN_TOKEN", ADMIN)  # inherited by every casino process started here
    targets_file = tmp_path / "targets.json"
    targets_file.write_text("[]")
    local_port, operator_port = free_port(), free_port()
    alertmanager = alertmanager_factory()
    casinos = casino_factory(2)
    prometheus = prometheus_factory(scrape_configs=[
        {"job_name": "local", "file_sd_configs": [{"files": [str(targets_file)], "refresh_interval": "1s"}]},
        {"job_name": "business", "static_configs": [{"targets": [c.target for c in casinos],
                                                     "labels": {"namespace": "local", "service": "casino"}}]},
        {"job_name": "operator", "static_configs": [{"targets": [f"127.0.0.1:{operator_port}"]}]},
    ])
    start = time.time()
    stop = threading.Event()
    errors: list[str] = []
    workers = [threading.Thread(target=_business, args=(c.base_url, stop, errors), daemon=True) for c in casinos]
    workers.append(threading.Thread(target=_operator, args=(kube, prometheus.url, alertmanager.url, tmp_path, stop,
                                                            operator_port, errors), daemon=True))
    for worker in workers:
        worker.start()
    try:
        record = run_local(RunConfig(out=tmp_path / "demo", duration=75, speed=40, max_replicas=2,
                                     metrics_port=local_port, scrape_targets=targets_file))
    finally:
        time.sleep(3)  # the last scrapes
        # Instant queries are evaluated here, while the operator still serves /metrics: once an exporter stops,
        # Prometheus writes staleness markers and an instant query after them is empty (however loaded the machine).
        end = time.time()
        stop.set()
        for worker in workers:
            worker.join(60)
    assert not errors, errors
    assert record.cycles and any(c.scaled for c in record.cycles)
    subs = values(namespaces=("local", NAMESPACE), policies=("casino",), rate_interval="10s",
                  range_=f"{math.ceil(end - start)}s")

    def has_data(data: dict[str, Any]) -> bool:
        for series in data["result"]:
            points = series.get("values") or ([series["value"]] if "value" in series else [])
            if any(math.isfinite(float(v)) for _, v in points):
                return True
        return False

    empty, checked = [], 0
    with httpx.Client(timeout=60) as client:
        wait_until(lambda: has_data(run(client, prometheus.url, next(expressions(build.load_all()["pitboss-slo"])),
                                        subs, start=start, end=end)), timeout=30, what="the SLO panel's data")
        for uid, board in build.load_all().items():
            for query in expressions(board):
                data = run(client, prometheus.url, query, subs, start=start, end=end, step=1.0)
                checked += 1
                allowed = (uid, query.panel) in CLUSTER_ONLY
                if has_data(data) == allowed:
                    empty.append(f"{uid} {query.where}: {'has data but is allow-listed' if allowed else 'no data'}"
                                 f"\n  {query.expr}")
    assert checked > 60
    assert not empty, "\n".join(empty) + f"\n(targets: {json.dumps(json.loads(targets_file.read_text()))})"
