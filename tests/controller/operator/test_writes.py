"""Concurrent writes (``controller.operator.writes``) on the strict emulator, through the official client.

Twelve policies, each on its own Deployment at 1 replica with ``minReplicas`` 2 and no metrics, so
every policy writes its /scale, its /status and a scale Event in the same cycle. The emulator serves
those writes 0.1 s late without holding up the others (``latency``) and records each one's span:
with ``--write-concurrency 8`` different policies' writes overlap at the server, one policy's stay
in order (scale, then status, then Event), a 409 on one policy is that policy's alone, and a fence
that closes mid-cycle lets no queued policy start writing.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.operator.app import Operator, build_operator
from controller.operator.clock import FakeClock
from controller.operator.fence import Fence, FencedEventRecorder, FencedPolicyStore, FencedScaleTarget
from tests.controller.operator.harness import EVENT_START, TraceDemand, min_replicas_fleet
from tests.kube.emulator import Latency
from tests.kube.fixtures import NAMESPACE, api_client_for, write_kubeconfig

POLICIES = 12
SCALE = r"/deployments/app-\d+/scale$"
STATUS = r"/scalingpolicies/p-\d+/status$"
EVENTS = r"/namespaces/[^/]+/events$"
DELAY = 0.1


def _fleet(api: Any) -> None:
    min_replicas_fleet(api, POLICIES)  # no metrics: each policy raises its target to minReplicas


def _operator(url: str, concurrency: int) -> Operator:
    """As `pitboss operator run` wires it: the informers' caches (the cycle's reads cost no round trip)."""
    demand = TraceDemand()
    demand.default.down = True  # no metrics: each policy holds, raising its target to minReplicas (no fits)
    op = build_operator(api_client_for(url, write_concurrency=concurrency), namespace=None, demand=demand,
                        leader_election=False, clock=FakeClock(EVENT_START - timedelta(hours=2)), cache=True,
                        write_concurrency=concurrency)
    assert op.informers is not None and op.informers.wait_synced(30)
    return op


def _slow_writes(emu: Any) -> dict[str, Latency]:
    return {"scale": emu.latency("PATCH", SCALE, DELAY), "status": emu.latency("PATCH", STATUS, DELAY),
            "event": emu.latency("POST", EVENTS, DELAY)}


def _policy_of(kind: str, span: Any) -> str:
    if kind == "event":
        return str(span.body["involvedObject"]["name"])
    name = span.path.rstrip("/").split("/")[-2]
    return name.replace("app-", "p-")


def test_different_policies_writes_overlap_and_each_policys_stay_in_order(kube: Any, api: Any,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    emu, url = kube
    _fleet(api)
    slow = _slow_writes(emu)
    op = _operator(url, 8)
    report = op.loop.step()
    op.close()
    assert report is not None and [o.error for o in report.outcomes] == [None] * POLICIES
    assert sum(o.scaled for o in report.outcomes) == POLICIES
    # each policy: its /scale, its /status, two Events (the scale-up, and MetricsUnavailable)
    assert {k: len(v.spans) for k, v in slow.items()} == {"scale": POLICIES, "status": POLICIES, "event": 2 * POLICIES}
    # different policies' writes at the server at once (serial writes: never more than 1)
    assert slow["scale"].max_in_flight >= 4, {k: v.max_in_flight for k, v in slow.items()}
    spans = [(s.start, s.end) for v in slow.values() for s in v.spans]
    at_once = max(sum(1 for a, b in spans if a <= t < b) for t, _ in spans)
    assert at_once >= 6, at_once  # most of the pool's eight writers busy at once, over the three kinds of write
    for i in range(POLICIES):  # one policy's writes: /scale done before its /status starts, that before its Event
        mine = {k: [s for s in v.spans if _policy_of(k, s) == f"p-{i:02d}"] for k, v in slow.items()}
        assert [len(mine[k]) for k in ("scale", "status", "event")] == [1, 1, 2], i
        assert mine["scale"][0].end <= mine["status"][0].start, i
        assert mine["status"][0].end <= min(e.start for e in mine["event"]), i
        first, second = sorted(mine["event"], key=lambda e: e.start)
        assert first.end <= second.start, i
    # the client's pool holds the writers and the informers' watches: no connection opened and thrown away
    assert [r.getMessage() for r in caplog.records if "Connection pool is full" in r.getMessage()] == []
    for i in range(POLICIES):  # each written once, and its status says what was written
        replicas = emu.get("apps/v1", "deployments", NAMESPACE, f"app-{i:02d}")["spec"]["replicas"]
        status = emu.get("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, f"p-{i:02d}")["status"]
        assert replicas == 2 and status["currentReplicas"] == 2


def test_a_409_on_one_policy_is_decided_again_and_the_others_are_untouched(kube: Any, api: Any) -> None:
    emu, url = kube
    _fleet(api)
    _slow_writes(emu)
    # someone scales app-03 to 4 just before the operator's patch reaches the server: that patch is stale
    emu.on_request("PATCH", r"/deployments/app-03/scale$",
                   lambda: emu.write_scale("apps/v1", "deployments", NAMESPACE, "app-03", 4))
    op = _operator(url, 8)
    report = op.loop.step()
    op.close()
    assert report is not None and [o.error for o in report.outcomes] == [None] * POLICIES
    patches = emu.requests("PATCH", SCALE)
    mine = [(r.status, r.body["spec"]["replicas"]) for r in patches if "/app-03/" in r.path]
    assert [code for code, _ in mine] in ([409], [409, 200])  # the stale patch refused; at most one more
    others = [r for r in patches if "/app-03/" not in r.path]
    assert sorted(r.path.rsplit("/", 2)[1] for r in others) == [f"app-{i:02d}" for i in range(POLICIES) if i != 3]
    assert {r.status for r in others} == {200}  # one patch each, none of them re-read or retried
    # decided again from the fresh 4 (never the stale read of 1): held at 4, and its status says so
    status = emu.get("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, "p-03")["status"]
    assert emu.get("apps/v1", "deployments", NAMESPACE, "app-03")["spec"]["replicas"] == 4
    assert status["currentReplicas"] == 4
    assert [c for c, _ in mine] == [409]


class RecordingFence(Fence):
    """A fence that remembers every write it permitted, and after what."""

    def __init__(self) -> None:
        super().__init__()
        self.permitted_after_close = 0

    def check(self, what: str) -> None:
        super().check(what)  # raises NotLeader once closed
        if self.closed:
            self.permitted_after_close += 1


def test_a_fence_closed_mid_cycle_lets_no_queued_policy_start_writing(kube: Any, api: Any) -> None:
    emu, url = kube
    _fleet(api)
    _slow_writes(emu)
    op = _operator(url, 4)
    fence = RecordingFence()
    for port in (op.reconciler.targets, op.reconciler.store, op.reconciler.recorder):
        assert isinstance(port, (FencedScaleTarget, FencedPolicyStore, FencedEventRecorder))
        port.fence = fence
    op.loop.fence = fence
    hits = [0]

    def third() -> None:  # the lease is lost while the 3rd /scale patch is on the wire
        hits[0] += 1
        if hits[0] == 3:  # once the cycle has queued all it may (2 x 4): the 4 writers busy, 4 policies waiting
            deadline = time.monotonic() + 10
            while op.reconciler.writes.submitted < 8 and time.monotonic() < deadline:
                time.sleep(0.01)
            fence.close("lost the lease")

    emu.on_request("PATCH", SCALE, third, times=None)
    report = op.loop.step()
    op.close()
    assert report is not None
    assert fence.permitted_after_close == 0
    scaled = emu.requests("PATCH", SCALE)
    # the writes that had passed the fence before it closed (at most the 4 writers' own) and nothing else
    assert 3 <= len(scaled) <= 4, [r.path for r in scaled]
    assert emu.requests("PATCH", STATUS) == [] and emu.requests("POST", EVENTS) == []
    assert 0 < len(report.outcomes) < POLICIES  # the cycle stopped submitting
    assert {o.reason for o in report.outcomes} == {"NotLeader"}
    dropped = [o for o in report.outcomes if "the write fence closed during this cycle" in o.message]
    assert len(dropped) == len(report.outcomes) - len(scaled) >= 4
    # the queued policies were dropped, not tried: the fence refused one write per policy in flight
    assert fence.refused == len(scaled), fence.refused


def test_the_cli_sizes_the_clients_pool_for_its_writers_and_watches(tmp_path: Path) -> None:
    from cli.operator_cmd import _api_client

    kubeconfig = write_kubeconfig(tmp_path, "http://127.0.0.1:1")
    assert _api_client(kubeconfig, None, 8).configuration.connection_pool_maxsize == 8 + 6
    assert _api_client(kubeconfig, None, 1).configuration.connection_pool_maxsize == 1 + 6


def test_drain_waits_for_every_task_before_it_raises_the_first_failure() -> None:
    import threading

    from controller.operator.writes import WritePool

    pool, release, finished = WritePool(2), threading.Event(), []

    def fails() -> None:
        raise RuntimeError("boom")

    def slow() -> None:
        release.wait(5)
        finished.append("slow")

    pool.start_cycle()
    pool.submit(fails, lambda: None)
    pool.submit(slow, lambda: None)
    threading.Timer(0.2, release.set).start()
    with pytest.raises(RuntimeError, match="boom"):
        pool.drain()
    assert finished == ["slow"]  # the slow policy's writes ended inside this cycle
    pool.close()
