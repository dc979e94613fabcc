"""The emulator's object store: resource types, stamping, the event log, workload status, schemas, /scale.

``Store`` is a mixin of ``StrictKubernetesEmulator``. Test-side access is
thread-safe under ``_store_lock`` (``get``, ``versions``, ``list``,
``put_object``, ``write_scale``); the internals stamp ``resourceVersion``,
``uid``, ``generation`` (spec changes only) and ``creationTimestamp``, keep
the per-type event log that watches read, validate custom resources against
their CRD schema (422), play the stand-in workload controller (status follows
``spec.replicas`` unless annotated ``UNMANAGED``) and build ``autoscaling/v1``
Scale objects from the paths a CRD names.
"""

from __future__ import annotations

import copy
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from kmock import resource

from tests.kube.apimodel import (
    ApiError,
    ResourceType,
    get_path,
    selector_string,
    set_path,
)
from tests.kube.emulator.state import State
from tests.kube.schema import crd_validator, schema_errors

UNMANAGED = "emulator.pitboss.dev/unmanaged"  # annotation: the stand-in controller leaves the status alone


class Store(State):
    """Types, objects and their versions; every mutation under ``_store_lock``, without awaits."""

    # ---- resource types ---------------------------------------------------
    def register(self, rtype: ResourceType) -> None:
        """Serve ``rtype`` (kmock's discovery learns about it too)."""
        self._types[(rtype.group, rtype.version, rtype.plural)] = rtype
        res = resource(group=rtype.group, version=rtype.version, plural=rtype.plural)
        subresources = {name for name, has in (("status", rtype.status), ("scale", rtype.scale)) if has}
        self.resources[res] = self.ResourceInfo(
            kind=rtype.kind, namespaced=rtype.namespaced, subresources=subresources,
            verbs={"get", "list", "watch", "create", "update", "patch", "delete"},
        )

    def register_crd(self, crd: dict[str, Any]) -> None:
        """Serve the custom resource a CustomResourceDefinition declares (every served version).

        Creates and writes (status included) are validated against the version's openAPIV3Schema: 422.
        """
        spec = crd["spec"]
        for version in spec["versions"]:
            self._schemas[(spec["group"], version["name"], spec["names"]["plural"])] = crd_validator(
                crd, version["name"]
            )
            scale = (version.get("subresources") or {}).get("scale") or {}
            self.register(
                ResourceType(
                    spec["group"],
                    version["name"],
                    spec["names"]["plural"],
                    spec["names"]["kind"],
                    namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                    status="status" in (version.get("subresources") or {}),
                    scale="scale" in (version.get("subresources") or {}),
                    builtin=False,
                    spec_replicas_path=scale.get("specReplicasPath", ".spec.replicas"),
                    status_replicas_path=scale.get("statusReplicasPath", ".status.replicas"),
                    label_selector_path=scale.get("labelSelectorPath"),
                )
            )

    # ---- direct store access (test side, thread-safe) -------------------
    def _key(self, rtype: ResourceType, namespace: str | None, name: str) -> tuple[Any, str | None, str]:
        return (resource(group=rtype.group, version=rtype.version, plural=rtype.plural), namespace, name)

    def _type(self, group: str, version: str, plural: str) -> ResourceType:
        rtype = self._types.get((group, version, plural))
        if rtype is None:
            raise ApiError(404, "NotFound", "the server could not find the requested resource")
        return rtype

    def type_of(self, api_version: str, plural: str) -> ResourceType:
        group, _, version = api_version.rpartition("/")
        return self._type(group, version, plural)

    def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A deep copy of the stored object, or None."""
        rtype = self.type_of(api_version, plural)
        with self._store_lock:
            key = self._key(rtype, namespace if rtype.namespaced else None, name)
            if key not in self.objects or self.objects[key].deleted:
                return None
            return copy.deepcopy(self.objects[key].raw)

    def versions(self, api_version: str, plural: str, namespace: str | None, name: str) -> list[dict[str, Any]]:
        """Every stored version of an object, oldest first (deletions skipped)."""
        rtype = self.type_of(api_version, plural)
        with self._store_lock:
            key = self._key(rtype, namespace if rtype.namespaced else None, name)
            if key not in self.objects:
                return []
            return [copy.deepcopy(dict(v.raw)) for v in self.objects[key].history if v is not None]

    def list(self, api_version: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        rtype = self.type_of(api_version, plural)
        with self._store_lock:
            return [copy.deepcopy(o) for o in self._items(rtype, namespace)]

    def put_object(self, obj: dict[str, Any], plural: str) -> dict[str, Any]:
        """Create or replace an object as the API server would store it, status included (test seeding)."""
        rtype = self.type_of(obj["apiVersion"], plural)
        meta = obj.setdefault("metadata", {})
        with self._store_lock:
            ns = meta.get("namespace") if rtype.namespaced else None
            key = self._key(rtype, ns, meta["name"])
            old = None if key not in self.objects or self.objects[key].deleted else self.objects[key].raw
            new = copy.deepcopy(obj)
            new["kind"] = rtype.kind
            self._stamp(new, old, spec_changed=True)
            self._store(rtype, key, new, "MODIFIED" if old else "ADDED")
            return copy.deepcopy(new)

    def write_scale(self, api_version: str, plural: str, namespace: str, name: str, replicas: int) -> dict[str, Any]:
        """Set replicas through /scale as ``kubectl scale`` would (a merge patch of the Scale, no precondition)."""
        rtype = self.type_of(api_version, plural)
        with self._store_lock:
            key = self._key(rtype, namespace, name)
            if key not in self.objects or self.objects[key].deleted:
                raise ApiError(404, "NotFound", f'{plural} "{name}" not found')
            return self._write("PATCH", "application/merge-patch+json", rtype, key, self.objects[key].raw, "scale",
                               {"spec": {"replicas": replicas}})

    # ---- internals -------------------------------------------------------
    def _items(self, rtype: ResourceType, namespace: str | None) -> Iterator[dict[str, Any]]:
        res = resource(group=rtype.group, version=rtype.version, plural=rtype.plural)
        for (r, ns, _name), obj in self.objects.items():
            if r == res and not obj.deleted and (namespace is None or ns == namespace):
                yield obj.raw

    def _stamp(self, new: dict[str, Any], old: dict[str, Any] | None, *, spec_changed: bool) -> None:
        self._rv += 1
        meta = new.setdefault("metadata", {})
        meta["resourceVersion"] = str(self._rv)
        if old is None:
            meta["uid"] = str(uuid.uuid4())
            meta["generation"] = 1
            meta["creationTimestamp"] = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        else:
            for keep in ("uid", "creationTimestamp", "name", "namespace"):
                if keep in old.get("metadata", {}):
                    meta[keep] = old["metadata"][keep]
            gen = int(old.get("metadata", {}).get("generation", 1))
            meta["generation"] = gen + 1 if spec_changed else gen

    def _store(self, rtype: ResourceType, key: Any, new: dict[str, Any], kind: str) -> None:
        if key in self.objects:
            self.objects[key].create(new) if self.objects[key].deleted else self.objects[key].history.append(new)
        else:
            self.objects[key] = new
        log = self._events.setdefault((rtype.group, rtype.plural), deque(maxlen=self.event_log_size))
        log.append((self._rv, kind, copy.deepcopy(new)))

    def _simulate_workload(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        """Stand-in controller: status follows spec.replicas at once, every pod ready."""
        if not (self.simulate_workloads and rtype.scale):
            return
        if ((obj.get("metadata") or {}).get("annotations") or {}).get(UNMANAGED) == "true":
            return
        if not rtype.builtin:
            set_path(obj, rtype.status_replicas_path, int(get_path(obj, rtype.spec_replicas_path) or 0))
            return
        replicas = int((obj.get("spec") or {}).get("replicas", 1) or 0)
        status = obj.setdefault("status", {})
        status.update(
            {
                "replicas": replicas,
                "readyReplicas": replicas,
                "availableReplicas": replicas,
                "updatedReplicas": replicas,
                "observedGeneration": obj["metadata"].get("generation", 1),
            }
        )

    def _validate(self, rtype: ResourceType, obj: dict[str, Any]) -> None:
        """422 Invalid when a custom resource breaks its CRD schema (as the API server answers)."""
        validator = self._schemas.get((rtype.group, rtype.version, rtype.plural))
        if validator is None:
            return
        errors = schema_errors(validator, obj)
        if errors:
            name = (obj.get("metadata") or {}).get("name", "")
            raise ApiError(422, "Invalid", f'{rtype.kind}.{rtype.group} "{name}" is invalid: {"; ".join(errors)}')

    def _scale_of(self, rtype: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        meta = obj["metadata"]
        spec = obj.get("spec") or {}
        if rtype.label_selector_path is not None:
            selector = str(get_path(obj, rtype.label_selector_path) or "")
        else:
            selector = selector_string(spec)
        return {
            "apiVersion": "autoscaling/v1",
            "kind": "Scale",
            "metadata": {
                "name": meta["name"],
                "namespace": meta.get("namespace"),
                "uid": meta["uid"],
                "resourceVersion": meta["resourceVersion"],
                "creationTimestamp": meta.get("creationTimestamp"),
            },
            "spec": {"replicas": int(get_path(obj, rtype.spec_replicas_path) or 0)
                     if rtype.spec_replicas_path != ".spec.replicas" else int(spec.get("replicas", 1) or 0)},
            "status": {
                "replicas": int(get_path(obj, rtype.status_replicas_path) or 0),
                "selector": selector,
            },
        }
