"""Benchmark: how long a replica that joins late waits for its share of the shards.

Two real ``pitboss operator run --shards 3`` processes (default 15 s lease and sync
period, their own tokens, the manifests' RBAC enforced per token) take the three
shards of ``--policies`` policies on the strict emulator (tests/kube, every write
attributed to its token: tests/kube/attributed.py). A third starts; the replica
holding two shards sees its membership Lease, releases one between its cycles, and
the joiner takes it. From the emulator's write log, per run:

* join -> share: the joiner's first write (its membership Lease) to its first write
  of a shard Lease (the acquisition);
* release -> acquired: the old holder's release of that Lease to the acquisition;
* old writes after release: writes of the moved shard's policies by the old holder
  after its release (must be 0: never two writers at once).

Policies use ``metric.promql`` without a Prometheus (they hold at minReplicas; no
fits). Goal: the share within one lease duration. The machine is shared: absolute
seconds are noisy, the bound is what counts.

Run: python benchmarks/bench_shard_join.py [--runs 3] [--policies 60]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

LEASE_S = 15.0  # the operator's defaults: lease 15 s, renew deadline 10 s, retry 2 s, sync 15 s
SYNC_S = 15.0
SHARDS = 3


def _wait(what: str, cond: Callable[[], bool], timeout: float) -> None:
    end = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > end:
            raise SystemExit(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(0.2)


def one_run(policies: int) -> tuple[float, float, int]:
    """(join -> share s, release -> acquired s, old holder's writes after its release)."""
    from controller.operator.shards import shard_lease_name, shard_of
    from tests.controller.operator.test_rbac import _roles
    from tests.harness import stop_all
    from tests.kube.attributed import AttributedEmulatorThread
    from tests.kube.fixtures import (
        NAMESPACE,
        SYSTEM_NAMESPACE,
        api_client_for,
        create,
        deployment,
        scaling_policy,
        served,
        write_kubeconfig,
    )

    gen = served(AttributedEmulatorThread())
    emu, url = next(gen)
    api = api_client_for(url)
    tmp = tempfile.TemporaryDirectory(prefix="bench-join-")
    procs: dict[str, subprocess.Popen[bytes]] = {}
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}

    def start(name: str) -> None:
        home = Path(tmp.name) / name
        home.mkdir()
        procs[name] = subprocess.Popen(
            [str(Path(sys.executable).parent / "pitboss"), "operator", "run",
             "--kubeconfig", str(write_kubeconfig(home, url, token=f"token-{name}")),
             "--sync-period", f"{SYNC_S:g}s", "--lease-duration", f"{LEASE_S:g}s", "--shards", str(SHARDS),
             "--lease-namespace", SYSTEM_NAMESPACE, "--identity", name, "--incidents-db", str(home / "i.db")],
            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def holders() -> dict[int, str]:
        out = {}
        for i in range(SHARDS):
            lease = emu.get("coordination.k8s.io/v1", "leases", SYSTEM_NAMESPACE,
                            shard_lease_name("pitboss-operator", i, SHARDS))
            out[i] = str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")
        return out

    try:
        for i in range(policies):
            create(api, deployment(f"app-{i:03d}", 1))
            create(api, scaling_policy(f"p-{i:03d}", {
                "targetRef": {"kind": "Deployment", "name": f"app-{i:03d}"},
                "metric": {"promql": "sum(rate(casino_http_requests_total[1m]))"},
                "capacityPerReplica": 100, "minReplicas": 2, "maxReplicas": 5}))
        for name in ("op-a", "op-b", "op-c"):
            emu.enforce_rbac(f"token-{name}", _roles())
        start("op-a")
        start("op-b")
        _wait("the first two holding every shard", lambda: set(holders().values()) == {"op-a", "op-b"},
              4 * LEASE_S + 30)
        before = holders()
        start("op-c")
        _wait("one shard each", lambda: sorted(holders().values()) == ["op-a", "op-b", "op-c"], 4 * LEASE_S + 30)
        (moved,) = [i for i, h in holders().items() if h == "op-c"]
        old = f"token-{before[moved]}"
        lease = emu.writes_by(f"/leases/{shard_lease_name('pitboss-operator', moved, SHARDS)}")
        acquired = next(w for w in lease if w.token == "token-op-c")
        released = [w for w in lease if w.token == old and w.at < acquired.at][-1]
        joined = min(w.at for w in emu.writes if w.token == "token-op-c")
        uids = {p["metadata"]["name"]: p["metadata"]["uid"]
                for p in emu.list("pitboss.dev/v1alpha1", "scalingpolicies", NAMESPACE)}
        theirs = {n for n, uid in uids.items() if shard_of(uid, SHARDS) == moved}
        late = [w for w in emu.writes if w.token == old and w.at > released.at and w.status < 300
                and any(f"/scalingpolicies/{n}/" in w.path for n in theirs)]
        return acquired.at - joined, acquired.at - released.at, len(late)
    finally:
        stop_all(procs.values())
        api.close()
        gen.close()
        tmp.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--policies", type=int, default=60)
    args = parser.parse_args()
    console = Console()
    table = Table(title=f"a third replica joins two that hold {SHARDS} shards (lease {LEASE_S:g} s, "
                        f"sync {SYNC_S:g} s, {args.policies} policies)")
    for col in ("run", "join -> share s", "release -> acquired s", "old writes after release",
                "goal: share <= lease"):
        table.add_column(col, justify="right")
    shares = []
    for run in range(1, args.runs + 1):
        share, gap, late = one_run(args.policies)
        shares.append(share)
        table.add_row(str(run), f"{share:.2f}", f"{gap:.2f}", str(late),
                      "yes" if share <= LEASE_S and late == 0 else "NO")
    table.add_row("max", f"{max(shares):.2f}", "", "", "yes" if max(shares) <= LEASE_S else "NO")
    console.print(table)


if __name__ == "__main__":
    main()
