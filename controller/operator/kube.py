"""The operator's Kubernetes adapters: policies and events in, status, Events and Leases out.

Three small protocols keep the reconcile loop free of the client:
``PolicyStore`` (list ScalingPolicies and TrafficEvents, write a policy's
/status), ``EventRecorder`` (the incidents package's protocol: one Kubernetes
Event about an object) and ``LeaseApi`` (get/create/replace one
coordination.k8s.io/v1 Lease). The ``Kubernetes*`` classes implement them
with the official client; the two writes every pre-scaling policy makes
(its /status patch, its Event) go through ``call_json``, the client's own
auth and connection pool without its typed models (validating the body
into a model and the answer into models was a fifth to a quarter of each
write's client CPU). ``controller.operator.fakes`` holds the in-memory fakes.
Built by ``controller.operator.app`` (and the tests), called by the loop.
"""

from __future__ import annotations

import itertools
import os
import secrets
import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, Protocol
from urllib.parse import quote

from kubernetes import client

from controller.errors import RetryableError
from controller.operator.resources import EVENT_PLURAL, GROUP, POLICY_PLURAL, VERSION
from controller.targets.kubernetes import call_api, call_json, object_path

MERGE_PATCH = "application/merge-patch+json"
COMPONENT = "pitboss-operator"
EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class PolicyObject:
    """One ScalingPolicy as read from the API (spec and status left raw: the loop validates)."""

    namespace: str
    name: str
    uid: str
    generation: int
    spec: Any
    status: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    resource_version: str = ""  # as read: the /status write carries it (409 when someone wrote since)

    @classmethod
    def from_raw(cls, raw: dict[str, Any]) -> PolicyObject:
        meta = raw.get("metadata") or {}
        return cls(
            namespace=str(meta.get("namespace", "")),
            name=str(meta.get("name", "")),
            uid=str(meta.get("uid", "")),
            generation=int(meta.get("generation") or 0),
            spec=raw.get("spec"),
            status=dict(raw.get("status") or {}),
            labels=dict(meta.get("labels") or {}),
            resource_version=str(meta.get("resourceVersion") or ""),
        )


class PolicyStore(Protocol):
    """Where ScalingPolicies and TrafficEvents live."""

    def list_policies(self, namespace: str | None) -> list[PolicyObject]:
        """Every ScalingPolicy (in ``namespace``, or everywhere when None)."""
        ...

    def list_events(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every TrafficEvent, raw (in ``namespace``, or everywhere when None)."""
        ...

    def write_status(self, policy: PolicyObject, status: dict[str, Any]) -> dict[str, Any] | None:
        """Replace the policy's status (through /status only), if unchanged since it was read.

        Returns the object as written when the store answers with it (the API does), else None.
        """
        ...


class EventRecorder(Protocol):
    """Writes one Kubernetes Event about an object (same shape as controller.incidents.events)."""

    def record(
        self, *, namespace: str, kind: str, name: str, event_type: EventType, reason: str, message: str, at: datetime
    ) -> None:
        """Record an event on ``kind``/``name`` in ``namespace``."""
        ...


class LeaseApi(Protocol):
    """One Lease: read, create, replace (a stale resourceVersion raises ScaleConflict)."""

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Lease as a dict (metadata.resourceVersion, spec), or None when absent."""
        ...

    def create(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Create it; ScaleConflict (409) when someone else created it first."""
        ...

    def replace(self, namespace: str, name: str, resource_version: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Replace its spec if ``resource_version`` is still current; ScaleConflict otherwise."""
        ...


class KubernetesPolicyStore:
    """PolicyStore over the CustomObjects API (merge patches to /status)."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.custom = client.CustomObjectsApi(api_client)

    def _list(self, plural: str, namespace: str | None) -> list[dict[str, Any]]:
        result: Any
        if namespace:
            result = call_api(
                self.custom.list_namespaced_custom_object, f"list {plural} in {namespace}", GROUP, VERSION, namespace,
                plural,
            )
        else:
            result = call_api(self.custom.list_cluster_custom_object, f"list {plural}", GROUP, VERSION, plural)
        if not isinstance(result, dict):
            raise RetryableError(f"list {plural}: unexpected answer {type(result).__name__}")
        return list(result.get("items") or [])

    def list_policies(self, namespace: str | None) -> list[PolicyObject]:
        """Every ScalingPolicy."""
        return [PolicyObject.from_raw(item) for item in self._list(POLICY_PLURAL, namespace)]

    def list_events(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every TrafficEvent."""
        return self._list(EVENT_PLURAL, namespace)

    def write_status(self, policy: PolicyObject, status: dict[str, Any]) -> dict[str, Any] | None:
        """Merge-patch /status with the whole status (lists are replaced, as they should be); the written object.

        The patch carries the resourceVersion the policy was read with, so a write based on a stale
        read (another leader's, or from before a spec edit) is refused with 409 (ScaleConflict).
        """
        # A merge patch keeps what it does not name: a field the new status drops is sent as null.
        dropped = {k: None for k in policy.status or {} if k not in status}
        body: dict[str, Any] = {"status": {**dropped, **status}}
        if policy.resource_version:
            body["metadata"] = {"resourceVersion": policy.resource_version}
        written = call_json(
            self.custom.api_client,
            f"scalingpolicy/{policy.name} in {policy.namespace} /status",
            "PATCH",
            object_path(GROUP, VERSION, policy.namespace, POLICY_PLURAL, policy.name, "status"),
            body,
            content_type=MERGE_PATCH,
        )
        return written if isinstance(written, dict) else None


def _micro(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class KubernetesEventRecorder:
    """EventRecorder writing core/v1 Events (what `kubectl describe` shows)."""

    def __init__(self, api_client: client.ApiClient, *, instance: str | None = None) -> None:
        self.core = client.CoreV1Api(api_client)
        self.instance = instance or default_identity()
        self._seq = itertools.count()
        # The operator runs more than one recorder (scale Events, incident Events) and replicas run
        # their own: each names its Events with a random tag of its own, so two Events for one
        # object at one instant never collide on the name (a 409 would drop the second).
        self._tag = secrets.token_hex(3)

    def record(
        self, *, namespace: str, kind: str, name: str, event_type: EventType, reason: str, message: str, at: datetime
    ) -> None:
        """Create one Event whose involvedObject is ``kind``/``name``."""
        stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
        event_name = f"{name}.{int(at.timestamp() * 1e6):x}-{self._tag}{next(self._seq):x}"
        body = {
            "metadata": {"name": event_name, "namespace": namespace},
            "involvedObject": {
                "apiVersion": f"{GROUP}/{VERSION}" if kind in ("ScalingPolicy", "TrafficEvent") else "apps/v1",
                "kind": kind,
                "name": name,
                "namespace": namespace,
            },
            "reason": reason,
            "message": message[:1024],
            "type": event_type,
            "source": {"component": COMPONENT},
            "reportingComponent": f"{GROUP}/{COMPONENT}",
            "reportingInstance": self.instance,
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        # The answer (the Event as created) is not used: read and dropped, never turned into a CoreV1Event.
        call_json(self.core.api_client, f"event on {kind.lower()}/{name}", "POST",
                  f"/api/v1/namespaces/{quote(namespace, safe='')}/events", body, decode=False)


class KubernetesLeaseApi:
    """LeaseApi over coordination.k8s.io/v1 (replace carries the resourceVersion precondition)."""

    def __init__(self, api_client: client.ApiClient) -> None:
        self.coord = client.CoordinationV1Api(api_client)
        self.api_client = api_client

    def _dict(self, lease: Any) -> dict[str, Any]:
        raw: dict[str, Any] = self.api_client.sanitize_for_serialization(lease)
        return raw

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        """The Lease, or None when it does not exist."""
        from controller.targets.base import TargetNotFound

        try:
            lease = call_api(self.coord.read_namespaced_lease, f"lease/{name}", name, namespace)
        except TargetNotFound:
            return None
        return self._dict(lease)

    def create(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Create the Lease (409 -> ScaleConflict)."""
        body = {"apiVersion": "coordination.k8s.io/v1", "kind": "Lease",
                "metadata": {"name": name, "namespace": namespace}, "spec": spec}
        return self._dict(call_api(self.coord.create_namespaced_lease, f"lease/{name}", namespace, body))

    def replace(self, namespace: str, name: str, resource_version: str, spec: dict[str, Any]) -> dict[str, Any]:
        """Replace the Lease if unchanged since ``resource_version`` (409 -> ScaleConflict)."""
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
            "spec": spec,
        }
        return self._dict(call_api(self.coord.replace_namespaced_lease, f"lease/{name}", name, namespace, body))


def default_identity() -> str:
    """This instance's identity: the Pod name (HOSTNAME) plus the process id."""
    return f"{os.environ.get('POD_NAME') or socket.gethostname()}_{os.getpid()}"


def micro_time(at: datetime) -> str:
    """A Kubernetes MicroTime string."""
    return _micro(at)
