"""A 409 on /scale: the loop decides again from the fresh state instead of writing its stale count.

A human's ``kubectl scale`` lands between the operator's read of /scale and its
patch (the strict emulator's ``on_request`` hook runs ``write_scale`` just
before the PATCH is served), so the patch carries a stale resourceVersion and
meets a real 409. The official client over HTTP, a fake clock, demand replayed
from a flat trace (~300 req/s), the real ``calendar`` forecasts and ``decide``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from controller.operator.clock import FakeClock
from tests.controller.operator.harness import EVENT_START, TraceDemand, casino_trace, make_operator, policy_spec
from tests.kube.fixtures import NAMESPACE, create, deployment, scaling_policy

POLICIES = ("pitboss.dev/v1alpha1", "scalingpolicies")
FLAT = casino_trace(spikes=())


def test_a_human_scale_up_during_the_write_is_decided_again_not_overwritten(kube: Any, api: Any) -> None:
    emu, url = kube
    create(api, deployment("slots-api", 10))
    # ~300 req/s at 100 each needs 4; the step limit lets 10% go per decision: from 10 that is 9
    create(api, scaling_policy("slots", policy_spec(scaleDown={"stabilizationWindow": "5m", "maxStepPercent": 10})))
    emu.on_request("PATCH", r"/deployments/slots-api/scale$",
                   lambda: emu.write_scale("apps/v1", "deployments", NAMESPACE, "slots-api", 20))
    op = make_operator(url, FakeClock(EVENT_START - timedelta(hours=2)), TraceDemand(FLAT), leader_election=False)
    report = op.loop.step()
    assert report is not None
    patches = emu.requests("PATCH", r"/deployments/slots-api/scale$")
    assert [r.status for r in patches] == [409, 200]
    assert patches[0].body["spec"]["replicas"] == 9  # what the stale read (10) asked for
    # decided again from the human's 20: one 10% step down is 18, not the stale 9
    assert patches[1].body["spec"]["replicas"] == 18
    assert emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")["spec"]["replicas"] == 18
    status = emu.get(*POLICIES, NAMESPACE, "slots")["status"]
    assert status["currentReplicas"] == 18 and status["lastDecision"]["reason"] == "ScaleDownStep"
    assert "scaling 20 -> 18" in status["lastDecision"]["message"]
    scaled = [e for e in emu.list("v1", "events", NAMESPACE) if e["reason"] == "ScaleDownStep"]
    assert scaled and "20 -> 18" in scaled[-1]["message"]


def test_a_human_scale_of_the_read_replicas_during_the_write_is_respected(kube: Any, api: Any) -> None:
    emu, url = kube
    create(api, deployment("slots-api", 4))
    create(api, deployment("postgres-replica", 2, kind="StatefulSet", labels={"app": "pg"}))
    db = {"targetRef": {"kind": "StatefulSet", "name": "postgres-replica"}, "capacityPerReplica": 90,
          "maxReplicas": 8, "leadTime": "20m"}  # ~300 req/s of reads at 90 each: 4
    create(api, scaling_policy("slots", policy_spec(databaseReplicas=db)))
    emu.on_request("PATCH", r"/statefulsets/postgres-replica/scale$",
                   lambda: emu.write_scale("apps/v1", "statefulsets", NAMESPACE, "postgres-replica", 7))
    op = make_operator(url, FakeClock(EVENT_START - timedelta(hours=2)), TraceDemand(FLAT), leader_election=False)
    op.loop.step()
    patches = emu.requests("PATCH", r"/statefulsets/postgres-replica/scale$")
    assert [r.status for r in patches] == [409]  # 2 -> 4 met the human's 7: decided again, nothing to write
    assert emu.get("apps/v1", "statefulsets", NAMESPACE, "postgres-replica")["spec"]["replicas"] == 7
    status = emu.get(*POLICIES, NAMESPACE, "slots")["status"]
    assert status["databaseCurrentReplicas"] == 7 and status["databaseDesiredReplicas"] == 7
