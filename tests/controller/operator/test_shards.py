"""Sharding: stable hashing, fair shares of the shard Leases, takeover after expiry, per-cycle fencing.

The elector rounds run against ``InMemoryLeaseApi`` (controller.operator.fakes: the same 409 on a
stale resourceVersion the emulator gives, without HTTP) on one fake clock, so every timing is exact;
the real processes on the emulator are in test_shards_processes.py.
"""

from __future__ import annotations

import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.operator.clock import FakeClock
from controller.operator.fakes import InMemoryLeaseApi, InMemoryPolicyStore
from controller.operator.kube import PolicyObject
from controller.operator.leader import Election
from controller.operator.shards import ShardedElector, check_shards, quotas, shard_lease_name, shard_of

NS = "pitboss-system"
LEASE = timedelta(seconds=15)
RETRY = timedelta(seconds=2)


@pytest.mark.parametrize(("uid", "shards", "expected"), [
    ("3f2a8c1e-0000-4000-8000-000000000001", 1, 0),
    ("a", 3, 2),
    ("b", 3, 2),
    ("c", 3, 0),
    ("policy-uid", 7, 4),
])
def test_shard_of_is_blake2b_of_the_uid_mod_n(uid: str, shards: int, expected: int) -> None:
    # Fixed values: the same in every process (Python's hash() of a str is salted per process).
    assert shard_of(uid, shards) == expected


def test_shard_of_spreads_uids_evenly() -> None:
    counts = Counter(shard_of(str(uuid.UUID(int=i * 7919 + 13)), 3) for i in range(3000))
    assert set(counts) == {0, 1, 2}
    assert all(900 <= c <= 1100 for c in counts.values()), counts


@pytest.mark.parametrize(("shard", "shards", "name"), [
    (0, 1, "pitboss-operator"),  # one shard: today's Lease, unchanged
    (0, 3, "pitboss-operator-shard-0"),
    (2, 3, "pitboss-operator-shard-2"),
])
def test_shard_lease_names(shard: int, shards: int, name: str) -> None:
    assert shard_lease_name("pitboss-operator", shard, shards) == name


@pytest.mark.parametrize("bad", [0, -1, 17])
def test_a_shard_count_out_of_range_names_the_field(bad: int) -> None:
    with pytest.raises(ValueError, match=r"^shards: expected 1\.\.16"):
        check_shards(bad)


def _replicas(api: InMemoryLeaseApi, clock: FakeClock, names: list[str], shards: int = 3) -> list[ShardedElector]:
    return [ShardedElector(api, clock, Election.of(n, LEASE, retry_period=RETRY), namespace=NS, shards=shards)
            for n in names]


def _rounds(clock: FakeClock, replicas: list[ShardedElector], seconds: float) -> None:
    """Every replica runs a round each retry period for ``seconds`` of fake time."""
    end = clock.monotonic() + seconds
    while clock.monotonic() < end:
        for r in replicas:
            r.try_acquire_or_renew()
        clock.advance(RETRY)


def _holders(api: InMemoryLeaseApi, shards: int = 3) -> list[str]:
    out = []
    for i in range(shards):
        lease = api.get(NS, shard_lease_name("pitboss-operator", i, shards))
        out.append(str(((lease or {}).get("spec") or {}).get("holderIdentity") or ""))
    return out


def test_replicas_started_together_end_with_one_shard_each() -> None:
    api, clock = InMemoryLeaseApi(), FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    replicas = _replicas(api, clock, ["op-a", "op-b", "op-c"])
    _rounds(clock, replicas, 40)
    assert sorted(_holders(api)) == ["op-a", "op-b", "op-c"]
    held = [r.held() for r in replicas]
    assert all(len(h) == 1 for h in held)
    assert held[0] | held[1] | held[2] == {0, 1, 2}
    assert all(r.live == {"op-a", "op-b", "op-c"} for r in replicas)


def test_a_lone_replica_takes_one_shard_then_all_after_one_lease_duration() -> None:
    api, clock = InMemoryLeaseApi(), FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    (a,) = _replicas(api, clock, ["op-a"])
    _rounds(clock, [a], LEASE.total_seconds() - 1)
    assert len(a.held()) == 1  # still looking for others' claims
    _rounds(clock, [a], 4)
    assert a.held() == {0, 1, 2}


def test_the_shard_of_a_dead_replica_is_taken_over_after_expiry_and_not_before() -> None:
    api, clock = InMemoryLeaseApi(), FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    a, b, c = _replicas(api, clock, ["op-a", "op-b", "op-c"])
    _rounds(clock, [a, b, c], 40)
    (orphan,) = c.held()
    # c dies (kill -9: no release). Until its Lease has not changed for a lease duration, nobody takes it.
    _rounds(clock, [a, b], LEASE.total_seconds() - RETRY.total_seconds())
    assert _holders(api)[orphan] == "op-c"
    _rounds(clock, [a, b], 2 * RETRY.total_seconds())
    assert _holders(api)[orphan] in ("op-a", "op-b")
    assert a.held() | b.held() == {0, 1, 2} and not a.held() & b.held()
    assert sorted(len(r.held()) for r in (a, b)) == [1, 2]  # fair share of 3 over 2 live replicas


def test_the_taking_replica_is_woken_to_reconcile_at_once() -> None:
    api, clock = InMemoryLeaseApi(), FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    (a,) = _replicas(api, clock, ["op-a"])
    woken: list[float] = []
    a.on_gain = lambda: woken.append(clock.monotonic())
    _rounds(clock, [a], 20)
    assert len(woken) == 2  # the first shard, then the other two after the first lease duration


def test_released_shards_are_taken_at_once() -> None:
    api, clock = InMemoryLeaseApi(), FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    a, b = _replicas(api, clock, ["op-a", "op-b"], shards=2)
    _rounds(clock, [a, b], 30)
    assert len(a.held()) == len(b.held()) == 1
    a.release()
    assert _holders(api, 2).count("op-b") == 1 and "op-a" not in _holders(api, 2)
    _rounds(clock, [b], 3 * RETRY.total_seconds())  # well within a lease duration
    assert b.held() == {0, 1}


@pytest.mark.parametrize(("shards", "held", "live", "expected"), [
    (3, {"a": 2, "b": 1}, "abc", {"a": 1, "b": 1, "c": 1}),  # c joined: a gives one up
    (4, {"a": 2, "b": 2}, "abc", {"a": 2, "b": 1, "c": 1}),  # ties by identity: only b gives one up
    (5, {"a": 3, "b": 2}, "abc", {"a": 2, "b": 2, "c": 1}),
    (5, {"b": 2, "c": 2, "a": 1}, "abc", {"b": 2, "c": 2, "a": 1}),  # already even: nothing moves
    (3, {"b": 1, "c": 1}, "bc", {"b": 2, "c": 1}),  # a died: its orphan goes to the first by identity
    (3, {"a": 1, "b": 1, "c": 1}, "abcd", {"a": 1, "b": 1, "c": 1, "d": 0}),  # more replicas than shards
])
def test_quotas_split_the_shards_as_evenly_as_it_goes(shards: int, held: dict[str, int], live: str,
                                                      expected: dict[str, int]) -> None:
    assert quotas(shards, Counter(held), live) == expected


def test_a_replica_that_joins_late_gets_its_share_within_two_rounds() -> None:
    api, clock = InMemoryLeaseApi(), FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    a, b = _replicas(api, clock, ["op-a", "op-b"])
    _rounds(clock, [a, b], 40)
    assert sorted(len(r.held()) for r in (a, b)) == [1, 2]
    (c,) = _replicas(api, clock, ["op-c"])
    before = {r.identity: r.held() for r in (a, b)}
    _rounds(clock, [c, a, b], 2 * RETRY.total_seconds())  # c's slot is seen, the surplus freed, then taken
    assert [len(r.held()) for r in (a, b, c)] == [1, 1, 1]
    assert a.held() | b.held() | c.held() == {0, 1, 2}
    assert a.released + b.released == 1  # one shard moved, from the replica that had two
    assert all(r.held() <= before[r.identity] for r in (a, b))  # nothing moved between a and b
    assert all(r.live == {"op-a", "op-b", "op-c"} for r in (a, b, c))
    _rounds(clock, [c, a, b], 60)  # and it stays so
    assert [len(r.held()) for r in (a, b, c)] == [1, 1, 1] and a.released + b.released == 1


def test_a_replica_never_releases_a_shard_during_a_cycle() -> None:
    api, clock = InMemoryLeaseApi(), FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    (a,) = _replicas(api, clock, ["op-a"], shards=2)
    _rounds(clock, [a], 20)
    (b,) = _replicas(api, clock, ["op-b"], shards=2)
    with a.cycle() as writing:
        assert writing == {0, 1}
        _rounds(clock, [b, a], 5 * RETRY.total_seconds())  # a sees b, its quota drops to 1: it keeps both
        assert a.quota == 1 and a.held() == {0, 1} and b.held() == set() and a.holds_lease()
    assert len(a.rebalance()) == 1  # the cycle ended (the loop calls this after each cycle)
    assert len(a.held()) == 1 and a.holds_lease()
    _rounds(clock, [b, a], RETRY.total_seconds())
    assert len(b.held()) == 1 and not a.held() & b.held()


def _policy(uid: str) -> PolicyObject:
    return PolicyObject("casino", f"p-{uid}", uid, 1, {})


def test_in_a_cycle_losing_one_shard_fences_every_write_until_the_next_cycle() -> None:
    api, clock = InMemoryLeaseApi(), FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    (a,) = _replicas(api, clock, ["op-a"], shards=2)
    _rounds(clock, [a], 20)
    assert a.held() == {0, 1}
    with a.cycle() as writing:
        assert writing == {0, 1} and a.holds_lease()
        # Someone else writes shard 1's Lease (a took too long to renew it and lost a race): the next
        # renewal of shard 1 meets a 409 and finds a live holder.
        lease = api.get(NS, "pitboss-operator-shard-1")
        assert lease is not None
        spec = dict(lease["spec"], holderIdentity="op-z")
        api.replace(NS, "pitboss-operator-shard-1", lease["metadata"]["resourceVersion"], spec)
        a.try_acquire_or_renew()
        assert a.held() == {0}
        assert not a.holds_lease()  # shard 0 is still held, but this cycle also wrote for shard 1
    assert a.holds_lease()  # between cycles: some shard is held
    with a.cycle() as writing:
        assert writing == {0} and a.holds_lease()
        mine = next(u for u in (str(i) for i in range(100)) if shard_of(u, 2) == 0)
        theirs = next(u for u in (str(i) for i in range(100)) if shard_of(u, 2) == 1)
        assert a.owns(_policy(mine)) and not a.owns(_policy(theirs))


def test_a_replica_that_cannot_renew_writes_nothing_after_the_renew_deadline() -> None:
    api, clock = InMemoryLeaseApi(), FakeClock(datetime(2030, 1, 1, tzinfo=UTC))
    (a,) = _replicas(api, clock, ["op-a"], shards=2)
    _rounds(clock, [a], 20)
    with a.cycle():
        assert a.holds_lease()
        clock.advance(a.renew_deadline)  # the renewer thread stalled: no round for renewDeadline
        assert not a.holds_lease()


def test_the_reconciler_works_only_on_owned_policies() -> None:
    from controller.incidents.events import RecordingEventRecorder
    from controller.operator.reconcile import Reconciler
    from controller.targets.fake import InMemoryScaleTarget

    store = InMemoryPolicyStore()
    for i in range(20):
        store.add_policy("casino", f"p{i}", {})  # an empty spec: InvalidSpec, decided without any source

    def no_demand(policy: PolicyObject, spec: object) -> object:
        raise AssertionError("an invalid spec reads no demand")

    owned = {p.name for p in store.list_policies(None) if shard_of(p.uid, 2) == 1}
    reconciler = Reconciler(store=store, targets=InMemoryScaleTarget(), recorder=RecordingEventRecorder(),
                            demand=no_demand,  # type: ignore[arg-type]
                            clock=FakeClock(datetime(2030, 1, 1, tzinfo=UTC)), owns=lambda p: shard_of(p.uid, 2) == 1)
    report = reconciler.reconcile_all()
    assert {o.name for o in report.outcomes} == owned and 0 < len(owned) < 20
    assert {o.reason for o in report.outcomes} == {"InvalidSpec"}


def test_the_manifests_grant_every_shard_and_membership_lease_by_name() -> None:
    import yaml

    from controller.operator.shards import MAX_SHARDS, member_lease_name
    from tests.conftest import REPO

    docs = [d for d in yaml.safe_load_all((REPO / "manifests/base/rbac.yaml").read_text()) if d]
    role = next(d for d in docs if d["kind"] == "Role" and d["metadata"]["name"] == "pitboss-operator-leader-election")
    names = {n for rule in role["rules"] for n in rule.get("resourceNames") or []}
    wanted = {shard_lease_name("pitboss-operator", i, n) for n in range(1, MAX_SHARDS + 1) for i in range(n)}
    members = {member_lease_name("pitboss-operator", j) for j in range(MAX_SHARDS)}
    assert names == wanted | members


NEEDS_LOOP = "needs leader election and the loop (not --once or --no-leader-election)"


@pytest.mark.parametrize(("flags", "detail"), [
    (["--shards", "0"], "expected 1..16, got 0"),
    (["--shards", "17"], "expected 1..16, got 17"),
    (["--shards", "3", "--once"], NEEDS_LOOP),
    (["--shards", "3", "--no-leader-election"], NEEDS_LOOP),
])
def test_run_rejects_bad_shards_in_one_line(tmp_path: Path, flags: list[str], detail: str) -> None:
    from typer.testing import CliRunner

    from cli.app import app
    from tests.kube.fixtures import write_kubeconfig

    kubeconfig = write_kubeconfig(tmp_path, "http://127.0.0.1:9")  # never contacted: the flags fail first
    result = CliRunner().invoke(app, ["operator", "run", "--kubeconfig", str(kubeconfig), *flags],
                                env={"KUBERNETES_SERVICE_HOST": ""})
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert line == f"error: field '--shards': {detail}", line
