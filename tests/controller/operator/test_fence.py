"""The write fence and optimistic concurrency on the emulator, through the official client over HTTP.

SIGTERM is sent to a real ``pitboss operator run`` process (kubeconfig pointing at the emulator,
the manifests' RBAC enforced) while one of its /scale patches is held in flight by the emulator:
nothing is written after it, and the Lease is released last. Status writes carry the
resourceVersion they were computed from.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from kubernetes import client

from controller.operator.clock import FakeClock
from controller.operator.fence import Fence, FencedScaleTarget, NotLeader
from controller.operator.kube import PolicyObject
from controller.operator.resources import ScalingPolicySpec
from controller.sources.base import DemandSource
from controller.targets.base import TargetKey
from controller.targets.fake import InMemoryScaleTarget
from tests.conftest import REPO
from tests.controller.operator.harness import EVENT_START, TraceDemand, make_operator, min_replicas_fleet, policy_spec
from tests.controller.operator.test_rbac import TOKEN, _roles
from tests.kube.fixtures import NAMESPACE, SYSTEM_NAMESPACE, create, deployment, scaling_policy, write_kubeconfig

SCALE = r"/deployments/[^/]+/scale$"
POLICIES = ("pitboss.dev/v1alpha1", "scalingpolicies")


def test_a_closed_fence_refuses_the_write_and_says_why() -> None:
    target = InMemoryScaleTarget()
    key = TargetKey(NAMESPACE, "Deployment", "web")
    target.add(key, 2)
    fence = Fence()
    fenced = FencedScaleTarget(target, fence)
    assert fenced.set_replicas(key, 3).replicas == 3
    fence.close("shutting down")
    try:
        fenced.set_replicas(key, 4)
    except NotLeader as exc:
        assert "deployment/web in casino /scale: not written: shutting down" in str(exc)
    else:
        raise AssertionError("the closed fence let a write through")
    assert target.get_scale(key).replicas == 3 and fence.refused == 1


def test_a_status_write_computed_from_a_stale_read_is_refused(kube: Any, api: Any) -> None:
    """A person edits the spec while the loop is between its read and its status write: 409, nothing overwritten."""
    emu, url = kube
    create(api, deployment("slots-api", 4))
    create(api, scaling_policy("slots", policy_spec(forecast={"model": "seasonal-naive", "step": "1m",
                                                              "history": "3d", "horizon": "1h"})))

    class EditMidCycle(TraceDemand):
        edited = False

        def __call__(self, policy: PolicyObject, spec: ScalingPolicySpec) -> DemandSource:
            if not self.edited:
                self.edited = True
                client.CustomObjectsApi(api).patch_namespaced_custom_object(
                    "pitboss.dev", "v1alpha1", NAMESPACE, "scalingpolicies", "slots", {"spec": {"maxReplicas": 30}},
                    _content_type="application/merge-patch+json")
            return super().__call__(policy, spec)

    op = make_operator(url, FakeClock(EVENT_START - timedelta(hours=2)), EditMidCycle(), leader_election=False)
    op.loop.step()
    writes = emu.requests("PATCH", "/scalingpolicies/slots/status$")
    assert [w.status for w in writes] == [409]  # computed from generation 1, refused
    assert (emu.get(*POLICIES, NAMESPACE, "slots") or {}).get("status") in (None, {})
    op.loop.step()  # the next cycle reads generation 2 and writes its status
    status = emu.get(*POLICIES, NAMESPACE, "slots")["status"]
    assert status["observedGeneration"] == 2


def test_sigterm_mid_cycle_stops_every_write_then_releases_the_lease(kube: Any, api: Any, tmp_path: Path) -> None:
    """`pitboss operator run` as a process, serial writes; SIGTERM while its 4th of 12 /scale patches is on the wire."""
    emu, url = kube
    policies = 12
    min_replicas_fleet(api, policies)  # no metrics: each policy raises its target to minReplicas
    emu.enforce_rbac(TOKEN, _roles())
    held = emu.stall("PATCH", SCALE, skip=3)
    env = {k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "pitboss"), "operator", "run",
         "--kubeconfig", str(write_kubeconfig(tmp_path, url, token=TOKEN)), "--sync-period", "1h",
         "--lease-namespace", SYSTEM_NAMESPACE, "--identity", "op-proc",
         "--incidents-db", str(tmp_path / "incidents.db"),
         "--write-concurrency", "1"],  # one write at a time: the 4th is the last (test_writes.py: concurrent)
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert held.entered.wait(90), "the 4th /scale patch never arrived"
        proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)  # the handler runs now, or as soon as the main thread is back from the held request
        held.release()
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert held.arrived == 4 and len(emu.requests("PATCH", SCALE)) == 4  # the one in flight, nothing after it
    assert "write fence closed: shutting down" in err
    log = list(emu.log)
    last_scale = max(i for i, r in enumerate(log) if r.method == "PATCH" and "/scale" in r.path)
    writes_after = [f"{r.method} {r.path}" for r in log[last_scale + 1:]
                    if r.method in ("POST", "PUT", "PATCH", "DELETE") and "/leases/" not in r.path]
    assert writes_after == []  # no /status, no Event once the fence closed
    releases = [i for i, r in enumerate(log) if r.method == "PUT" and "/leases/" in r.path
                and (r.body or {}).get("spec", {}).get("holderIdentity") == ""]
    assert releases and releases[-1] > last_scale  # the Lease goes last
    assert [r for r in log if r.status == 403] == []  # all within the manifests' RBAC
    replicas = [emu.get("apps/v1", "deployments", NAMESPACE, f"app-{i:02d}")["spec"]["replicas"]
                for i in range(policies)]
    assert replicas.count(2) == 4 and replicas.count(1) == policies - 4
