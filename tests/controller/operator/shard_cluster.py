"""A sharded operator cluster of real processes on the attributed emulator, for tests and the benchmark.

``make_cluster`` creates the Deployments and ScalingPolicies and enforces the
manifests' RBAC per replica token; ``start_replica`` runs one
``pitboss operator run --shards N`` process; ``holders`` reads who holds each
shard Lease; ``wait`` polls a condition. Used by
tests/controller/operator/test_shards_processes.py and
benchmarks/bench_shard_join.py.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from kubernetes import client

from controller.operator.shards import shard_lease_name
from tests.conftest import REPO
from tests.controller.operator.harness import min_replicas_fleet
from tests.controller.operator.test_rbac import _roles
from tests.kube.attributed import AttributedEmulator
from tests.kube.fixtures import NAMESPACE, SYSTEM_NAMESPACE, write_kubeconfig

GROUP, VERSION, PLURAL = "pitboss.dev", "v1alpha1", "scalingpolicies"


def make_cluster(emu: AttributedEmulator, api: client.ApiClient, policies: int,
                 replicas: Iterable[str]) -> dict[str, str]:
    """``policies`` Deployments ``app-NN`` with a policy ``p-NN`` each, RBAC for every replica's token; uid by name."""
    min_replicas_fleet(api, policies)
    for name in replicas:
        emu.enforce_rbac(f"token-{name}", _roles())
    return {p["metadata"]["name"]: p["metadata"]["uid"] for p in emu.list(f"{GROUP}/{VERSION}", PLURAL, NAMESPACE)}


def start_replica(root: Path, url: str, name: str, *, shards: int, sync_s: float,
                  lease_s: float) -> subprocess.Popen[str]:
    """One operator process with its own token and incident log under ``root/name`` (its stderr there too)."""
    home = root / name
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    return subprocess.Popen(
        [str(Path(sys.executable).parent / "pitboss"), "operator", "run",
         "--kubeconfig", str(write_kubeconfig(home, url, token=f"token-{name}")),
         "--sync-period", f"{sync_s:g}s", "--lease-namespace", SYSTEM_NAMESPACE, "--identity", name,
         "--shards", str(shards), "--lease-duration", f"{lease_s:g}s",
         "--incidents-db", str(home / "incidents.db")],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(home / "stderr.log", "w"), text=True,
    )


def holders(emu: AttributedEmulator, shards: int) -> dict[int, str]:
    """Shard -> the identity holding its Lease ("" when free)."""
    out = {}
    for i in range(shards):
        lease = emu.get("coordination.k8s.io/v1", "leases", SYSTEM_NAMESPACE,
                        shard_lease_name("pitboss-operator", i, shards))
        out[i] = str(((lease or {}).get("spec") or {}).get("holderIdentity") or "")
    return out


def wait(what: str, cond: Callable[[], bool], timeout: float) -> None:
    """Poll ``cond`` every 0.2 s; AssertionError naming ``what`` after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout:g}s waiting for {what}")
