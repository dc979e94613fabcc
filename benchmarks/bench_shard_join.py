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
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

LEASE_S = 15.0  # the operator's defaults: lease 15 s, renew deadline 10 s, retry 2 s, sync 15 s
SYNC_S = 15.0
SHARDS = 3


def one_run(policies: int) -> tuple[float, float, int]:
    """(join -> share s, release -> acquired s, old holder's writes after its release)."""
    from controller.operator.shards import shard_lease_name, shard_of
    from tests.controller.operator.shard_cluster import holders, make_cluster, start_replica, wait
    from tests.harness import stop_all
    from tests.kube.attributed import AttributedEmulatorThread
    from tests.kube.fixtures import api_client_for, served

    gen = served(AttributedEmulatorThread())
    emu, url = next(gen)
    api = api_client_for(url)
    tmp = tempfile.TemporaryDirectory(prefix="bench-join-")
    procs: dict[str, subprocess.Popen[str]] = {}

    def start(name: str) -> None:
        procs[name] = start_replica(Path(tmp.name), url, name, shards=SHARDS, sync_s=SYNC_S, lease_s=LEASE_S)

    try:
        uids = make_cluster(emu, api, policies, ("op-a", "op-b", "op-c"))
        start("op-a")
        start("op-b")
        wait("the first two holding every shard", lambda: set(holders(emu, SHARDS).values()) == {"op-a", "op-b"},
             4 * LEASE_S + 30)
        before = holders(emu, SHARDS)
        start("op-c")
        wait("one shard each", lambda: sorted(holders(emu, SHARDS).values()) == ["op-a", "op-b", "op-c"],
             4 * LEASE_S + 30)
        (moved,) = [i for i, h in holders(emu, SHARDS).items() if h == "op-c"]
        old = f"token-{before[moved]}"
        lease = emu.writes_by(f"/leases/{shard_lease_name('pitboss-operator', moved, SHARDS)}")
        acquired = next(w for w in lease if w.token == "token-op-c")
        released = [w for w in lease if w.token == old and w.at < acquired.at][-1]
        joined = min(w.at for w in emu.writes if w.token == "token-op-c")
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
