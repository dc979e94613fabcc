"""The operator works with exactly the RBAC in manifests/base, and nothing less.

The strict emulator authorizes the operator's requests (bearer token
``system:serviceaccount:pitboss-system:pitboss-operator``) against the
ClusterRole and Role rendered by ``kubectl kustomize manifests/base``; the
test's own setup requests carry no token and are not restricted.
"""

from __future__ import annotations

import copy
from datetime import timedelta
from typing import Any

from kubernetes import client, watch

from controller.operator.clock import FakeClock
from tests.controller.operator.harness import EVENT_START, TraceDemand, make_operator, policy_spec, tournament_specs
from tests.kube.fixtures import NAMESPACE, create, deployment, scaling_policy, traffic_event
from tests.manifests.test_kustomize import render

TOKEN = "system:serviceaccount:pitboss-system:pitboss-operator"


def _roles() -> list[dict[str, Any]]:
    return [copy.deepcopy(d) for d in render("base") if d["kind"] in ("ClusterRole", "Role")]


def _setup(api: Any) -> None:
    create(api, deployment("slots-api", 4))
    create(api, deployment("postgres-replica", 1, kind="StatefulSet", labels={"app": "pg"}))
    spec = policy_spec(databaseReplicas={"targetRef": {"kind": "StatefulSet", "name": "postgres-replica"},
                                         "capacityPerReplica": 300, "readShare": 0.7, "maxReplicas": 5,
                                         "leadTime": "10m"})
    create(api, scaling_policy("slots", spec))
    create(api, scaling_policy("what-if", policy_spec(mode="ForecastOnly")))
    for name, event in tournament_specs():
        create(api, traffic_event(name, event, labels={"service": "slots"}))


def test_the_loop_needs_nothing_beyond_the_manifests_rbac(kube: Any, api: Any) -> None:
    emu, url = kube
    _setup(api)
    emu.enforce_rbac(TOKEN, _roles())
    clock = FakeClock(EVENT_START - timedelta(minutes=10) - timedelta(seconds=30))
    op = make_operator(url, clock, TraceDemand(), token=TOKEN)
    for _ in range(4):
        assert op.loop.step() is not None
        clock.advance(timedelta(seconds=15))
    forbidden = [r for r in emu.log if r.status == 403]
    assert forbidden == []
    assert emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")["spec"]["replicas"] >= 11
    assert emu.get("apps/v1", "statefulsets", NAMESPACE, "postgres-replica")["spec"]["replicas"] >= 2
    assert any(e["reason"] == "ScaleUpForecast" for e in emu.list("v1", "events", NAMESPACE))
    # The watches the loop opens are allowed too.
    custom = client.CustomObjectsApi(op.api_client)
    for plural in ("scalingpolicies", "trafficevents"):
        list(watch.Watch().stream(custom.list_cluster_custom_object, "pitboss.dev", "v1alpha1", plural,
                                  timeout_seconds=1))
    op.elector.release()  # type: ignore[union-attr]
    assert [r for r in emu.log if r.status == 403] == []


def test_without_patch_on_scale_the_policy_reports_forbidden(kube: Any, api: Any) -> None:
    emu, url = kube
    _setup(api)
    roles = _roles()
    for role in roles:
        for rule in role["rules"]:
            if "deployments/scale" in rule["resources"]:
                rule["verbs"] = ["get"]
    emu.enforce_rbac(TOKEN, roles)
    clock = FakeClock(EVENT_START - timedelta(minutes=9))
    op = make_operator(url, clock, TraceDemand(), token=TOKEN)
    report = op.loop.step()
    assert report is not None
    outcome = {o.name: o for o in report.outcomes}["slots"]
    assert outcome.reason == "Forbidden" and not outcome.scaled
    status = emu.get("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, "slots")["status"]
    able = {c["type"]: c for c in status["conditions"]}["AbleToScale"]
    assert able["status"] == "False" and "403" in able["message"]
    assert emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")["spec"]["replicas"] == 4
