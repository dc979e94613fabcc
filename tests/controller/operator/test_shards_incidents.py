"""A shard that moves between live replicas hands its incidents off: no resolve, no flap, no second Warning.

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


def _events(emu: StrictKubernetesEmulator, name: str, reason: str = f"{ALERT}Resolved") -> list[dict[str, Any]]:
    return [e for e in emu.list("v1", "events", NAMESPACE)
            if e["reason"] == reason and e["involvedObject"]["name"] == name]


def _log_state(db: Path, name: str) -> str | None:
    log = IncidentLog(db)
    try:
        states = [i.state for i in log.incidents() if i.alertname == ALERT and i.labels.get("policy") == name]
    finally:
        log.close()
    return states[0] if states else None


@pytest.mark.alertmanager
def test_a_shard_handed_to_a_joining_replica_keeps_its_alert_firing_announced_once_and_a_deleted_policy_resolves(
    kube: Any, api: Any, tmp_path: Path, alertmanager: Any,
) -> None:
    """a holds both shards and fires one alert per policy; b joins, a releases one shard to it.

    a lives on with the other shard, so its next complete cycle no longer owns the moved shard's
    policy: that policy still exists, so a must drop it without a resolve (b carries it on, and
    Alertmanager must see one continuous alert: no poll without it, no ``...Resolved`` Event, and
    a's log says ``handed_off``, not resolved). b adopts the alert a announced (from Alertmanager)
    instead of announcing it again: one Warning Event for it, a's, and the alert keeps a's
    ``startsAt``. Deleting the kept shard's policy still resolves its alert.
    """
    from kubernetes import client

    emu, url = kube
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    demand = TraceDemand()
    demand.default = Outage(TraceSource(casino_trace(end=now + timedelta(hours=3), spikes=())))
    demand.default.down = True
    by_shard = {0: _policy_in_shard(api, 0, "zero"), 1: _policy_in_shard(api, 1, "one")}
    lease, resend = timedelta(seconds=3), timedelta(seconds=3)

    def operator(name: str) -> Operator:
        return make_incident_operator(url, SystemClock(), demand, tmp_path / f"{name}.db", identity=name,
                                      leader_election=True, alertmanager_url=alertmanager.url, lease_duration=lease,
                                      resend_interval=resend, shards=2, token=f"token-{name}")

    a = operator("op-a")
    am = AlertmanagerClient(alertmanager.url, timeout=timedelta(seconds=1))

    def alerts(name: str) -> list[dict[str, Any]]:
        return am.alerts(filters=[f'policy="{name}"', f'alertname="{ALERT}"'])

    seen: dict[str, list[bool]] = {name: [] for name in by_shard.values()}
    stop = threading.Event()

    def poll() -> None:
        while not stop.is_set():
            for name, polls in seen.items():
                with contextlib.suppress(Exception):  # a failed poll is not an observation
                    polls.append(bool(alerts(name)))
            stop.wait(0.2)

    poller = threading.Thread(target=poll, daemon=True)
    b: Operator | None = None
    try:
        assert a.elector is not None
        # a alone first: one shard in its first lease duration, both after it.
        wait_until(lambda: a.loop.step() is not None and a.elector is not None and a.elector.held() == {0, 1},
                   timeout=15, interval=0.5, what="a holds both shards")
        wait_until(lambda: a.loop.step() is not None and all(alerts(n) for n in by_shard.values()), timeout=20,
                   interval=0.5, what="a's alerts in Alertmanager")
        starts = {n: alerts(n)[0]["startsAt"] for n in by_shard.values()}
        wait_until(lambda: all(_events(emu, n, ALERT) for n in by_shard.values()), timeout=10, interval=0.3,
                   what="a's Warning Events")
        poller.start()
        b = operator("op-b")  # joins: its membership Lease shows it to a, whose quota drops to one shard

        def b_took_a_shard() -> bool:
            assert b is not None and b.elector is not None
            b.loop.step()
            a.loop.step()
            return len(b.elector.held()) == 1

        wait_until(b_took_a_shard, timeout=20, interval=0.5, what="b takes a shard from a")
        assert b.elector is not None
        ((shard,),) = (b.elector.held(),)
        moved, kept = by_shard[shard], by_shard[1 - shard]
        assert a.elector.held() == {1 - shard}
        for _ in range(int(3 * resend.total_seconds() / 0.5)):  # both go on with three resend intervals of cycles
            time.sleep(0.5)
            a.loop.step()
            b.loop.step()
        stop.set()
        poller.join(5)
        for name, polls in seen.items():
            assert len(polls) > 20 and all(polls), f"Alertmanager lost {name}'s alert {polls.count(False)} time(s)"
        assert _events(emu, moved) == []
        assert _log_state(tmp_path / "op-a.db", moved) == "handed_off"
        assert _log_state(tmp_path / "op-b.db", moved) == "firing"
        # Announced once: b took a's alert over instead of raising it anew.
        warnings = _events(emu, moved, ALERT)
        assert [e["reportingInstance"] for e in warnings] == ["op-a"], warnings
        assert b.incidents is not None and b.incidents.adopted == 1
        assert alerts(moved)[0]["startsAt"] == starts[moved]
        # A deleted policy still resolves: a's next complete cycle ends kept's alert.
        client.CustomObjectsApi(api).delete_namespaced_custom_object(
            "pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies", kept)
        wait_until(lambda: a.loop.step() is not None and not alerts(kept), timeout=20, interval=0.5,
                   what="the deleted policy's resolve in Alertmanager")
        wait_until(lambda: _events(emu, kept), timeout=10, interval=0.3, what="a's Resolved Event")
        assert _log_state(tmp_path / "op-a.db", kept) == "resolved"
        assert alerts(moved)
    finally:
        stop.set()
        am.close()
        a.close()
        if b is not None:
            b.close()
