"""High availability: two operator instances share a Lease; only the leader patches /scale.

Both instances use the official client over HTTP against the strict
emulator (whose 409 on a stale resourceVersion is what makes the election
safe) and share one fake clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from kubernetes import client

from controller.operator.clock import FakeClock, OffsetClock
from controller.operator.fakes import InMemoryLeaseApi
from controller.operator.leader import Election, LeaderElector
from tests.controller.operator.harness import EVENT_START, TraceDemand, make_operator, policy_spec, tournament_specs
from tests.kube.fixtures import NAMESPACE, SYSTEM_NAMESPACE, create, deployment, scaling_policy, traffic_event

LEASE = timedelta(seconds=15)


def _lease(emu: Any) -> dict[str, Any]:
    lease = emu.get("coordination.k8s.io/v1", "leases", SYSTEM_NAMESPACE, "pitboss-operator")
    assert lease is not None
    return dict(lease["spec"])


def test_only_the_leader_patches_and_the_other_takes_over_after_expiry(kube: Any, api: Any) -> None:
    emu, url = kube
    create(api, deployment("slots-api", 4))
    create(api, scaling_policy("slots", policy_spec()))
    for name, spec in tournament_specs():
        create(api, traffic_event(name, spec, labels={"service": "slots"}))
    clock = FakeClock(EVENT_START - timedelta(minutes=20))
    demand = TraceDemand()
    a = make_operator(url, clock, demand, identity="op-a", lease_duration=LEASE)
    b = make_operator(url, clock, demand, identity="op-b", lease_duration=LEASE)

    assert a.loop.step() is not None  # a creates the lease and leads
    assert b.loop.step() is None  # b follows: no reads, no writes
    assert _lease(emu)["holderIdentity"] == "op-a"
    status_writes_by_a = len(emu.requests("PATCH", "/scalingpolicies/slots/status"))

    # a stops without releasing (crash): b must wait for the lease to expire.
    clock.advance(LEASE - timedelta(seconds=1))
    assert b.loop.step() is None
    clock.advance(timedelta(seconds=2))
    # Now inside the pre-scale window, and a's lease has expired.
    clock.set(EVENT_START - timedelta(minutes=10) + timedelta(seconds=1))
    report = b.loop.step()
    assert report is not None and report.outcomes[0].scaled
    lease = _lease(emu)
    assert lease["holderIdentity"] == "op-b" and lease["leaseTransitions"] == 1
    patches = emu.requests("PATCH", "/deployments/slots-api/scale$")
    assert len(patches) == 1  # only the new leader patched
    assert len(emu.requests("PATCH", "/scalingpolicies/slots/status")) > status_writes_by_a
    # a comes back: it sees a live lease held by b and stays a follower.
    assert a.loop.step() is None
    assert a.metrics.leader.labels("op-a")._value.get() == 0
    assert b.metrics.leader.labels("op-b")._value.get() == 1


def test_release_hands_over_without_waiting(kube: Any) -> None:
    emu, url = kube
    clock = FakeClock(datetime(2026, 11, 27, 12, tzinfo=UTC))
    a = make_operator(url, clock, TraceDemand(), identity="op-a", lease_duration=LEASE)
    b = make_operator(url, clock, TraceDemand(), identity="op-b", lease_duration=LEASE)
    assert a.loop.step() is not None and b.loop.step() is None
    a.loop.stop()
    a.loop.run()  # returns at once (stopped) and releases the lease on the way out
    assert _lease(emu)["holderIdentity"] in ("", None)
    assert b.loop.step() is not None  # no expiry wait
    assert _lease(emu)["holderIdentity"] == "op-b"


def test_racing_candidates_cannot_both_win() -> None:
    """Two electors read the same expired lease; the second replace is stale and loses (in-memory LeaseApi)."""
    api = InMemoryLeaseApi()
    clock = FakeClock(datetime(2026, 11, 27, 12, tzinfo=UTC))
    old = LeaderElector(api, clock, Election.of("old", LEASE), namespace="ns")
    assert old.try_acquire_or_renew()
    x = LeaderElector(api, clock, Election.of("x", LEASE), namespace="ns")
    y = LeaderElector(api, clock, Election.of("y", LEASE), namespace="ns")
    assert not x.try_acquire_or_renew() and not y.try_acquire_or_renew()  # both see old's lease, unexpired
    clock.advance(LEASE * 2)  # old is gone: the record has not changed for a lease duration
    snapshot = api.get("ns", "pitboss-operator")
    real_get = api.get
    api.get = lambda ns, name: snapshot  # type: ignore[method-assign]  # both read the same version
    try:
        results = [x.try_acquire_or_renew(), y.try_acquire_or_renew()]
    finally:
        api.get = real_get  # type: ignore[method-assign]
    assert results == [True, False]
    assert api.leases[("ns", "pitboss-operator")]["spec"]["holderIdentity"] == "x"


@pytest.mark.parametrize(
    ("lease", "deadline", "retry", "field"),
    [
        (timedelta(0), None, None, "leaseDuration"),
        (timedelta(seconds=15), timedelta(seconds=15), None, "renewDeadline"),
        (timedelta(seconds=15), timedelta(seconds=2), timedelta(seconds=2), "renewDeadline"),
        (timedelta(seconds=15), None, timedelta(0), "retryPeriod"),
    ],
)
def test_timings_follow_client_go_rules(lease: timedelta, deadline: timedelta | None, retry: timedelta | None,
                                        field: str) -> None:
    """leaseDuration > renewDeadline > 1.2 x retryPeriod > 0, as client-go's NewLeaderElector checks."""
    with pytest.raises(ValueError, match=field):
        Election.of("i", lease, deadline, retry)
    ok = Election.of("i")
    assert (ok.lease_duration, ok.renew_deadline, ok.retry_period) == (
        timedelta(seconds=15), timedelta(seconds=10), timedelta(seconds=2))


@pytest.mark.parametrize("cache", [False, True], ids=["watches", "informers"])
def test_watch_picks_up_a_new_policy_before_the_sync_period(kube: Any, api: Any, cache: bool) -> None:
    """The loop runs for real (threads, a 60 s sync period); a new ScalingPolicy is reconciled within seconds.

    With ``cache`` the informers' events wake the loop (``start_watches`` opens no watch of its own).
    """
    import threading
    import time

    from controller.operator.app import start_watches

    emu, url = kube
    create(api, deployment("slots-api", 4))
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    op = make_operator(url, clock, TraceDemand(), leader_election=False, cache=cache)
    op.loop.sync_period = timedelta(seconds=60)
    start_watches(op, NAMESPACE)
    assert cache == (op.informers is not None) and (op.loop._watchers == []) == cache
    runner = threading.Thread(target=op.loop.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while op.loop.cycles < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        create(api, scaling_policy("slots", policy_spec(forecast={"model": "seasonal-naive", "step": "1m",
                                                                  "history": "3d", "horizon": "1h"})))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            obj = emu.get("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, "slots")
            if obj and obj.get("status", {}).get("observedGeneration") == 1:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the watch did not wake the loop within 10 s (sync period is 60 s)")
        # A new TrafficEvent wakes it too: the forecast then knows one event.
        name, spec = tournament_specs()[-1]
        create(api, traffic_event(name, spec, labels={"service": "slots"}))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            obj = emu.get("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE, "slots")
            conditions = {c["type"]: c for c in obj.get("status", {}).get("conditions", [])}
            if "1 event(s)" in conditions.get("ForecastReady", {}).get("message", ""):
                break
            time.sleep(0.05)
        else:
            pytest.fail("a new TrafficEvent did not wake the loop within 10 s")
    finally:
        op.loop.stop()
        runner.join(10)
        op.close()
    assert not runner.is_alive()


def test_a_cycle_stops_between_policies_when_leadership_is_lost() -> None:
    """In-memory fakes: the loop's "still leading?" check ends the cycle early."""
    from controller.incidents.events import RecordingEventRecorder
    from controller.operator.fakes import InMemoryPolicyStore
    from controller.operator.reconcile import Reconciler
    from controller.sources.fakes import FakeDemandSource
    from controller.targets.fake import InMemoryScaleTarget

    store = InMemoryPolicyStore()
    for i in range(3):
        store.add_policy(NAMESPACE, f"p{i}", policy_spec(mode="Paused"))
    reconciler = Reconciler(store=store, targets=InMemoryScaleTarget(), recorder=RecordingEventRecorder(),
                            demand=lambda p, s: FakeDemandSource(), clock=FakeClock(EVENT_START))
    answers = iter([True, False])
    report = reconciler.reconcile_all(should_continue=lambda: next(answers, False))
    assert [o.name for o in report.outcomes] == ["p0"]


def test_a_cycle_longer_than_the_lease_keeps_it(kube: Any, api: Any) -> None:
    """Real clock, 2 s lease, a 3 s cycle: the renewer thread keeps the lease, so b cannot take over."""
    import threading
    import time

    from controller.operator.clock import SystemClock

    emu, url = kube
    create(api, deployment("slots-api", 4))
    create(api, scaling_policy("slots", policy_spec()))

    class SlowDemand(TraceDemand):
        def __call__(self, policy: Any, spec: Any) -> Any:
            time.sleep(3)  # a very slow metrics backend
            return super().__call__(policy, spec)

    lease = timedelta(seconds=2)
    a = make_operator(url, SystemClock(), SlowDemand(), identity="op-a", lease_duration=lease)
    b = make_operator(url, SystemClock(), TraceDemand(), identity="op-b", lease_duration=lease)
    runner = threading.Thread(target=a.loop.run, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 10
        while (_lease_or_none(emu) or {}).get("holderIdentity") != "op-a" and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(2.5)  # a is inside its 3 s cycle, past one lease duration
        assert b.loop.step() is None
        assert _lease(emu)["holderIdentity"] == "op-a"
    finally:
        a.loop.stop()
        runner.join(15)
    assert not runner.is_alive()
    assert b.loop.step() is not None  # released on stop: b takes over at once


def _lease_or_none(emu: Any) -> dict[str, Any] | None:
    lease = emu.get("coordination.k8s.io/v1", "leases", SYSTEM_NAMESPACE, "pitboss-operator")
    return None if lease is None else dict(lease["spec"])


@pytest.mark.parametrize("skew", [timedelta(seconds=12), timedelta(seconds=-12)], ids=["ahead", "behind"])
def test_a_skewed_follower_waits_one_lease_of_its_own_time(kube: Any, skew: timedelta) -> None:
    """Two operators on the emulator whose wall clocks are 12 s apart: expiry never reads renewTime.

    Ahead, the old rule (renewTime + leaseDuration < my now) took a healthy lease 4 s after a renewal;
    behind, it let a dead leader's lease stand 12 s too long. Here b takes over exactly one lease
    duration (of its own monotonic clock) after it last saw the Lease change, and the two fences
    are never open at the same time.
    """
    emu, url = kube
    base = FakeClock(datetime(2026, 11, 27, 12, tzinfo=UTC))
    a = make_operator(url, base, TraceDemand(), identity="op-a", lease_duration=LEASE)
    b = make_operator(url, OffsetClock(base, skew), TraceDemand(), identity="op-b", lease_duration=LEASE)
    assert a.loop.step() is not None and b.loop.step() is None
    for _ in range(6):  # a healthy leader renewing every 4 s; b looks just before each renewal
        base.advance(timedelta(seconds=4))
        assert b.loop.step() is None, "b took a healthy lease"
        assert a.loop.step() is not None
        assert not (a.loop.fence.permit() and b.loop.fence.permit())
    base.advance(timedelta(seconds=1))
    assert b.loop.step() is None  # b sees a's last renewal now: its lease clock starts here
    # a dies without releasing. b waits 15 s of its own time; a's fence closed after its 10 s renew deadline.
    for second in range(1, 15):
        base.advance(timedelta(seconds=1))
        assert b.loop.step() is None, f"b took over {second} s after the last change it saw"
        assert not (a.loop.fence.permit() and b.loop.fence.permit())
    assert not a.loop.fence.permit()
    base.advance(timedelta(seconds=1, milliseconds=1))
    assert b.loop.step() is not None
    assert _lease(emu)["holderIdentity"] == "op-b" and _lease(emu)["leaseTransitions"] == 1


def test_a_leader_that_cannot_renew_stops_writing_before_anyone_can_take_over(kube: Any, api: Any) -> None:
    """Every Lease write fails (API trouble): a keeps leading through its renew deadline, then fences itself.

    A human scales the target down in between: a would patch it back if it still wrote.
    """
    emu, url = kube
    create(api, deployment("slots-api", 1))
    create(api, scaling_policy("slots", policy_spec(minReplicas=2)))
    clock = FakeClock(EVENT_START - timedelta(hours=2))
    demand = TraceDemand()
    demand.default.down = True  # no metrics: the policy just holds minReplicas=2
    a = make_operator(url, clock, demand, identity="op-a", lease_duration=LEASE)
    b = make_operator(url, clock, demand, identity="op-b", lease_duration=LEASE)
    assert a.loop.step() is not None and b.loop.step() is None
    assert emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")["spec"]["replicas"] == 2
    emu.fail("PUT", r"/leases/pitboss-operator$", 503, times=None)
    for _ in range(4):  # t = 2..8 s: renewals fail, but a still holds a lease it renewed < 10 s ago
        clock.advance(timedelta(seconds=2))
        assert a.loop.step() is not None and a.loop.fence.permit()
        assert b.loop.step() is None
    clock.advance(timedelta(seconds=2))  # t = 10 s: renewDeadline passed
    assert a.loop.step() is None and not a.loop.fence.permit()
    client.AppsV1Api(api).patch_namespaced_deployment_scale("slots-api", NAMESPACE, {"spec": {"replicas": 1}})
    patches = len(emu.requests("PATCH", "/scale$"))
    for _ in range(3):  # t = 12..16 s: nobody may write; b's takeover PUT fails too
        clock.advance(timedelta(seconds=2))
        assert a.loop.step() is None and b.loop.step() is None
    assert len(emu.requests("PATCH", "/scale$")) == patches  # a wrote nothing once it could not prove its lease
    assert emu.get("apps/v1", "deployments", NAMESPACE, "slots-api")["spec"]["replicas"] == 1
    emu.clear_rules()
    report = b.loop.step()  # t = 16 s > 15 s since b saw the Lease change: b takes over and repairs
    assert report is not None and report.outcomes[0].scaled
    assert _lease(emu)["holderIdentity"] == "op-b"
