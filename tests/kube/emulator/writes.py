"""Writes: create, PUT, merge / JSON / strategic merge patch on objects, /status and /scale, with preconditions.

``Writes`` is a mixin of ``StrictKubernetesEmulator``: 409 AlreadyExists and
409 Conflict on a stale ``resourceVersion``, 415 for strategic merge on custom
resources, /status isolated from spec both ways, /scale writing the path its
CRD names, and schema validation (422) before anything is stored.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from tests.kube.apimodel import (
    ApiError,
    ResourceType,
    json_patch,
    merge_patch,
    set_path,
)
from tests.kube.emulator.state import State


class Writes(State):
    """``_create`` and ``_write``, called by ``Serve._dispatch`` under the store lock."""

    def _create(self, rtype: ResourceType, namespace: str | None, data: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            raise ApiError(400, "BadRequest", "expected a JSON object body")
        new = copy.deepcopy(data)
        meta = new.setdefault("metadata", {})
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = f"{meta['generateName']}{uuid.uuid4().hex[:5]}"
        if not meta.get("name"):
            raise ApiError(422, "Invalid", "metadata.name: Required value: name or generateName is required")
        if rtype.namespaced:
            if meta.get("namespace") not in (None, namespace):
                raise ApiError(400, "BadRequest", "the namespace of the object does not match the namespace on the URL")
            meta["namespace"] = namespace
        key = self._key(rtype, namespace if rtype.namespaced else None, meta["name"])
        if key in self.objects and not self.objects[key].deleted:
            raise ApiError(409, "AlreadyExists", f'{rtype.plural} "{meta["name"]}" already exists')
        if rtype.status:
            new.pop("status", None)  # status is only written through /status
        new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
        meta.pop("resourceVersion", None)
        self._validate(rtype, new)
        self._stamp(new, None, spec_changed=True)
        self._simulate_workload(rtype, new)
        self._store(rtype, key, new, "ADDED")
        return copy.deepcopy(new)

    def _write(
        self, method: str, ctype: str, rtype: ResourceType, key: Any, current: dict[str, Any], sub: str | None,
        data: Any,
    ) -> dict[str, Any]:
        ctype = ctype.split(";")[0].strip()
        base = self._scale_of(rtype, current) if sub == "scale" else copy.deepcopy(current)
        if method == "PUT":
            if not isinstance(data, dict):
                raise ApiError(400, "BadRequest", "expected a JSON object body")
            incoming = copy.deepcopy(data)
        elif ctype == "application/json-patch+json":
            if not isinstance(data, list):
                raise ApiError(400, "BadRequest", "a JSON patch is a list of operations")
            incoming = json_patch(base, data)
        elif ctype == "application/strategic-merge-patch+json" and not rtype.builtin:
            raise ApiError(415, "UnsupportedMediaType", "strategic merge patch is not supported for custom resources")
        elif ctype in ("application/merge-patch+json", "application/strategic-merge-patch+json"):
            incoming = merge_patch(base, data)
        else:
            raise ApiError(415, "UnsupportedMediaType", f"the body of the request was in an unknown format: {ctype}")

        # Optimistic concurrency: a resourceVersion in the request is a precondition.
        sent_rv = (data.get("metadata") or {}).get("resourceVersion") if isinstance(data, dict) else None
        if method == "PATCH" and ctype == "application/json-patch+json":
            sent_rv = None if incoming["metadata"].get("resourceVersion") == base["metadata"]["resourceVersion"] else (
                incoming["metadata"].get("resourceVersion")
            )
        if sent_rv is not None and str(sent_rv) != current["metadata"]["resourceVersion"]:
            raise ApiError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {rtype.plural} "{current["metadata"]["name"]}": '
                "the object has been modified; please apply your changes to the latest version and try again",
            )
        if method == "PUT" and sent_rv is None and not rtype.builtin:
            raise ApiError(422, "Invalid", "metadata.resourceVersion: Invalid value: must be specified for an update")

        new = copy.deepcopy(current)
        if sub == "scale":
            replicas = (incoming.get("spec") or {}).get("replicas")
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(422, "Invalid", f"spec.replicas: Invalid value: {replicas!r}: must be >= 0")
            set_path(new, rtype.spec_replicas_path, replicas)
        elif sub == "status":
            if "status" in incoming:
                new["status"] = incoming["status"]
            else:
                new.pop("status", None)
        else:
            for section in set(incoming) | set(current):
                if section in ("status", "metadata", "apiVersion", "kind"):
                    continue
                if section in incoming:
                    new[section] = incoming[section]
                else:
                    new.pop(section, None)
            in_meta, meta = incoming.get("metadata") or {}, new["metadata"]
            for mkey in ("labels", "annotations", "finalizers", "ownerReferences"):
                if mkey in in_meta:
                    meta[mkey] = in_meta[mkey]
                else:
                    meta.pop(mkey, None)
            if rtype.status is False and "status" in incoming:
                new["status"] = incoming["status"]
        if new == current:
            return self._scale_of(rtype, current) if sub == "scale" else copy.deepcopy(current)
        self._validate(rtype, new)
        spec_changed = sub != "status" and {k: v for k, v in new.items() if k not in ("metadata", "status")} != {
            k: v for k, v in current.items() if k not in ("metadata", "status")
        }
        self._stamp(new, current, spec_changed=spec_changed)
        if spec_changed:
            self._simulate_workload(rtype, new)
        self._store(rtype, key, new, "MODIFIED")
        return self._scale_of(rtype, new) if sub == "scale" else copy.deepcopy(new)
