"""The three writes of a pre-scaling policy (/scale, /status, an Event) on the emulator, without client models.

``call_json`` sends them through the official client's request path (auth,
headers, connection pool) but never turns a body or an answer into a model:
the test makes the client's deserializer fail, and every write must still
succeed, answer what the operator reads back, and map the API's errors
(409, 404, 403) as the typed calls did.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from kubernetes import client

from controller.operator.kube import KubernetesEventRecorder, KubernetesPolicyStore, PolicyObject
from controller.targets.base import ScaleConflict, TargetForbidden, TargetKey, TargetNotFound
from controller.targets.kubernetes import KubernetesScaleTarget
from tests.controller.operator.harness import policy_spec
from tests.kube.fixtures import NAMESPACE, create, deployment, scaling_policy

AT = datetime(2026, 11, 27, 19, 50, tzinfo=UTC)


def _policy(api: Any, monkeypatch: pytest.MonkeyPatch) -> PolicyObject:
    """A Deployment and its policy; from then on the client's answer deserializer (answer -> V1Scale,
    CoreV1Event, ...) raises if anything calls it."""
    create(api, deployment("slots-api", 4))
    raw = create(api, scaling_policy("slots", policy_spec(targetRef={"kind": "Deployment", "name": "slots-api"})))

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a write deserialized its answer into client models")

    monkeypatch.setattr(client.ApiClient, "deserialize", refuse)
    return PolicyObject.from_raw(raw)


def test_scale_status_and_event_are_written_without_client_models(kube: Any, api: Any,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    emu, _ = kube
    policy = _policy(api, monkeypatch)
    target = KubernetesScaleTarget(api, read_ready=False)
    key = TargetKey(NAMESPACE, "Deployment", "slots-api")
    before = emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")

    after = target.set_replicas(key, 9, before["metadata"]["resourceVersion"])
    stored = emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")
    assert stored["spec"]["replicas"] == 9
    assert (after.replicas, after.resource_version) == (9, stored["metadata"]["resourceVersion"])

    written = KubernetesPolicyStore(api).write_status(policy, {"desiredReplicas": 9, "currentReplicas": 4})
    assert written is not None
    assert written["status"]["desiredReplicas"] == 9
    assert written["metadata"]["resourceVersion"] == emu.get(
        "pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, "slots")["metadata"]["resourceVersion"]

    KubernetesEventRecorder(api, instance="pitboss-0").record(
        namespace=NAMESPACE, kind="ScalingPolicy", name="slots", event_type="Normal", reason="ScaleUpForecast",
        message="pre-scaled slots-api 4 -> 9", at=AT)
    (event,) = emu.list("v1", "events", NAMESPACE)
    assert (event["reason"], event["involvedObject"]["name"], event["count"]) == ("ScaleUpForecast", "slots", 1)


def test_the_writes_map_409_404_and_403_as_the_typed_calls_did(kube: Any, api: Any,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    emu, _ = kube
    policy = _policy(api, monkeypatch)
    target = KubernetesScaleTarget(api, read_ready=False)
    store = KubernetesPolicyStore(api)
    with pytest.raises(ScaleConflict):
        target.set_replicas(TargetKey(NAMESPACE, "Deployment", "slots-api"), 9, "1")  # a stale resourceVersion
    store.write_status(policy, {"desiredReplicas": 5})
    with pytest.raises(ScaleConflict):  # the same read again: its resourceVersion is stale now
        store.write_status(policy, {"desiredReplicas": 6})
    with pytest.raises(TargetNotFound):
        target.set_replicas(TargetKey(NAMESPACE, "Deployment", "gone-api"), 3)
    emu.deny("POST", r"/events$")
    recorder = KubernetesEventRecorder(api, instance="pitboss-0")
    with pytest.raises(TargetForbidden):
        recorder.record(namespace=NAMESPACE, kind="ScalingPolicy", name="slots", event_type="Normal",
                        reason="ScaleUpForecast", message="m", at=AT)
