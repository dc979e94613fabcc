"""The Kubernetes ScaleTarget: the /scale subresource through the official client.

Reads ``deployments/scale`` (or ``statefulsets/scale``) for spec and observed
replicas plus the resourceVersion, ``deployments/status`` for ready replicas,
and writes replicas with a patch of /scale that carries the resourceVersion
as a precondition (a stale one answers 409). That is all the RBAC it needs:
get/patch on the scale subresources and get on the status subresources,
never the whole workload. Called by the reconcile loop
(``controller.operator.loop``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from controller.errors import PermanentError, RetryableError
from controller.targets.base import ScaleConflict, ScaleState, TargetForbidden, TargetKey, TargetNotFound

T = TypeVar("T")
KINDS = ("Deployment", "StatefulSet")


def api_error(exc: ApiException, what: str) -> Exception:
    """Map an ApiException to the Pitboss error vocabulary (403/404 permanent, 409 conflict)."""
    status = getattr(exc, "status", None) or 0
    reason = (getattr(exc, "reason", "") or "").strip()
    if status == 404:
        return TargetNotFound(f"{what}: not found (404)")
    if status == 403:
        return TargetForbidden(f"{what}: forbidden (403) {reason}".rstrip())
    if status == 409:
        return ScaleConflict(f"{what}: conflict (409), the object changed since it was read")
    if status in (400, 415, 422):
        return PermanentError(f"{what}: rejected by the API server ({status}) {reason}".rstrip())
    return RetryableError(f"{what}: API server answered {status} {reason}".rstrip())


def call_api(fn: Callable[..., T], what: str, *args: Any, **kwargs: Any) -> T:
    """Call the client, translating its exceptions to Pitboss errors."""
    try:
        return fn(*args, **kwargs)
    except ApiException as exc:
        raise api_error(exc, what) from exc
    except (HTTPError, OSError) as exc:
        raise RetryableError(f"{what}: cannot reach the API server: {exc}") from exc


class KubernetesScaleTarget:
    """ScaleTarget over apps/v1 /scale; ``read_ready`` also reads /status for readyReplicas."""

    def __init__(self, api_client: client.ApiClient, *, read_ready: bool = True) -> None:
        self.apps = client.AppsV1Api(api_client)
        self.read_ready = read_ready

    def _methods(self, kind: str) -> tuple[Callable[..., Any], Callable[..., Any], Callable[..., Any]]:
        if kind == "Deployment":
            return (
                self.apps.read_namespaced_deployment_scale,
                self.apps.patch_namespaced_deployment_scale,
                self.apps.read_namespaced_deployment_status,
            )
        if kind == "StatefulSet":
            return (
                self.apps.read_namespaced_stateful_set_scale,
                self.apps.patch_namespaced_stateful_set_scale,
                self.apps.read_namespaced_stateful_set_status,
            )
        raise ValueError(f"targetRef.kind: expected one of {', '.join(KINDS)}, got {kind!r}")

    def _state(self, key: TargetKey, scale: Any) -> ScaleState:
        state = _scale_state(scale, default_replicas=0)
        if not self.read_ready:
            return state
        _, _, read_status = self._methods(key.kind)
        workload = call_api(read_status, f"{key} /status", key.name, key.namespace)
        ready = int((workload.status.ready_replicas if workload.status else 0) or 0)
        return replace(state, ready_replicas=ready)

    def get_scale(self, key: TargetKey) -> ScaleState:
        """Read /scale (and /status for ready replicas)."""
        read, _, _ = self._methods(key.kind)
        scale = call_api(read, f"{key} /scale", key.name, key.namespace)
        return self._state(key, scale)

    def set_replicas(self, key: TargetKey, replicas: int, resource_version: str | None = None) -> ScaleState:
        """Patch /scale's spec.replicas; a stale ``resource_version`` raises ScaleConflict."""
        if replicas < 0:
            raise ValueError(f"replicas: must be >= 0, got {replicas}")
        _, patch, _ = self._methods(key.kind)
        body: dict[str, Any] = {"spec": {"replicas": replicas}}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        scale = call_api(patch, f"{key} /scale", key.name, key.namespace, body)
        return _scale_state(scale, default_replicas=replicas)


def _scale_state(scale: Any, *, default_replicas: int) -> ScaleState:
    """A ScaleState from an autoscaling/v1 Scale; ready replicas default to status.replicas."""
    status_replicas = int((scale.status.replicas if scale.status else 0) or 0)
    return ScaleState(
        replicas=int((scale.spec.replicas if scale.spec else default_replicas) or 0),
        status_replicas=status_replicas,
        ready_replicas=status_replicas,
        resource_version=scale.metadata.resource_version if scale.metadata else None,
        selector=(scale.status.selector or "") if scale.status else "",
    )
