"""Each strictness of the emulator, proven through the official client over HTTP.

kmock's plain KubernetesEmulator is lax in every one of these ways (see the
module docstring of tests/kube/emulator/__init__.py); these tests pin down the
behaviour of a real API server that our operator relies on.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.kube.fixtures import NAMESPACE, create, deployment, scaling_policy

MERGE = "application/merge-patch+json"
G, V, P = "pitboss.dev", "v1alpha1", "scalingpolicies"


def _apps(api: Any) -> client.AppsV1Api:
    return client.AppsV1Api(api)


def _custom(api: Any) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(api)


def _policy(api: Any, name: str = "p") -> dict[str, Any]:
    return create(api, scaling_policy(name, {"capacityPerReplica": 10, "targetRef": {"kind": "Deployment", "name": "x"},
                                             "metric": {"promql": "up"}}))


def test_resource_version_uid_and_noop_writes(api: Any) -> None:
    created = create(api, deployment("web", 2))
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"] and int(meta["resourceVersion"]) > 0
    apps = _apps(api)
    same = apps.patch_namespaced_deployment("web", NAMESPACE, {"spec": {"replicas": 2}})
    assert same.metadata.resource_version == meta["resourceVersion"]  # a no-op write changes nothing
    changed = apps.patch_namespaced_deployment("web", NAMESPACE, {"spec": {"replicas": 3}})
    assert int(changed.metadata.resource_version) > int(meta["resourceVersion"])
    assert changed.metadata.uid == meta["uid"]


def test_generation_moves_on_spec_changes_only(api: Any) -> None:
    custom = _custom(api)
    assert _policy(api)["metadata"]["generation"] == 1
    labelled = custom.patch_namespaced_custom_object(G, V, NAMESPACE, P, "p", {"metadata": {"labels": {"a": "b"}}},
                                                     _content_type=MERGE)
    assert labelled["metadata"]["generation"] == 1
    status = custom.patch_namespaced_custom_object_status(G, V, NAMESPACE, P, "p", {"status": {"mode": "Active"}},
                                                          _content_type=MERGE)
    assert status["metadata"]["generation"] == 1
    spec = custom.patch_namespaced_custom_object(G, V, NAMESPACE, P, "p", {"spec": {"maxReplicas": 9}},
                                                 _content_type=MERGE)
    assert spec["metadata"]["generation"] == 2


def test_stale_resource_version_is_a_409(api: Any) -> None:
    created = create(api, deployment("web", 2))
    stale = created["metadata"]["resourceVersion"]
    apps = _apps(api)
    apps.patch_namespaced_deployment("web", NAMESPACE, {"spec": {"replicas": 5}})
    with pytest.raises(ApiException) as patch_err:
        apps.patch_namespaced_deployment("web", NAMESPACE,
                                         {"metadata": {"resourceVersion": stale}, "spec": {"replicas": 7}})
    assert patch_err.value.status == 409
    body = apps.read_namespaced_deployment("web", NAMESPACE)
    body.metadata.resource_version = stale
    with pytest.raises(ApiException) as put_err:
        apps.replace_namespaced_deployment("web", NAMESPACE, body)
    assert put_err.value.status == 409
    assert apps.read_namespaced_deployment("web", NAMESPACE).spec.replicas == 5


def test_duplicate_create_is_a_409(api: Any) -> None:
    create(api, deployment("web", 2))
    with pytest.raises(ApiException) as err:
        create(api, deployment("web", 3))
    assert err.value.status == 409


def test_put_replaces_objects(api: Any) -> None:
    create(api, deployment("web", 2))
    apps = _apps(api)
    body = apps.read_namespaced_deployment("web", NAMESPACE)
    body.spec.replicas = 6
    body.metadata.labels = {"app": "web", "tier": "front"}
    replaced = apps.replace_namespaced_deployment("web", NAMESPACE, body)
    assert replaced.spec.replicas == 6 and replaced.metadata.labels["tier"] == "front"


def test_scale_subresource_is_an_autoscaling_v1_scale(api: Any) -> None:
    create(api, deployment("web", 2))
    apps = _apps(api)
    scale = apps.read_namespaced_deployment_scale("web", NAMESPACE)
    assert scale.kind == "Scale" and scale.api_version == "autoscaling/v1"
    assert scale.spec.replicas == 2 and scale.status.selector == "app=web"
    patched = apps.patch_namespaced_deployment_scale("web", NAMESPACE, {"spec": {"replicas": 4}})
    assert patched.kind == "Scale" and patched.spec.replicas == 4
    assert apps.read_namespaced_deployment("web", NAMESPACE).spec.replicas == 4
    scale = apps.read_namespaced_deployment_scale("web", NAMESPACE)
    scale.spec.replicas = 7
    apps.replace_namespaced_deployment_scale("web", NAMESPACE, scale)
    dep = apps.read_namespaced_deployment("web", NAMESPACE)
    assert dep.spec.replicas == 7 and dep.metadata.generation == 3
    with pytest.raises(ApiException) as err:  # the scale carries the resourceVersion precondition too
        apps.replace_namespaced_deployment_scale("web", NAMESPACE, scale)
    assert err.value.status == 409
    create(api, deployment("db", 1, kind="StatefulSet"))
    assert apps.read_namespaced_stateful_set_scale("db", NAMESPACE).spec.replicas == 1


def test_status_is_isolated_from_spec_both_ways(api: Any) -> None:
    custom = _custom(api)
    _policy(api)
    custom.patch_namespaced_custom_object(G, V, NAMESPACE, P, "p",
                                          {"spec": {"maxReplicas": 5}, "status": {"mode": "Sneaky"}},
                                          _content_type=MERGE)
    obj = custom.get_namespaced_custom_object(G, V, NAMESPACE, P, "p")
    assert obj["spec"]["maxReplicas"] == 5 and "status" not in obj
    custom.patch_namespaced_custom_object_status(G, V, NAMESPACE, P, "p",
                                                 {"spec": {"maxReplicas": 1}, "status": {"mode": "Active"}},
                                                 _content_type=MERGE)
    obj = custom.get_namespaced_custom_object(G, V, NAMESPACE, P, "p")
    assert obj["spec"]["maxReplicas"] == 5 and obj["status"] == {"mode": "Active"}
    # status sent on create is dropped as well
    created = create(api, {**scaling_policy("q", obj["spec"]), "status": {"mode": "Forged"}})
    assert "status" not in created


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=front", {"a"}),
        ("tier==front", {"a"}),
        ("tier!=front", {"b", "c"}),
        ("tier in (front,back)", {"a", "b"}),
        ("tier notin (front)", {"b", "c"}),
        ("tier", {"a", "b"}),
        ("!tier", {"c"}),
        ("tier=back,env=prod", {"b"}),
        ("", {"a", "b", "c"}),
    ],
)
def test_label_selectors_filter_lists(api: Any, selector: str, expected: set[str]) -> None:
    for name, labels in (("a", {"tier": "front"}), ("b", {"tier": "back", "env": "prod"}), ("c", {"env": "dev"})):
        create(api, deployment(name, 1, labels=labels))
    items = _apps(api).list_namespaced_deployment(NAMESPACE, label_selector=selector).items
    assert {d.metadata.name for d in items} == expected


def test_malformed_label_selector_is_a_400(api: Any) -> None:
    with pytest.raises(ApiException) as err:
        _apps(api).list_namespaced_deployment(NAMESPACE, label_selector="tier in front")
    assert err.value.status == 400


def test_strategic_merge_on_a_custom_resource_is_a_415(api: Any) -> None:
    _policy(api)
    with pytest.raises(ApiException) as err:
        _custom(api).patch_namespaced_custom_object(G, V, NAMESPACE, P, "p", {"spec": {"maxReplicas": 3}},
                                                    _content_type="application/strategic-merge-patch+json")
    assert err.value.status == 415


def test_namespaces_are_cluster_scoped_and_listable(api: Any) -> None:
    names = {n.metadata.name for n in client.CoreV1Api(api).list_namespace().items}
    assert {"casino", "pitboss-system"} <= names
    assert client.CoreV1Api(api).read_namespace("casino").metadata.name == "casino"


def test_unknown_resources_404_and_denied_verbs_403(kube: Any, api: Any) -> None:
    emu, _ = kube
    with pytest.raises(ApiException) as missing:
        _custom(api).list_namespaced_custom_object("example.com", "v1", NAMESPACE, "widgets")
    assert missing.value.status == 404
    create(api, deployment("web", 2))
    emu.deny("PATCH", r"/deployments/web/scale$")
    with pytest.raises(ApiException) as denied:
        _apps(api).patch_namespaced_deployment_scale("web", NAMESPACE, {"spec": {"replicas": 3}})
    assert denied.value.status == 403


def test_watch_resumes_after_a_resource_version_and_honours_timeouts(api: Any) -> None:
    created = create(api, deployment("web", 1))
    since = created["metadata"]["resourceVersion"]
    apps = _apps(api)
    apps.patch_namespaced_deployment("web", NAMESPACE, {"spec": {"replicas": 2}})
    create(api, deployment("other", 1, labels={"app": "other"}))
    t0 = time.monotonic()
    events = [
        (e["type"], e["raw_object"]["metadata"]["name"])
        for e in watch.Watch().stream(apps.list_namespaced_deployment, NAMESPACE, resource_version=since,
                                      label_selector="app=web", timeout_seconds=1)
    ]
    assert events == [("MODIFIED", "web")]  # only what happened after `since`, only what the selector matches
    assert time.monotonic() - t0 < 5


def test_watch_from_a_compacted_resource_version_is_410_gone(kube: Any, api: Any) -> None:
    emu, _ = kube
    emu.event_log_size = 3
    first = create(api, deployment("web", 1))["metadata"]["resourceVersion"]
    emu._events.clear()  # start a fresh, small log (the emulator keeps a bounded history, like etcd compaction)
    for replicas in range(2, 8):
        _apps(api).patch_namespaced_deployment("web", NAMESPACE, {"spec": {"replicas": replicas}})
    with pytest.raises(ApiException) as err:
        list(watch.Watch().stream(_apps(api).list_namespaced_deployment, NAMESPACE, resource_version=first,
                                  timeout_seconds=1))
    assert err.value.status == 410


def test_a_watch_asked_for_bookmarks_ends_with_one_at_the_current_resource_version(kube: Any, api: Any) -> None:
    emu, _ = kube
    since = create(api, deployment("web", 1))["metadata"]["resourceVersion"]
    emu.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "other"}}, "namespaces")
    apps = _apps(api)
    kinds = [(e["type"], e["raw_object"]["metadata"]["resourceVersion"])
             for e in watch.Watch().stream(apps.list_namespaced_deployment, NAMESPACE, resource_version=since,
                                           allow_watch_bookmarks=True, timeout_seconds=1)]
    assert kinds == [("BOOKMARK", str(emu._rv))]  # no Deployment event; the Namespace moved the counter
    plain = list(watch.Watch().stream(apps.list_namespaced_deployment, NAMESPACE, resource_version=since,
                                      timeout_seconds=1))
    assert plain == []  # not asked for: none


def test_a_running_watch_that_falls_behind_the_event_log_ends_with_410() -> None:
    """More writes between two polls of a running watch than the log keeps: ERROR 410, not a silent gap."""
    import threading

    from tests.kube.emulator import EmulatorThread
    from tests.kube.fixtures import api_client_for, served

    thread = EmulatorThread()
    running = served(thread)
    emu, url = next(running)
    emu.event_log_size = 3
    api = api_client_for(url)
    try:
        since = create(api, deployment("web", 1))["metadata"]["resourceVersion"]
        done = threading.Event()

        def burst() -> None:  # on the emulator's own loop: the watch cannot poll in between
            for replicas in range(2, 8):
                emu.write_scale("apps/v1", "deployments", NAMESPACE, "web", replicas)
            done.set()

        def later() -> None:
            time.sleep(0.3)  # the watch is running and has sent nothing yet
            thread.loop.call_soon_threadsafe(burst)

        threading.Thread(target=later, daemon=True).start()
        with pytest.raises(ApiException) as err:
            list(watch.Watch().stream(_apps(api).list_namespaced_deployment, NAMESPACE, resource_version=since,
                                      timeout_seconds=3))
        assert done.is_set() and err.value.status == 410
    finally:
        api.close()
        running.close()


def test_rbac_enforcement_honours_verbs_resource_names_and_role_namespaces(kube: Any) -> None:
    from tests.kube.fixtures import SYSTEM_NAMESPACE, api_client_for

    emu, url = kube
    emu.enforce_rbac("sa", [
        {"kind": "ClusterRole", "rules": [{"apiGroups": ["apps"], "resources": ["deployments/scale"],
                                           "verbs": ["get"]}]},
        {"kind": "Role", "metadata": {"namespace": SYSTEM_NAMESPACE},
         "rules": [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get"],
                    "resourceNames": ["mine"]}]},
    ])
    admin = api_client_for(url)
    create(admin, deployment("web", 1))
    sa = api_client_for(url, "sa")
    apps, coord = client.AppsV1Api(sa), client.CoordinationV1Api(sa)
    assert apps.read_namespaced_deployment_scale("web", NAMESPACE).spec.replicas == 1
    for call in (
        lambda: apps.patch_namespaced_deployment_scale("web", NAMESPACE, {"spec": {"replicas": 2}}),  # verb
        lambda: apps.read_namespaced_deployment("web", NAMESPACE),  # whole resource
        lambda: coord.read_namespaced_lease("other", SYSTEM_NAMESPACE),  # resourceNames
        lambda: coord.read_namespaced_lease("mine", NAMESPACE),  # Role is namespaced
    ):
        with pytest.raises(ApiException) as err:
            call()
        assert err.value.status == 403
    with pytest.raises(ApiException) as missing:  # allowed through RBAC, then simply not there
        coord.read_namespaced_lease("mine", SYSTEM_NAMESPACE)
    assert missing.value.status == 404


@pytest.mark.parametrize(
    ("patch", "field"),
    [({"mode": "Aggressive"}, "spec.mode"), ({"leadTime": "soon"}, "spec.leadTime"),
     ({"capacityPerReplica": "many"}, "spec.capacityPerReplica")],
)
def test_custom_resources_are_validated_against_their_crd_schema(api: Any, patch: dict[str, Any], field: str) -> None:
    good = {"capacityPerReplica": 10, "targetRef": {"kind": "Deployment", "name": "x"}, "metric": {"promql": "up"}}
    with pytest.raises(ApiException) as created:
        create(api, scaling_policy("bad", {**good, **patch}))
    assert created.value.status == 422 and field in created.value.body
    _policy(api)
    with pytest.raises(ApiException) as patched:
        _custom(api).patch_namespaced_custom_object(G, V, NAMESPACE, P, "p", {"spec": patch}, _content_type=MERGE)
    assert patched.value.status == 422
    with pytest.raises(ApiException) as status:  # /status is validated too
        _custom(api).patch_namespaced_custom_object_status(G, V, NAMESPACE, P, "p",
                                                           {"status": {"currentReplicas": "lots"}},
                                                           _content_type=MERGE)
    assert status.value.status == 422 and "status.currentReplicas" in status.value.body


def test_a_stale_status_write_is_a_conflict(api: Any) -> None:
    """A /status merge patch carrying an old resourceVersion gets 409, like a real API server."""
    custom = _custom(api)
    read = _policy(api)
    custom.patch_namespaced_custom_object(G, V, NAMESPACE, P, "p", {"spec": {"maxReplicas": 9}}, _content_type=MERGE)
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object_status(
            G, V, NAMESPACE, P, "p", {"metadata": {"resourceVersion": read["metadata"]["resourceVersion"]},
                                      "status": {"mode": "Active"}}, _content_type=MERGE)
    assert err.value.status == 409


def test_a_stalled_request_is_held_in_flight_until_released(kube: Any, api: Any) -> None:
    import threading

    emu, _ = kube
    create(api, deployment("web", 1))
    stall = emu.stall("PATCH", r"/deployments/web/scale$", skip=1)
    apps = _apps(api)
    apps.patch_namespaced_deployment_scale("web", NAMESPACE, {"spec": {"replicas": 2}})  # the first passes
    done = threading.Event()
    worker = threading.Thread(target=lambda: (apps.patch_namespaced_deployment_scale(
        "web", NAMESPACE, {"spec": {"replicas": 3}}), done.set()))
    worker.start()
    assert stall.entered.wait(10) and stall.arrived == 2
    time.sleep(0.3)
    assert not done.is_set() and emu.get("apps/v1", "deployments", NAMESPACE, "web")["spec"]["replicas"] == 2
    stall.release()
    worker.join(10)
    assert done.is_set() and emu.get("apps/v1", "deployments", NAMESPACE, "web")["spec"]["replicas"] == 3
