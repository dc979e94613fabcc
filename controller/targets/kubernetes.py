"""The Kubernetes ScaleTarget: the /scale subresource of any kind, through the official client.

Deployments and StatefulSets (``apps/v1``) go through the typed AppsV1Api:
``deployments/scale`` (or ``statefulsets/scale``) for spec and observed
replicas plus the resourceVersion, ``deployments/status`` for ready replicas.
Any other kind with a scale subresource (a CloudNativePG ``Cluster``,
``postgresql.cnpg.io/v1``, whose /scale is ``.spec.instances``; an Argo
Rollout; a custom resource of one's own) is resolved once through discovery
(``GET /apis/<group>/<version>``: kind -> plural, and whether
``<plural>/scale`` is served) and read and written through the
CustomObjectsApi's scale and status calls; its ready replicas come from
``status.readyReplicas`` or ``status.readyInstances``.

Writes are a merge patch of /scale carrying the resourceVersion as a
precondition (a stale one answers 409). The apps/v1 patch goes through
``call_json``: the client's own auth, headers and connection pool, without
its typed models (validating the body into a model, then the answer into a
V1Scale, was a quarter of the patch's client CPU; the operator patches
/scale for every policy that pre-scales). That is all the RBAC it needs:
get/patch on ``<plural>/scale`` and get on ``<plural>/status``, never the
whole workload (discovery is open to every authenticated client). Called by
the reconcile loop (``controller.operator.reconcile``).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import replace
from typing import Any, TypeVar
from urllib.parse import quote

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from controller.errors import PermanentError, RetryableError
from controller.targets.base import ScaleConflict, ScaleState, TargetForbidden, TargetKey, TargetNotFound

T = TypeVar("T")
KINDS = ("Deployment", "StatefulSet")  # the typed apps/v1 kinds; any other kind is found through discovery
MERGE_PATCH = "application/merge-patch+json"
READY_FIELDS = ("readyReplicas", "readyInstances")  # where a workload's status says how many are ready


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


def call_json(api_client: client.ApiClient, what: str, method: str, path: str, body: Any = None, *,
              content_type: str = "application/json", decode: bool = True) -> Any:
    """One request through ``api_client`` without the generated typed methods; the answer's JSON (None: not
    decoded, or empty).

    Still the official client's transport (``ApiClient.rest_client``: its urllib3 pool, TLS and client
    certificates, JSON encoding of ``body``) with its default headers and the bearer token its
    ``Configuration.auth_settings()`` gives (the refresh hook included), minus what the generated methods
    add per call: pydantic validation of every argument, the body turned into a model and back, the answer
    deserialized into models. Built on the pieces both generations of the client have (before 37 and
    since), not on ``param_serialize``, which only the newer has. ``body`` must already be plain JSON. A
    non-2xx answer raises what ``call_api`` raises for the typed methods (409 -> ScaleConflict, 404 ->
    TargetNotFound, ...). ``decode=False`` reads and drops the answer.
    """

    def send() -> Any:
        config = api_client.configuration
        headers = {**api_client.default_headers, "Content-Type": content_type, "Accept": "application/json"}
        if api_client.cookie:
            headers["Cookie"] = api_client.cookie
        for auth in config.auth_settings().values():  # the bearer token (kubeconfig, in-cluster, exec plugin)
            if auth.get("in") == "header" and auth.get("value"):
                headers[auth["key"]] = auth["value"]
        response = api_client.rest_client.request(method, config.host + path, headers=headers, body=body)
        data = response.data if response.data is not None else response.read()  # 37+: read() is ours to call
        if not 200 <= response.status <= 299:  # (before 37 the client raised this itself)
            raise ApiException(http_resp=response)
        return json.loads(data) if decode and data else None

    return call_api(send, what)


def object_path(group: str, version: str, namespace: str, plural: str, name: str, sub: str = "") -> str:
    """The API path of a namespaced object (``sub``: "status", "scale"), its parts URL-quoted."""
    base = f"/apis/{group}/{version}" if group else f"/api/{version}"
    path = f"{base}/namespaces/{quote(namespace, safe='')}/{plural}/{quote(name, safe='')}"
    return f"{path}/{sub}" if sub else path


class KubernetesScaleTarget:
    """ScaleTarget over /scale; ``read_ready`` also reads /status for ready replicas."""

    def __init__(self, api_client: client.ApiClient, *, read_ready: bool = True) -> None:
        self.api_client = api_client
        self.apps = client.AppsV1Api(api_client)
        self.custom = client.CustomObjectsApi(api_client)
        self.read_ready = read_ready
        self._plurals: dict[tuple[str, str], str] = {}  # (apiVersion, kind) -> plural, once discovered
        self._lock = threading.Lock()

    # ---- apps/v1: the typed API ------------------------------------------
    def _methods(self, kind: str) -> tuple[Callable[..., Any], Callable[..., Any]]:
        """(read /scale, read /status) of an apps/v1 kind (its /scale patch is ``call_json``'s)."""
        if kind == "Deployment":
            return self.apps.read_namespaced_deployment_scale, self.apps.read_namespaced_deployment_status
        if kind == "StatefulSet":
            return self.apps.read_namespaced_stateful_set_scale, self.apps.read_namespaced_stateful_set_status
        raise ValueError(f"targetRef.kind: expected one of {', '.join(KINDS)}, got {kind!r}")

    @staticmethod
    def _typed(key: TargetKey) -> bool:
        return key.api_version == "apps/v1" and key.kind in KINDS

    # ---- any other kind: discovery + CustomObjectsApi ---------------------
    def resolve(self, key: TargetKey) -> tuple[str, str, str]:
        """(group, version, plural) of ``key``'s kind; TargetNotFound when it is not served or has no /scale."""
        group, _, version = key.api_version.rpartition("/")
        if not group:
            raise TargetNotFound(f"{key}: apiVersion {key.api_version!r}: only kinds of a named API group can be"
                                 " scaled (e.g. apps/v1, postgresql.cnpg.io/v1)")
        with self._lock:
            plural = self._plurals.get((key.api_version, key.kind))
        if plural is not None:
            return group, version, plural
        try:
            listing = call_api(self.custom.get_api_resources, f"{key} discovery", group, version)
        except TargetNotFound:
            raise TargetNotFound(f"{key}: the API {key.api_version} is not served (is its CRD installed?)") from None
        names = {r.name: r.kind for r in listing.resources or []}
        plural = next((name for name, kind in names.items() if kind == key.kind and "/" not in name), None)
        if plural is None:
            raise TargetNotFound(f"{key}: the API {key.api_version} serves no kind {key.kind}")
        if f"{plural}/scale" not in names:
            raise TargetNotFound(f"{key}: {key.kind} ({plural}.{group}) has no /scale subresource")
        with self._lock:
            self._plurals[(key.api_version, key.kind)] = plural
        return group, version, plural

    def _ready(self, key: TargetKey, state: ScaleState) -> ScaleState:
        if not self.read_ready:
            return state
        if self._typed(key):
            _, read_status = self._methods(key.kind)
            workload = call_api(read_status, f"{key} /status", key.name, key.namespace)
            ready = int((workload.status.ready_replicas if workload.status else 0) or 0)
            return replace(state, ready_replicas=ready)
        group, version, plural = self.resolve(key)
        obj: Any = call_api(self.custom.get_namespaced_custom_object_status, f"{key} /status",
                            group, version, key.namespace, plural, key.name)
        status = (obj or {}).get("status") or {}
        for field in READY_FIELDS:
            if isinstance(status.get(field), int):
                return replace(state, ready_replicas=int(status[field]))
        return state  # no ready count in the status: status.replicas of /scale stands for it

    def get_scale(self, key: TargetKey) -> ScaleState:
        """Read /scale (and /status for ready replicas)."""
        if self._typed(key):
            read, _ = self._methods(key.kind)
            scale = call_api(read, f"{key} /scale", key.name, key.namespace)
            return self._ready(key, _scale_state(scale, default_replicas=0))
        group, version, plural = self.resolve(key)
        raw = call_api(self.custom.get_namespaced_custom_object_scale, f"{key} /scale",
                       group, version, key.namespace, plural, key.name)
        return self._ready(key, _dict_scale_state(raw, default_replicas=0))

    def set_replicas(self, key: TargetKey, replicas: int, resource_version: str | None = None) -> ScaleState:
        """Patch /scale's spec.replicas; a stale ``resource_version`` raises ScaleConflict."""
        if replicas < 0:
            raise ValueError(f"replicas: must be >= 0, got {replicas}")
        body: dict[str, Any] = {"spec": {"replicas": replicas}}
        if resource_version is not None:
            body["metadata"] = {"resourceVersion": resource_version}
        if self._typed(key):
            plural = "deployments" if key.kind == "Deployment" else "statefulsets"
            raw = call_json(self.api_client, f"{key} /scale", "PATCH",
                            object_path("apps", "v1", key.namespace, plural, key.name, "scale"), body,
                            content_type=MERGE_PATCH)
            return _dict_scale_state(raw, default_replicas=replicas)
        group, version, plural = self.resolve(key)
        raw = call_api(self.custom.patch_namespaced_custom_object_scale, f"{key} /scale",
                       group, version, key.namespace, plural, key.name, body, _content_type=MERGE_PATCH)
        return _dict_scale_state(raw, default_replicas=replicas)


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


def _dict_scale_state(scale: Any, *, default_replicas: int) -> ScaleState:
    """The same from a Scale as a dict (what the CustomObjectsApi returns)."""
    scale = scale or {}
    spec, status, meta = scale.get("spec") or {}, scale.get("status") or {}, scale.get("metadata") or {}
    status_replicas = int(status.get("replicas") or 0)
    return ScaleState(
        replicas=int(spec.get("replicas", default_replicas) or 0),
        status_replicas=status_replicas,
        ready_replicas=status_replicas,
        resource_version=meta.get("resourceVersion"),
        selector=str(status.get("selector") or ""),
    )
