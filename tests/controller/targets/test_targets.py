"""ScaleTarget adapters: the in-memory fake and the /scale adapter over the official client.

The Kubernetes adapter is exercised over HTTP against the strict emulator;
the fake is held to the same contract by the same table of cases.
"""

from __future__ import annotations

from typing import Any

import pytest

from controller.errors import RetryableError
from controller.targets.base import ScaleConflict, ScaleTarget, TargetForbidden, TargetKey, TargetNotFound
from controller.targets.fake import InMemoryScaleTarget
from controller.targets.kubernetes import KubernetesScaleTarget
from tests.kube.fixtures import NAMESPACE, api_client_for, create, deployment

WEB = TargetKey(NAMESPACE, "Deployment", "web")
DB = TargetKey(NAMESPACE, "StatefulSet", "db")


@pytest.fixture(params=["fake", "kubernetes"])
def target(request: pytest.FixtureRequest) -> tuple[ScaleTarget, Any]:
    if request.param == "fake":
        fake = InMemoryScaleTarget()
        fake.add(WEB, 2)
        fake.add(DB, 1)
        fake.add(TargetKey(NAMESPACE, "Deployment", "secret"), 1, forbidden=True)
        return fake, fake
    emu, url = request.getfixturevalue("kube")
    api = api_client_for(url)
    create(api, deployment("web", 2))
    create(api, deployment("db", 1, kind="StatefulSet", labels={"app": "db"}))
    create(api, deployment("secret", 1, labels={"app": "secret"}))
    emu.deny("GET", r"/deployments/secret/scale$")
    return KubernetesScaleTarget(api), emu


def test_protocol(target: tuple[ScaleTarget, Any]) -> None:
    assert isinstance(target[0], ScaleTarget)


def test_read_and_set(target: tuple[ScaleTarget, Any]) -> None:
    t, _ = target
    state = t.get_scale(WEB)
    assert (state.replicas, state.ready_replicas) == (2, 2) and state.resource_version
    after = t.set_replicas(WEB, 5, state.resource_version)
    assert after.replicas == 5
    assert t.get_scale(WEB).replicas == 5 and t.get_scale(WEB).ready_replicas == 5
    assert t.set_replicas(DB, 3).replicas == 3


def test_stale_resource_version_conflicts(target: tuple[ScaleTarget, Any]) -> None:
    t, _ = target
    stale = t.get_scale(WEB).resource_version
    t.set_replicas(WEB, 4)
    with pytest.raises(ScaleConflict) as err:
        t.set_replicas(WEB, 6, stale)
    assert err.value.retryable
    assert t.get_scale(WEB).replicas == 4


@pytest.mark.parametrize(
    ("key", "error"),
    [
        (TargetKey(NAMESPACE, "Deployment", "nope"), TargetNotFound),
        (TargetKey("elsewhere", "StatefulSet", "db"), TargetNotFound),
        (TargetKey(NAMESPACE, "Deployment", "secret"), TargetForbidden),
    ],
)
def test_missing_and_forbidden(target: tuple[ScaleTarget, Any], key: TargetKey, error: type[Exception]) -> None:
    with pytest.raises(error) as exc:
        target[0].get_scale(key)
    assert key.name in str(exc.value) and not getattr(exc.value, "retryable", True)


def test_negative_replicas_rejected(target: tuple[ScaleTarget, Any]) -> None:
    with pytest.raises(ValueError, match="replicas"):
        target[0].set_replicas(WEB, -1)


def test_server_errors_are_retryable(kube: Any) -> None:
    emu, url = kube
    api = api_client_for(url)
    create(api, deployment("web", 2))
    emu.fail("GET", r"/deployments/web/scale$", 503)
    with pytest.raises(RetryableError, match="503"):
        KubernetesScaleTarget(api).get_scale(WEB)


def test_unreachable_api_is_retryable() -> None:
    api = api_client_for("http://127.0.0.1:9")  # discard port: connection refused
    with pytest.raises(RetryableError, match="cannot reach"):
        KubernetesScaleTarget(api).get_scale(WEB)


def test_unknown_kind_is_not_found_and_says_so(kube: Any) -> None:
    target = KubernetesScaleTarget(api_client_for(kube[1]))
    with pytest.raises(TargetNotFound, match=r"the API apps/v1 serves no kind Gadget"):
        target.get_scale(TargetKey(NAMESPACE, "Gadget", "x"))
    with pytest.raises(TargetNotFound, match=r"postgresql\.cnpg\.io/v1 is not served \(is its CRD installed\?\)"):
        target.get_scale(TargetKey(NAMESPACE, "Cluster", "pg", "postgresql.cnpg.io/v1"))
