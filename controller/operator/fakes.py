"""In-memory fakes of the operator's adapters: PolicyStore and LeaseApi.

For unit tests of the reconcile loop and leader election without HTTP (the
scenario tests use the real client against the strict emulator instead).
The EventRecorder fake is ``controller.incidents.events.RecordingEventRecorder``.
"""

from __future__ import annotations

import copy
from typing import Any

from controller.operator.kube import PolicyObject
from controller.targets.base import ScaleConflict


class InMemoryPolicyStore:
    """ScalingPolicies and TrafficEvents in lists; status writes are recorded (409 on a stale resourceVersion)."""

    def __init__(self) -> None:
        self.policies: dict[tuple[str, str], PolicyObject] = {}
        self.events: list[dict[str, Any]] = []
        self.status_writes: list[tuple[str, str, dict[str, Any]]] = []
        self._uid = 0
        self._rv = 0

    def add_policy(self, namespace: str, name: str, spec: Any, *, generation: int = 1) -> PolicyObject:
        self._uid += 1
        self._rv += 1
        obj = PolicyObject(namespace, name, f"uid-{self._uid}", generation, copy.deepcopy(spec),
                           resource_version=str(self._rv))
        self.policies[(namespace, name)] = obj
        return obj

    def add_event(self, namespace: str, name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> None:
        self.events.append({"metadata": {"namespace": namespace, "name": name, "labels": labels or {}}, "spec": spec})

    def list_policies(self, namespace: str | None) -> list[PolicyObject]:
        return [p for (ns, _), p in self.policies.items() if namespace in (None, ns)]

    def list_events(self, namespace: str | None) -> list[dict[str, Any]]:
        return [copy.deepcopy(e) for e in self.events if namespace in (None, e["metadata"]["namespace"])]

    def write_status(self, policy: PolicyObject, status: dict[str, Any]) -> None:
        key = (policy.namespace, policy.name)
        current = self.policies[key]
        if policy.resource_version and policy.resource_version != current.resource_version:
            raise ScaleConflict(f"scalingpolicy/{policy.name}: stale resourceVersion {policy.resource_version}")
        self._rv += 1
        self.policies[key] = PolicyObject(
            current.namespace, current.name, current.uid, current.generation, current.spec, copy.deepcopy(status),
            current.labels, str(self._rv),
        )
        self.status_writes.append((policy.namespace, policy.name, copy.deepcopy(status)))


class InMemoryLeaseApi:
    """Leases in a dict with resourceVersions; a stale replace raises ScaleConflict."""

    def __init__(self) -> None:
        self.leases: dict[tuple[str, str], dict[str, Any]] = {}
        self._rv = 0

    def get(self, namespace: str, name: str) -> dict[str, Any] | None:
        lease = self.leases.get((namespace, name))
        return copy.deepcopy(lease) if lease else None

    def create(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        if (namespace, name) in self.leases:
            raise ScaleConflict(f"lease/{name}: already exists")
        return self._put(namespace, name, spec)

    def replace(self, namespace: str, name: str, resource_version: str, spec: dict[str, Any]) -> dict[str, Any]:
        lease = self.leases.get((namespace, name))
        if lease is None or lease["metadata"]["resourceVersion"] != resource_version:
            raise ScaleConflict(f"lease/{name}: stale resourceVersion {resource_version}")
        return self._put(namespace, name, spec)

    def _put(self, namespace: str, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        self._rv += 1
        lease = {"metadata": {"namespace": namespace, "name": name, "resourceVersion": str(self._rv)},
                 "spec": copy.deepcopy(spec)}
        self.leases[(namespace, name)] = lease
        return copy.deepcopy(lease)
