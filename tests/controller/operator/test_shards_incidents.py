"""A shard that moves between live replicas hands its incidents off: no resolve, no flap.

Two ``--shards 2`` operators wired as ``pitboss operator run`` wires them (SQLite log, Kubernetes
Events, Alertmanager API v2, delivery on the background thread) on the strict emulator, with a
real Alertmanager (Debian's binary, tests/harness.py) and the real clock (Alertmanager expires
alerts by its own). Demand comes from a trace switched off (an outage), so every policy fires
``MetricsUnavailable``.
"""

from __future__ import annotations

import contextlib
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.incidents.alertmanager import AlertmanagerClient
from controller.incidents.store import IncidentLog
from controller.operator.app import Operator
from controller.operator.clock import SystemClock
from controller.operator.shards import shard_of
from controller.sources.trace import TraceSource
from tests.controller.operator.harness import Outage, TraceDemand, casino_trace, make_incident_operator, policy_spec
from tests.harness import wait_until
from tests.kube.emulator import StrictKubernetesEmulator
from tests.kube.fixtures import NAMESPACE, create, deployment, scaling_policy

ALERT = "MetricsUnavailable"


def _policy_in_shard(api: Any, shard: int, prefix: str) -> str:
    """Create policies (each with its own Deployment) until one's uid hashes to ``shard`` of 2."""
    from kubernetes import client

    custom = client.CustomObjectsApi(api)
    for i in range(64):  # each try lands in the shard with probability 1/2
        name = f"{prefix}-{i}"
        spec = policy_spec(targetRef={"apiVersion": "apps/v1", "kind": "Deployment", "name": f"{name}-api"},
                           forecast={"model": "seasonal-naive", "step": "1m", "history": "3d", "horizon": "1h"})
        created = create(api, scaling_policy(name, spec))
        if shard_of(created["metadata"]["uid"], 2) == shard:
            create(api, deployment(f"{name}-api", 3))
            return name
        custom.delete_namespaced_custom_object("pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies", name)
    raise AssertionError(f"no policy uid hashed to shard {shard} in 64 tries")


def _roles_without_renewing(lease: str) -> list[dict[str, Any]]:
    """The manifests' Roles, with ``lease`` readable but no longer writable (as if its renewals failed)."""
    from tests.controller.operator.test_rbac import _roles

    roles = _roles()
    for role in roles:
        rules = role.get("rules") or []
        for rule in list(rules):
            names = rule.get("resourceNames") or []
            if lease in names and "update" in rule.get("verbs", []):
                rule["resourceNames"] = [n for n in names if n != lease]
                rules.append({"apiGroups": rule["apiGroups"], "resources": rule["resources"],
                              "resourceNames": [lease], "verbs": ["get"]})
    return roles


def _resolved_events(emu: StrictKubernetesEmulator, name: str) -> list[dict[str, Any]]:
    return [e for e in emu.list("v1", "events", NAMESPACE)
            if e["reason"] == f"{ALERT}Resolved" and e["involvedObject"]["name"] == name]


def _log_state(db: Path, name: str) -> str | None:
    log = IncidentLog(db)
    try:
        states = [i.state for i in log.incidents() if i.alertname == ALERT and i.labels.get("policy") == name]
    finally:
        log.close()
    return states[0] if states else None


@pytest.mark.alertmanager
def test_a_shard_taken_from_a_live_replica_keeps_its_alert_firing_and_a_deleted_policy_resolves(
    kube: Any, api: Any, tmp_path: Path, alertmanager: Any,
) -> None:
    """a holds both shards and fires one alert per policy; its renewals of shard 1 then fail, b takes it.

    (The failure is a's token losing the right to update that one Lease: the emulator enforces
    the manifests' RBAC per token, so b's writes of it still go through.)

    a lives on with shard 0, so its next complete cycle no longer owns shard 1's policy: that
    policy still exists, so a must drop it without a resolve (b re-raises it, and Alertmanager
    must see one continuous alert: no poll without it, no ``...Resolved`` Event, and a's log says
    ``handed_off``, not resolved). Deleting shard 0's policy still resolves its alert.
    """
    from kubernetes import client

    emu, url = kube
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    demand = TraceDemand()
    demand.default = Outage(TraceSource(casino_trace(end=now + timedelta(hours=3), spikes=())))
    demand.default.down = True
    kept, moved = _policy_in_shard(api, 0, "kept"), _policy_in_shard(api, 1, "moved")
    lease, resend = timedelta(seconds=3), timedelta(seconds=3)

    def operator(name: str) -> Operator:
        return make_incident_operator(url, SystemClock(), demand, tmp_path / f"{name}.db", identity=name,
                                      leader_election=True, alertmanager_url=alertmanager.url, lease_duration=lease,
                                      resend_interval=resend, shards=2, token=f"token-{name}")

    a, b = operator("op-a"), operator("op-b")
    am = AlertmanagerClient(alertmanager.url, timeout=timedelta(seconds=1))

    def firing(name: str) -> bool:
        return bool(am.alerts(filters=[f'policy="{name}"', f'alertname="{ALERT}"']))

    seen: list[bool] = []
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            with contextlib.suppress(Exception):  # a failed poll is not an observation
                seen.append(firing(moved))
            stop.wait(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    try:
        assert a.elector is not None and b.elector is not None
        # a alone first: one shard in its first lease duration, both after it.
        wait_until(lambda: a.loop.step() is not None and a.elector is not None and a.elector.held() == {0, 1},
                   timeout=15, interval=0.5, what="a holds both shards")
        assert b.loop.step() is None  # b is live but finds no free shard
        wait_until(lambda: a.loop.step() is not None and firing(kept) and firing(moved), timeout=20,
                   interval=0.5, what="a's alerts in Alertmanager")
        poller.start()
        # a cannot renew shard 1 any more (403 on its writes of that Lease only); it keeps shard 0.
        emu.enforce_rbac("token-op-a", _roles_without_renewing("pitboss-operator-shard-1"))

        def b_took_shard_1() -> bool:
            a.loop.step()
            b.loop.step()
            return b.elector is not None and b.elector.held() == {1}

        wait_until(b_took_shard_1, timeout=20, interval=0.5, what="b takes shard 1 from a")
        assert a.elector.held() == {0}
        for _ in range(int(3 * resend.total_seconds() / 0.5)):  # both go on with three resend intervals of cycles
            time.sleep(0.5)
            a.loop.step()
            b.loop.step()
        stop.set()
        poller.join(5)
        assert len(seen) > 20 and all(seen), f"Alertmanager lost {moved}'s alert {seen.count(False)} time(s)"
        assert _resolved_events(emu, moved) == []
        assert _log_state(tmp_path / "op-a.db", moved) == "handed_off"
        assert _log_state(tmp_path / "op-b.db", moved) == "firing"
        # A deleted policy still resolves: a's next complete cycle ends kept's alert.
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            "pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies", kept)
        wait_until(lambda: a.loop.step() is not None and not firing(kept), timeout=20, interval=0.5,
                   what="the deleted policy's resolve in Alertmanager")
        wait_until(lambda: _resolved_events(emu, kept), timeout=10, interval=0.3, what="a's Resolved Event")
        assert _log_state(tmp_path / "op-a.db", kept) == "resolved"
        assert firing(moved)
    finally:
        stop.set()
        am.close()
        a.close()
        b.close()
