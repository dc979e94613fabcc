"""The informer (controller.operator.informer): list, then watch; relist on 410 Gone; bookmarks.

Against the strict emulator over HTTP with the official client: an informer
of Deployments (projected to their scale, controller.operator.cached) sees
creates, /scale writes and deletes through its watch; a watch that starts
from a resourceVersion the emulator's event log no longer holds (an ERROR
event with 410) or that is answered 410 relists; a watch that ends at its
timeout resumes from the bookmark the emulator sent, without a relist.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from controller.operator.cached import format_selector, workload_scale
from controller.operator.informer import Informer
from controller.targets.base import ScaleState
from tests.controller.operator.harness import wait_for
from tests.kube.emulator import EmulatorThread
from tests.kube.fixtures import NAMESPACE, api_client_for, create, deployment, served

DEPLOYMENTS = r"^/apis/apps/v1/deployments$"


@pytest.fixture
def informer(api: client.ApiClient) -> Iterator[Informer[ScaleState]]:
    apps = client.AppsV1Api(api)
    made: Informer[ScaleState] = Informer("deployments", apps.list_deployment_for_all_namespaces, (),
                                          workload_scale, lambda s: s.resource_version or "", timeout_seconds=1)
    yield made
    made.stop()


def test_the_cache_follows_creates_scales_and_deletes_through_the_watch(kube: Any, api: Any,
                                                                        informer: Informer[ScaleState]) -> None:
    emu, _ = kube
    create(api, deployment("slots-api", 4))
    informer.start()
    assert informer.wait_synced(5)
    assert informer.get((NAMESPACE, "slots-api")) == ScaleState(4, 4, 4, emu.get(
        "apps/v1", "deployments", NAMESPACE, "slots-api")["metadata"]["resourceVersion"], "app=slots-api")
    lists = [r for r in emu.requests("GET", DEPLOYMENTS) if r.query.get("watch") != "true"]
    create(api, deployment("poker-api", 2))
    wait_for(lambda: informer.get((NAMESPACE, "poker-api")))
    emu.write_scale("apps/v1", "deployments", NAMESPACE, "slots-api", 9)  # someone else's kubectl scale
    seen = wait_for(lambda: (s := informer.get((NAMESPACE, "slots-api"))) is not None and s.replicas == 9 and s)
    assert seen.ready_replicas == 9  # the stand-in controller's status came through the watch too
    assert seen.resource_version == emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")["metadata"][
        "resourceVersion"]
    client.AppsV1Api(api).delete_namespaced_deployment("poker-api", NAMESPACE)
    wait_for(lambda: informer.get((NAMESPACE, "poker-api")) is None)
    assert [s.replicas for s in informer.items()] == [9]
    # all of it through the watch: one list, no relist
    assert informer.lists == 1 and informer.relists == 0
    assert [r for r in emu.requests("GET", DEPLOYMENTS) if r.query.get("watch") != "true"] == lists


def test_a_watch_too_old_for_the_event_log_relists(kube: Any, api: Any, informer: Informer[ScaleState]) -> None:
    """The watch starts from a resourceVersion whose events the log dropped: ERROR 410, then a fresh list."""
    emu, _ = kube
    emu.event_log_size = 3  # the deployments' log is made with it on the first write below
    create(api, deployment("slots-api", 4))
    held = emu.stall("GET", DEPLOYMENTS, skip=1)  # the informer's first watch, right after its list
    informer.start()
    assert informer.wait_synced(5)
    assert held.entered.wait(5)
    for i in range(5):  # meanwhile more changes than the log keeps
        create(api, deployment(f"game-{i}", 1))
    held.release()
    wait_for(lambda: informer.relists >= 1 and informer.synced)
    assert informer.lists == 2
    assert sorted(k for k in (f"game-{i}" for i in range(5)) if informer.get((NAMESPACE, k))) == [
        f"game-{i}" for i in range(5)]


@pytest.fixture
def kube_thread() -> Iterator[tuple[EmulatorThread, Any, str]]:
    """(thread, emulator, url): the ``kube`` fixture's emulator, with its thread (to run code on its loop)."""
    thread = EmulatorThread()
    for emu, url in served(thread):
        yield thread, emu, url


def test_a_watch_that_falls_behind_the_event_log_ends_with_410_and_relists(
        kube_thread: tuple[EmulatorThread, Any, str]) -> None:
    """Mid-watch: more changes between two of the emulator's polls than its log keeps, so some were dropped."""
    thread, emu, url = kube_thread
    emu.event_log_size = 3
    api = api_client_for(url)
    create(api, deployment("slots-api", 4))
    apps = client.AppsV1Api(api)
    informer: Informer[ScaleState] = Informer("deployments", apps.list_deployment_for_all_namespaces, (),
                                              workload_scale, lambda s: s.resource_version or "",
                                              timeout_seconds=30).start()
    try:
        assert informer.wait_synced(5)
        wait_for(lambda: [r for r in emu.requests("GET", DEPLOYMENTS) if r.query.get("watch") == "true"])
        time.sleep(0.1)  # the watch is polling the log
        done = threading.Event()

        def burst() -> None:  # on the emulator's loop: no poll of the watch runs in between
            for i in range(5):
                emu.put_object(deployment(f"game-{i}", 1), "deployments")
            done.set()

        thread.loop.call_soon_threadsafe(burst)
        assert done.wait(5)
        wait_for(lambda: informer.relists >= 1 and informer.synced)
        assert informer.lists == 2  # not a resumed watch: a fresh list
        assert all(informer.get((NAMESPACE, f"game-{i}")) for i in range(5))
    finally:
        informer.stop()
        api.close()


def test_an_http_410_on_the_watch_relists(kube: Any, api: Any, informer: Informer[ScaleState]) -> None:
    emu, _ = kube
    create(api, deployment("slots-api", 4))
    informer.start()
    assert informer.wait_synced(5)
    emu.fail("GET", DEPLOYMENTS, 410)  # the next request there: the watch that resumes after the 1 s timeout
    wait_for(lambda: informer.lists >= 2 and informer.synced)
    assert informer.relists == 1
    assert [r.status for r in emu.requests("GET", DEPLOYMENTS)].count(410) == 1


def test_a_watch_that_times_out_resumes_from_its_bookmark(kube: Any, api: Any,
                                                          informer: Informer[ScaleState]) -> None:
    """No change to Deployments while other objects move the resourceVersion: resume from the bookmark."""
    emu, _ = kube
    create(api, deployment("slots-api", 4))
    informer.start()
    assert informer.wait_synced(5)
    listed = int(informer.resource_version)
    for i in range(3):
        create(api, deployment(f"db-{i}", 1, kind="StatefulSet"))
    wait_for(lambda: informer.bookmarks >= 1, timeout=5)
    assert int(informer.resource_version) >= listed + 3  # the bookmark's, past the StatefulSets
    watches = wait_for(lambda: len(w := [r for r in emu.requests("GET", DEPLOYMENTS)
                                         if r.query.get("watch") == "true"]) >= 2 and w, timeout=5)
    assert watches[0].query["allowWatchBookmarks"] == "true"
    assert int(watches[1].query["resourceVersion"]) >= listed + 3
    assert informer.lists == 1 and informer.relists == 0


@pytest.mark.parametrize(("selector", "expected"), [
    ({"matchLabels": {"b": "2", "a": "1"}}, "a=1,b=2"),
    ({"matchLabels": {"app": "x"}, "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["web", "api"]},
        {"key": "canary", "operator": "DoesNotExist"},
        {"key": "zone", "operator": "NotIn", "values": ["b"]},
        {"key": "env", "operator": "Exists"}]}, "app=x,!canary,env,tier in (api,web),zone notin (b)"),
    (None, ""),
])
def test_the_selector_is_written_as_scale_says_it(selector: Any, expected: str) -> None:
    assert format_selector(selector) == expected
