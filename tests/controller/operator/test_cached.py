"""The operator on its watch-fed caches (``build_operator(cache=True)``, what ``pitboss operator run`` uses).

Against the strict emulator, with every request it answered in its log: a
steady cycle sends no LIST and no GET per policy (and no /status PATCH when
the status did not change); a scale someone else made is what the next
decision starts from; a 409 on /scale re-reads the target from the API, not
from the cache; a cache that has not synced (or whose stream broke) is not
read, the cycle reads the API directly and counts it; the manifests' RBAC
allows the watches.
"""

from __future__ import annotations

import inspect
import time
from datetime import timedelta
from typing import Any

from controller.operator.app import Operator, build_operator
from controller.operator.cached import Informers, max_stale_seconds
from controller.operator.clock import FakeClock
from tests.controller.operator.harness import (
    EVENT_START,
    TraceDemand,
    casino_trace,
    make_operator,
    policy_spec,
    wait_for,
)
from tests.controller.operator.test_rbac import TOKEN, _roles, _setup
from tests.kube.fixtures import NAMESPACE, api_client_for, create, deployment, scaling_policy

POLICIES = ("pitboss.dev/v1alpha1", "scalingpolicies")
FLAT = casino_trace(spikes=())  # ~300 req/s: 4 replicas at 100 each
WORKLOADS = r"^/apis/apps/v1/deployments$"


def slots_at_10(api: Any) -> None:
    """slots-api at 10 replicas; its policy steps down 10% a decision (~300 req/s needs 4)."""
    create(api, deployment("slots-api", 10))
    create(api, scaling_policy("slots", policy_spec(scaleDown={"stabilizationWindow": "5m", "maxStepPercent": 10})))


def cached_operator(url: str, clock: FakeClock, *, timeout: int = 300, wait: bool = True,
                    demand: TraceDemand | None = None, **kw: Any) -> Operator:
    op = make_operator(url, clock, demand or TraceDemand(FLAT), leader_election=False, cache=True,
                       cache_timeout=timeout, **kw)
    assert op.informers is not None
    if wait:
        assert op.informers.wait_synced(10)
    return op


def fallbacks(op: Operator, resource: str, reason: str) -> float:
    value = op.metrics.registry.get_sample_value("pitboss_operator_cache_fallbacks_total",
                                                 {"resource": resource, "reason": reason})
    return value or 0.0


def reads(emu: Any, since: int) -> list[str]:
    """The GETs answered after log entry ``since`` that were not watches: every LIST and every GET."""
    return [f"{r.method} {r.path}" for r in emu.log[since:] if r.method == "GET" and r.query.get("watch") != "true"]


def test_a_steady_cycle_sends_no_list_no_get_and_no_unchanged_status(kube: Any, api: Any) -> None:
    emu, url = kube
    for i in range(3):
        create(api, deployment(f"svc-{i}", 4))
        create(api, deployment(f"db-{i}", 2, kind="StatefulSet", labels={"app": f"db-{i}"}))
        db = {"targetRef": {"kind": "StatefulSet", "name": f"db-{i}"}, "capacityPerReplica": 300, "maxReplicas": 5,
              "leadTime": "10m"}
        create(api, scaling_policy(f"p-{i}", policy_spec(targetRef={"kind": "Deployment", "name": f"svc-{i}"},
                                                         databaseReplicas=db)))
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = cached_operator(url, clock)
    try:
        first = op.loop.step()
        assert first is not None and all(o.error is None for o in first.outcomes)
        assert len(emu.requests("PATCH", r"/scalingpolicies/p-\d/status$")) == 3  # the first status, written
        since = len(emu.log)
        for _ in range(2):  # the same minute: nothing changed, nothing to write
            clock.advance(timedelta(seconds=15))
            report = op.loop.step()
            assert report is not None and [o.current for o in report.outcomes] == [4, 4, 4]
        assert reads(emu, since) == []
        writes = [f"{r.method} {r.path}" for r in emu.log[since:] if r.method != "GET"]
        assert writes == []
        assert op.metrics.registry.get_sample_value("pitboss_operator_cache_synced", {"resource": "deployments"}) == 1
    finally:
        op.close()


def test_a_scale_someone_else_made_is_what_the_next_decision_starts_from(kube: Any, api: Any) -> None:
    emu, url = kube
    slots_at_10(api)
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = cached_operator(url, clock)
    try:
        assert op.loop.step() is not None  # 10 -> 9 (one 10% step down)
        emu.write_scale("apps/v1", "deployments", NAMESPACE, "slots-api", 30)  # kubectl scale, between cycles
        assert op.informers is not None
        wait_for(lambda: (s := op.informers.workloads["Deployment"].get((NAMESPACE, "slots-api"))) is not None  # type: ignore[union-attr]
                 and s.replicas == 30)
        since = len(emu.log)
        clock.advance(timedelta(seconds=15))
        report = op.loop.step()
        assert report is not None
        assert reads(emu, since) == []  # from the cache, not from a GET
        patches = emu.requests("PATCH", r"/deployments/slots-api/scale$")
        assert [(r.status, r.body["spec"]["replicas"]) for r in patches] == [(200, 9), (200, 27)]  # from 30, not 9
        status = emu.get(*POLICIES, NAMESPACE, "slots")["status"]
        assert "scaling 30 -> 27" in status["lastDecision"]["message"]
    finally:
        op.close()


def test_a_409_re_reads_the_target_from_the_api_not_the_cache(kube: Any, api: Any) -> None:
    emu, url = kube
    slots_at_10(api)
    emu.on_request("PATCH", r"/deployments/slots-api/scale$",
                   lambda: emu.write_scale("apps/v1", "deployments", NAMESPACE, "slots-api", 20))
    op = cached_operator(url, FakeClock(EVENT_START - timedelta(hours=2)))
    try:
        since = len(emu.log)
        assert op.loop.step() is not None
        answered = [(r.method, r.path.rsplit("/", 2)[-2:], r.status) for r in emu.log[since:]
                    if "/deployments/slots-api" in r.path]
        # the stale cached 10 asked for 9 and met the human's 20; then a GET, not the cache, and 20 -> 18
        assert answered == [("PATCH", ["slots-api", "scale"], 409), ("GET", ["slots-api", "scale"], 200),
                            ("GET", ["slots-api", "status"], 200), ("PATCH", ["slots-api", "scale"], 200)]
        patches = emu.requests("PATCH", r"/deployments/slots-api/scale$")
        assert [r.body["spec"]["replicas"] for r in patches] == [9, 18]
        assert fallbacks(op, "deployments", "conflict") == 1
        assert emu.get(*POLICIES, NAMESPACE, "slots")["status"]["currentReplicas"] == 18
    finally:
        op.close()


def test_an_unsynced_policy_cache_is_not_read_the_cycle_lists_from_the_api(kube: Any, api: Any) -> None:
    emu, url = kube
    for i in range(3):
        create(api, deployment(f"svc-{i}", 4))
        create(api, scaling_policy(f"p-{i}", policy_spec(targetRef={"kind": "Deployment", "name": f"svc-{i}"})))
    held = emu.stall("GET", r"^/apis/pitboss.dev/v1alpha1/scalingpolicies$")  # the informer's first LIST
    op = cached_operator(url, FakeClock(EVENT_START - timedelta(hours=2)), wait=False)
    try:
        assert held.entered.wait(5)
        assert op.informers is not None and not op.informers.policies.synced
        report = op.loop.step()
        assert report is not None
        assert sorted(o.name for o in report.outcomes) == ["p-0", "p-1", "p-2"]  # not an empty cache's none
        assert all(o.error is None for o in report.outcomes)
        assert fallbacks(op, "scalingpolicies", "unsynced") == 1
        assert op.metrics.registry.get_sample_value("pitboss_operator_cache_synced",
                                                    {"resource": "scalingpolicies"}) == 0
    finally:
        held.release()
        op.close()


def broken_workload_stream(kube: Any, api: Any, **kw: Any) -> tuple[Operator, Any, FakeClock]:
    """slots-api 10 -> 9 in a first cycle; then its watch breaks and every relist fails (503), and someone
    scales it to 30, which the cache cannot see. (operator, the Deployments' informer, clock)."""
    emu, url = kube
    slots_at_10(api)
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = cached_operator(url, clock, timeout=1, **kw)
    assert op.loop.step() is not None  # 10 -> 9
    emu.fail("GET", WORKLOADS, 503, times=None)  # from the next watch on: no watch, no list of Deployments
    assert op.informers is not None
    informer = op.informers.workloads["Deployment"]
    wait_for(lambda: not informer.synced, timeout=5)
    emu.write_scale("apps/v1", "deployments", NAMESPACE, "slots-api", 30)
    cached = informer.get((NAMESPACE, "slots-api"))
    assert cached is not None and cached.replicas == 9  # the cache cannot see the 30
    return op, informer, clock


def test_past_its_max_staleness_a_broken_workload_stream_is_not_read_the_cycle_reads_the_scale(
        kube: Any, api: Any) -> None:
    """The watch broke and the relist fails: the cache holds a stale 10; the decision starts from the API's 30.

    ``--cache-max-stale 0s``: the snapshot is not read at all once the stream broke."""
    emu, _ = kube
    op, _, clock = broken_workload_stream(kube, api, cache_max_stale=timedelta(0))
    try:
        clock.advance(timedelta(seconds=15))
        assert op.loop.step() is not None
        patches = emu.requests("PATCH", r"/deployments/slots-api/scale$")
        assert [(r.status, r.body["spec"]["replicas"]) for r in patches] == [(200, 9), (200, 27)]
        assert fallbacks(op, "deployments", "unsynced") >= 1
    finally:
        emu.clear_rules()
        op.close()


def test_the_cached_loop_needs_nothing_beyond_the_manifests_rbac(kube: Any, api: Any) -> None:
    """The informers' lists and watches (policies, events, Deployments, StatefulSets) are granted."""
    emu, url = kube
    _setup(api)
    emu.enforce_rbac(TOKEN, _roles())
    clock = FakeClock(EVENT_START - timedelta(minutes=10) - timedelta(seconds=30))
    op = cached_operator(url, clock, token=TOKEN, demand=TraceDemand())  # the tournament's trace
    try:
        for _ in range(4):  # as test_rbac's: the fourth crosses the tournament's pre-scale moment
            report = op.loop.step()
            assert report is not None and all(o.error is None for o in report.outcomes)
            clock.advance(timedelta(seconds=15))
        assert [f"{r.method} {r.path} {r.status}" for r in emu.log if r.status == 403] == []
        assert emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")["spec"]["replicas"] >= 11
        assert op.informers is not None and all(i.lists == 1 for i in op.informers.all())
    finally:
        op.close()


def stale_seconds(op: Operator, resource: str) -> float:
    value = op.metrics.registry.get_sample_value("pitboss_operator_cache_stale_seconds", {"resource": resource})
    return value or 0.0


def test_a_relisting_policy_cache_serves_its_snapshot_then_after_max_stale_the_api(kube: Any, api: Any) -> None:
    """An HTTP 410 on the policies' watch, then a relist held in flight: the cycles read the last snapshot (no LIST
    of 3 policies... or of 10,000) for at most ``cache_max_stale``, saying how old it is; after that the API."""
    emu, url = kube
    for i in range(3):
        create(api, deployment(f"svc-{i}", 4))
        create(api, scaling_policy(f"p-{i}", policy_spec(targetRef={"kind": "Deployment", "name": f"svc-{i}"})))
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = cached_operator(url, clock, timeout=1, cache_max_stale=timedelta(seconds=30))
    assert op.informers is not None
    informer = op.informers.policies
    try:
        assert op.loop.step() is not None
        emu.fail("GET", r"^/apis/pitboss.dev/v1alpha1/scalingpolicies$", 410)  # the next watch: 410 Gone
        held = emu.stall("GET", r"^/apis/pitboss.dev/v1alpha1/scalingpolicies$")  # and the relist after it
        assert held.entered.wait(10) and not informer.synced and informer.relists == 1
        create(api, scaling_policy("p-new", policy_spec(targetRef={"kind": "Deployment", "name": "svc-0"})))
        since = len(emu.log)
        clock.advance(timedelta(seconds=15))
        report = op.loop.step()
        assert report is not None and sorted(o.name for o in report.outcomes) == ["p-0", "p-1", "p-2"]
        assert all(o.error is None for o in report.outcomes)
        assert [r for r in reads(emu, since) if "scalingpolicies" in r] == []  # the snapshot, not a LIST
        assert fallbacks(op, "scalingpolicies", "unsynced") == 0
        assert 0 < stale_seconds(op, "scalingpolicies") <= 30
        # the relist still hangs 31 s after the stream broke: too stale, the cycle lists from the API
        informer.monotonic = lambda: time.monotonic() + 31
        since = len(emu.log)
        clock.advance(timedelta(seconds=15))
        report = op.loop.step()
        assert report is not None and sorted(o.name for o in report.outcomes) == ["p-0", "p-1", "p-2", "p-new"]
        assert [r for r in reads(emu, since) if "scalingpolicies" in r] == [
            "GET /apis/pitboss.dev/v1alpha1/scalingpolicies"]
        assert fallbacks(op, "scalingpolicies", "unsynced") == 1 and stale_seconds(op, "scalingpolicies") > 30
        informer.monotonic = time.monotonic
        held.release()
        assert informer.wait_synced(10)
        since = len(emu.log)
        clock.advance(timedelta(seconds=15))
        report = op.loop.step()  # synced again: the relist's items, no LIST by the cycle
        assert report is not None and len(report.outcomes) == 4
        assert [r for r in reads(emu, since) if "scalingpolicies" in r and "watch" not in r] == []
        assert stale_seconds(op, "scalingpolicies") == 0
        assert op.metrics.registry.get_sample_value("pitboss_operator_cache_synced",
                                                    {"resource": "scalingpolicies"}) == 1
    finally:
        emu.clear_rules()
        op.close()


def test_a_broken_workload_stream_is_read_stale_for_max_stale_then_the_scale_from_the_api(kube: Any, api: Any) -> None:
    """The watch broke and the relist fails; someone scaled 9 -> 30 meanwhile. Within ``cache_max_stale`` (the
    default, two sync periods) the snapshot's 9 is read (no GET) and held; past it the API's 30, stepped to 27."""
    emu, _ = kube
    op, informer, clock = broken_workload_stream(kube, api)  # the default max staleness: two sync periods
    try:
        since = len(emu.log)
        clock.advance(timedelta(seconds=15))
        assert op.loop.step() is not None
        assert [r for r in reads(emu, since) if "/deployments/" in r] == []  # the snapshot's 9, not a GET
        patches = emu.requests("PATCH", r"/deployments/slots-api/scale$")
        assert [(r.status, r.body["spec"]["replicas"]) for r in patches] == [(200, 9)]  # 9 held: no write
        assert fallbacks(op, "deployments", "unsynced") == 0 and stale_seconds(op, "deployments") > 0
        informer.monotonic = lambda: time.monotonic() + 31  # past two sync periods: the API, until the relist
        clock.advance(timedelta(seconds=15))
        assert op.loop.step() is not None
        patches = emu.requests("PATCH", r"/deployments/slots-api/scale$")
        assert [(r.status, r.body["spec"]["replicas"]) for r in patches] == [(200, 9), (200, 27)]
        assert fallbacks(op, "deployments", "unsynced") >= 1 and stale_seconds(op, "deployments") > 30
    finally:
        emu.clear_rules()
        op.close()


def test_the_default_max_staleness_is_two_sync_periods_set_in_one_place(kube: Any) -> None:
    """``Informers`` has no default of its own (it was 0 s while the operator used two sync periods): every
    caller says how stale a snapshot may be read, and the operator's default comes from ``max_stale_seconds``."""
    _, url = kube
    assert inspect.signature(Informers.build).parameters["max_stale"].default is inspect.Parameter.empty
    assert max_stale_seconds(timedelta(seconds=15)) == 30.0
    assert max_stale_seconds(timedelta(seconds=15), timedelta(0)) == 0.0
    op = build_operator(api_client_for(url), namespace=None, demand=TraceDemand(FLAT), clock=FakeClock(EVENT_START),
                        leader_election=False, cache=True, sync_period=timedelta(seconds=10))
    try:
        assert op.informers is not None and op.informers.max_stale == 20.0
    finally:
        op.close()
        op.api_client.close()
