"""Three real `pitboss operator run --shards 3` processes on the emulator: kill -9 one, its shard moves on.

Each process has its own kubeconfig token, so the emulator (tests/kube/attributed.py) knows
which replica sent every write, and the manifests' RBAC is enforced for each token (the shard
Leases must be granted by name). Policies use ``metric.promql`` without a Prometheus, so every
cycle holds them at minReplicas: a status write and a /scale patch happen exactly when a policy
is decided anew. After the kill every policy's minReplicas is raised: the survivors decide their
own at once; the dead replica's are decided only by whoever takes its shard Leases once they
expire. The log must show that, and never one policy written by two replicas within one sync
period (the write fence: the old holder stops renewDeadline after its last renewal, the new one
starts a lease duration after it).
"""

from __future__ import annotations

import itertools
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from controller.operator.shards import shard_lease_name, shard_of
from tests.controller.operator.shard_cluster import GROUP, PLURAL, VERSION, holders, make_cluster, start_replica, wait
from tests.harness import stop_all
from tests.kube.attributed import AttributedEmulator, AttributedEmulatorThread, Write
from tests.kube.fixtures import (
    NAMESPACE,
    api_client_for,
    served,
)

SHARDS = 3
POLICIES = 30
LEASE_S = 8.0  # renewDeadline 5.3 s, retryPeriod 1.07 s (client-go's proportions)
SYNC_S = 2.0
REPLICAS = ("op-a", "op-b", "op-c")


@pytest.fixture
def akube() -> Iterator[tuple[AttributedEmulator, str]]:
    """``kube`` with every write attributed to its token."""
    yield from served(AttributedEmulatorThread())


def _raise_min_replicas(api: client.ApiClient) -> None:
    """Every policy's minReplicas 2 -> 3: each is decided anew (a /status and a /scale write) by its owner."""
    custom = client.CustomObjectsApi(api)
    for i in range(POLICIES):
        custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, f"p-{i:02d}",
                                              {"spec": {"minReplicas": 3}})


def _cluster(emu: AttributedEmulator, api: client.ApiClient) -> dict[str, str]:
    return make_cluster(emu, api, POLICIES, REPLICAS)


def _start(tmp_path: Path, url: str, name: str) -> subprocess.Popen[str]:
    return start_replica(tmp_path, url, name, shards=SHARDS, sync_s=SYNC_S, lease_s=LEASE_S)


def _holders(emu: AttributedEmulator) -> dict[int, str]:
    return holders(emu, SHARDS)


def _policies(emu: AttributedEmulator) -> list[dict[str, Any]]:
    return emu.list(f"{GROUP}/{VERSION}", PLURAL, NAMESPACE)


def _decided(emu: AttributedEmulator, generation: int) -> bool:
    items = _policies(emu)
    return len(items) == POLICIES and all(
        (p.get("status") or {}).get("observedGeneration") == generation for p in items)


def _writes_of(emu: AttributedEmulator, i: int) -> list[Write]:
    """Status writes of policy i and /scale patches of its Deployment, in the order they were answered."""
    writes = emu.writes_by(f"/scalingpolicies/p-{i:02d}/status") + emu.writes_by(f"/deployments/app-{i:02d}/scale")
    return sorted(writes, key=lambda w: w.at)


def test_a_killed_replicas_policies_are_decided_again_by_another_within_the_lease(
        akube: tuple[AttributedEmulator, str], tmp_path: Path) -> None:
    emu, url = akube
    api = api_client_for(url)
    uids = _cluster(emu, api)
    procs = {name: _start(tmp_path, url, name) for name in REPLICAS}
    try:
        wait("every policy decided and every shard held", lambda: _decided(emu, 1) and all(_holders(emu).values()),
              120)
        holders = _holders(emu)
        victim = holders[0]
        lost = {i for i, h in holders.items() if h == victim}
        theirs = [i for i in range(POLICIES) if shard_of(uids[f"p-{i:02d}"], SHARDS) in lost]
        assert 0 < len(theirs) < POLICIES
        # The victim decided its shard's policies (every policy was decided once, before the kill).
        assert any(w.token == f"token-{victim}" for i in theirs for w in _writes_of(emu, i))

        procs[victim].send_signal(signal.SIGKILL)  # no release: its Leases must expire
        procs[victim].wait(10)
        killed_at = time.monotonic()
        _raise_min_replicas(api)
        wait("every policy decided again", lambda: _decided(emu, 2), 4 * LEASE_S + 30)
        new_holders = _holders(emu)
        assert victim not in new_holders.values() and all(new_holders.values())

        firsts = []
        for i in theirs:
            after = [w for w in _writes_of(emu, i) if w.at > killed_at]
            assert after and {w.token for w in after} <= {f"token-{n}" for n in REPLICAS if n != victim}
            firsts.append(after[0].at - killed_at)
        takeover = max(firsts)
        # Kill -> expiry is at most one lease duration; the new holder then decides at once (woken on the gain).
        assert LEASE_S - 2 < takeover < 2 * LEASE_S, f"takeover {takeover:.1f}s"

        for i in range(POLICIES):
            writes = _writes_of(emu, i)
            for a, b in itertools.pairwise(writes):
                if a.token != b.token:
                    assert b.at - a.at > SYNC_S, f"p-{i:02d} written by {a.token} and {b.token} within one cycle"
        assert [w for w in emu.writes if w.status == 403] == []  # all within the manifests' RBAC
        _assert_every_app_scaled_to(emu, 3)
    finally:
        stop_all(procs.values())
        api.close()


def _lease_writes(emu: AttributedEmulator, shard: int) -> list[Write]:
    return emu.writes_by(f"/leases/{shard_lease_name('pitboss-operator', shard, SHARDS)}")


def test_a_replica_that_joins_late_gets_its_share_and_no_policy_has_two_writers(
        akube: tuple[AttributedEmulator, str], tmp_path: Path) -> None:
    """op-a and op-b take the three shards; op-c starts later: within a lease duration each holds one.

    The replica that held two releases one between its cycles (its fence closed first), and op-c
    takes it. In the emulator's write log every write of the moved shard's policies by the old
    holder comes before that holder's release of the shard's Lease, and every write by op-c after
    op-c's acquisition of it: never two writers for one policy at once.
    """
    emu, url = akube
    api = api_client_for(url)
    uids = _cluster(emu, api)
    early, late = REPLICAS[:2], REPLICAS[2]
    procs = {name: _start(tmp_path, url, name) for name in early}
    try:
        wait("every policy decided and every shard held by the first two",
              lambda: _decided(emu, 1) and set(_holders(emu).values()) == set(early), 120)
        before = _holders(emu)
        procs[late] = _start(tmp_path, url, late)
        wait("one shard each", lambda: sorted(_holders(emu).values()) == sorted(REPLICAS), 60)
        after = _holders(emu)
        (moved,) = [i for i, h in after.items() if h == late]
        old = f"token-{before[moved]}"
        assert list(before.values()).count(before[moved]) == 2  # taken from the replica that had two
        assert {i: h for i, h in after.items() if i != moved} == {i: h for i, h in before.items() if i != moved}

        _raise_min_replicas(api)  # everyone decides again: op-c must decide the moved shard's policies
        wait("every policy decided again", lambda: _decided(emu, 2), 60)

        lease = _lease_writes(emu, moved)
        acquired = next(w for w in lease if w.token == f"token-{late}")
        released = [w for w in lease if w.token == old and w.at < acquired.at][-1]
        joined = min(w.at for w in emu.writes if w.token == f"token-{late}")  # its membership slot
        theirs = [i for i in range(POLICIES) if shard_of(uids[f"p-{i:02d}"], SHARDS) == moved]
        assert theirs
        for i in theirs:
            writes = _writes_of(emu, i)
            assert {w.token for w in writes} <= {old, f"token-{late}"}
            assert all(w.at < released.at for w in writes if w.token == old), f"p-{i:02d}: old holder after release"
            assert all(w.at > acquired.at for w in writes if w.token == f"token-{late}")
            assert any(w.token == f"token-{late}" for w in writes)
        share = acquired.at - joined
        print(f"\njoin to fair share: {share:.2f}s (lease {LEASE_S:g}s, retry {LEASE_S * 2 / 15:.2f}s, "
              f"sync {SYNC_S:g}s); release to acquisition {acquired.at - released.at:.2f}s")
        assert share < LEASE_S, f"op-c took {share:.1f}s to get its share"
        assert [w for w in emu.writes if w.status == 403] == []  # the membership Leases are granted by name
        _assert_every_app_scaled_to(emu, 3)
    finally:
        stop_all(procs.values())
        api.close()


def _assert_every_app_scaled_to(emu: AttributedEmulator, replicas: int) -> None:
    got = [emu.get("apps/v1", "deployments", NAMESPACE, f"app-{i:02d}")["spec"]["replicas"] for i in range(POLICIES)]
    assert got == [replicas] * POLICIES
