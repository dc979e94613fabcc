"""The API vocabulary of the strict emulator: served resource types, API errors, patch semantics.

Used by tests/kube/emulator/: ``ResourceType`` and ``BUILTINS`` (what is
served, with which subresources), ``ApiError`` (answered as a Kubernetes
Status), RFC 7386 merge patch and RFC 6902 JSON patch, and the label
selector string a Scale reports.
"""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ResourceType:
    """A served resource: group, version, plural, kind; which subresources it has."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    status: bool = False
    scale: bool = False
    builtin: bool = True
    # Where /scale reads and writes (a CRD's scale subresource names its own paths, e.g. CloudNativePG's
    # Cluster: .spec.instances, .status.instances); labelSelectorPath None: the spec's selector.
    spec_replicas_path: str = ".spec.replicas"
    status_replicas_path: str = ".status.replicas"
    label_selector_path: str | None = None

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version


BUILTINS = (
    ResourceType("", "v1", "namespaces", "Namespace", namespaced=False, status=True),
    ResourceType("", "v1", "events", "Event"),
    ResourceType("", "v1", "services", "Service", status=True),
    ResourceType("", "v1", "configmaps", "ConfigMap"),
    ResourceType("apps", "v1", "deployments", "Deployment", status=True, scale=True),
    ResourceType("apps", "v1", "statefulsets", "StatefulSet", status=True, scale=True),
    ResourceType("coordination.k8s.io", "v1", "leases", "Lease"),
    ResourceType("events.k8s.io", "v1", "events", "Event"),
    ResourceType("", "v1", "pods", "Pod", status=True),
    ResourceType("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
)


class ApiError(Exception):
    """Answered as a Kubernetes Status object."""

    def __init__(self, code: int, reason: str, message: str) -> None:
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message


@dataclass
class Rule:
    method: str
    pattern: re.Pattern[str]
    code: int
    reason: str
    times: int | None  # None: forever


@dataclass
class Parsed:
    rtype: ResourceType
    namespace: str | None
    name: str | None
    sub: str | None


@dataclass
class LoggedRequest:
    """One request the emulator answered (for assertions)."""

    method: str
    path: str
    query: dict[str, str]
    status: int
    body: Any = field(default=None, repr=False)


def merge_patch(target: Any, patch: Any) -> Any:
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    return [p.replace("~1", "/").replace("~0", "~") for p in path.lstrip("/").split("/")] if path else []


def json_patch(doc: Any, ops: list[dict[str, Any]]) -> Any:
    doc = copy.deepcopy(doc)
    for op in ops:
        parts = _pointer(op.get("path", ""))
        parent = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1] if parts else None
        kind = op.get("op")
        if kind in ("add", "replace"):
            if isinstance(parent, list):
                index = len(parent) if last == "-" else int(str(last))
                if kind == "add":
                    parent.insert(index, op["value"])
                else:
                    parent[index] = op["value"]
            else:
                if kind == "replace" and last not in parent:
                    raise ApiError(422, "Invalid", f"jsonpatch replace: missing path {op.get('path')}")
                parent[last] = op["value"]
        elif kind == "remove":
            if isinstance(parent, list):
                del parent[int(str(last))]
            else:
                parent.pop(last, None)
        elif kind == "test":
            current = parent[int(str(last))] if isinstance(parent, list) else parent.get(last)
            if current != op.get("value"):
                raise ApiError(422, "Invalid", f"jsonpatch test failed at {op.get('path')}")
        else:
            raise ApiError(400, "BadRequest", f"unsupported jsonpatch op {kind!r}")
    return doc


def get_path(obj: Any, path: str) -> Any:
    """The value at a dotted ``.a.b`` path (None when any step is missing)."""
    for part in [p for p in path.split(".") if p]:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(part)
    return obj


def set_path(obj: dict[str, Any], path: str, value: Any) -> None:
    """Set the value at a dotted ``.a.b`` path, creating the objects on the way."""
    parts = [p for p in path.split(".") if p]
    for part in parts[:-1]:
        obj = obj.setdefault(part, {})
    obj[parts[-1]] = value


def selector_string(spec: dict[str, Any]) -> str:
    labels = ((spec.get("selector") or {}).get("matchLabels")) or {}
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
