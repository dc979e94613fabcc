"""A strict Kubernetes API emulator for tests: kmock's KubernetesEmulator, made strict.

kmock (https://github.com/nolar/kmock) gives the HTTP server, the Kubernetes
error payloads, discovery and the versioned object store (``.objects`` with
every version kept, which tests use to prove what was written). Its own
request handling is lax where our operator's correctness lives, so this
subclass takes over every request for a resource path and implements:

* ``metadata.resourceVersion`` (a global counter), ``uid``, ``generation``
  (bumped on spec changes only) and ``creationTimestamp``;
* 409 Conflict on a stale ``resourceVersion`` (in a PATCH body or a PUT),
  409 AlreadyExists on a duplicate create;
* PUT (replace) on objects, /status and /scale (kmock answers PUT with 404);
* a real ``autoscaling/v1`` Scale on ``deployments|statefulsets/scale`` (GET,
  PATCH and PUT, which update the workload's ``spec.replicas``), and on a custom
  resource's /scale through the paths its CRD names (``specReplicasPath``,
  ``statusReplicasPath``, ``labelSelectorPath``; e.g. CloudNativePG's Cluster);
* discovery that lists each resource's subresources (``clusters/scale``), so
  clients can resolve a kind to its plural and /scale;
* Pods and ``discovery.k8s.io/v1`` EndpointSlices (served like the rest:
  label selectors, RBAC, /status for Pods);
* /status isolated from spec both ways: writes to the object ignore status,
  writes to /status change nothing but status;
* label selectors (``=``, ``==``, ``!=``, ``in``, ``notin``, ``key``, ``!key``)
  and ``metadata.name``/``metadata.namespace`` field selectors on list/watch;
* merge patch (RFC 7386, ``null`` deletes), JSON patch, and strategic merge
  patch for built-in kinds (approximated by a merge patch); 415 for strategic
  merge on custom resources, like the real server;
* watch with ``resourceVersion`` (events after it, 410 Gone when too old) and
  ``timeoutSeconds`` honoured;
* custom resources validated against their CRD's openAPIV3Schema on every
  create and write, /status included (422 Invalid naming the field);
* cluster-scoped namespaces (``GET /api/v1/namespaces`` works);
* 404 for resources that are not registered, 403 for verbs denied by
  ``deny()``, and one-shot failure injection (``fail()``);
* RBAC authorization (``enforce_rbac``): requests bearing a given token are
  allowed only what the given ClusterRoles and (namespaced) Roles grant,
  resourceNames included, so the operator's manifests are tested for real;
* ``stall()``: hold one matching request in flight until the test releases
  it (a write that is on the wire when something else happens);
* optionally, a stand-in workload controller: when a Deployment's or
  StatefulSet's spec.replicas changes, its status follows at once (every
  pod ready), so readiness can be read back (a custom resource gets only its
  statusReplicasPath; an object annotated ``UNMANAGED`` is left alone);
* request hooks (``on_request``): run a test's function just before a matching
  request is served, e.g. a human's ``kubectl scale`` between the operator's
  read and its write (``write_scale``), so the write meets a real 409.

It runs its own event loop in a background thread (``EmulatorThread``) so
the synchronous official ``kubernetes`` client can call it over HTTP from the
test thread. Store mutations happen under a threading lock without awaits.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import aiohttp.web
from kmock import KubernetesEmulator, Server, resource

from tests.kube.apimodel import (
    BUILTINS,
    ApiError,
    LoggedRequest,
    Parsed,
    ResourceType,
    Rule,
    get_path,
    json_patch,
    merge_patch,
    selector_string,
    set_path,
)
from tests.kube.rbac import authorize
from tests.kube.schema import crd_validator, schema_errors
from tests.kube.selectors import field_selector_matches, parse_label_selector

UNMANAGED = "emulator.pitboss.dev/unmanaged"  # annotation: the stand-in controller leaves the status alone


class StrictKubernetesEmulator(KubernetesEmulator):
    """kmock's emulator with the strict semantics listed in the module docstring."""

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._types: dict[tuple[str, str, str], ResourceType] = {}
        self._store_lock = threading.Lock()
        self._rv = 0
        self._events: dict[tuple[str, str], deque[tuple[int, str, dict[str, Any]]]] = {}
        self._rules: list[Rule] = []
        self._hooks: list[tuple[str, re.Pattern[str], Any, list[int | None]]] = []
        self._rbac: dict[str, list[tuple[str, str | None, dict[str, Any]]]] = {}
        self._schemas: dict[tuple[str, str, str], Any] = {}
        self.log: list[LoggedRequest] = []
        self.simulate_workloads = True
        self.closing = False  # set on shutdown: open watches end at once
        self.event_log_size = 10_000
        self._stalls: list[Stall] = []
        for rtype in BUILTINS:
            self.register(rtype)

    # ---- configuration -------------------------------------------------
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

    def deny(self, method: str, path_regex: str, *, times: int | None = None) -> None:
        """Answer 403 Forbidden to ``method`` on paths matching ``path_regex`` (an RBAC stand-in)."""
        self._rules.append(Rule(method.upper(), re.compile(path_regex), 403, "Forbidden", times))

    def fail(self, method: str, path_regex: str, code: int, *, times: int | None = 1) -> None:
        """Answer ``code`` to the next ``times`` matching requests (failure injection)."""
        reason = {409: "Conflict", 500: "InternalError", 503: "ServiceUnavailable", 404: "NotFound"}.get(code, "Error")
        self._rules.append(Rule(method.upper(), re.compile(path_regex), code, reason, times))

    def enforce_rbac(self, token: str, roles: list[dict[str, Any]]) -> None:
        """Authorize requests carrying ``Authorization: Bearer <token>`` against these ClusterRoles/Roles."""
        self._rbac[token] = [
            (r["kind"], (r.get("metadata") or {}).get("namespace"), rule) for r in roles for rule in r.get("rules", [])
        ]

    def _authorize(self, raw: aiohttp.web.BaseRequest, p: Parsed, query: dict[str, str]) -> None:
        token = raw.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        if token in self._rbac:
            authorize(self._rbac[token], token, raw.method, query, p)

    def on_request(self, method: str, path_regex: str, fn: Any, *, times: int | None = 1) -> None:
        """Call ``fn()`` just before the next ``times`` matching requests are served (None: every one)."""
        self._hooks.append((method.upper(), re.compile(path_regex), fn, [times]))

    def stall(self, method: str, path_regex: str, *, skip: int = 0) -> Stall:
        """Hold the ``skip + 1``-th matching request until ``Stall.release()`` (a write in flight)."""
        stall = Stall(method.upper(), re.compile(path_regex), skip)
        self._stalls.append(stall)
        return stall

    def clear_rules(self) -> None:
        self._rules.clear()
        self._hooks.clear()

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

    @staticmethod
    def _parse_path(path: str) -> tuple[str, str, list[str]] | None:
        parts = [p for p in path.split("/") if p]
        if len(parts) >= 3 and parts[0] == "api":
            return "", parts[1], parts[2:]
        if len(parts) >= 4 and parts[0] == "apis":
            return parts[1], parts[2], parts[3:]
        return None

    def _resolve(self, path: str) -> Parsed | None:
        parsed = self._parse_path(path)
        if parsed is None:
            return None
        group, version, rest = parsed
        namespace = None
        if len(rest) >= 3 and rest[0] == "namespaces":
            namespace, rest = rest[1], rest[2:]
        rtype = self._type(group, version, rest[0])
        if rtype.namespaced is False and namespace is not None:
            raise ApiError(404, "NotFound", f"{rtype.plural} is cluster-scoped")
        name = rest[1] if len(rest) > 1 else None
        sub = "/".join(rest[2:]) or None
        if sub is not None and not ((sub == "status" and rtype.status) or (sub == "scale" and rtype.scale)):
            raise ApiError(404, "NotFound", f"the server could not find the requested resource ({sub})")
        return Parsed(rtype, namespace, name, sub)

    # ---- HTTP entry point ----------------------------------------------
    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        body = await raw.read()
        try:
            parsed = self._resolve(raw.path)
        except ApiError as exc:
            return self._error(raw, exc)
        if parsed is None:
            if len(raw.path) > 1 and raw.path.endswith("/"):  # /apis/apps/v1/ is /apis/apps/v1, as for the server
                raw = raw.clone(rel_url=raw.rel_url.with_path(raw.path.rstrip("/")))
            return await super().__call__(raw)  # discovery, /version: kmock's scaffold
        query = dict(raw.query)
        try:
            data = json.loads(body) if body else None
        except ValueError:
            return self._error(raw, ApiError(400, "BadRequest", "request body is not JSON"))
        try:
            self._authorize(raw, parsed, query)
            for rule in self._rules:
                if rule.method == raw.method and rule.pattern.search(raw.path) and rule.times != 0:
                    if rule.times is not None:
                        rule.times -= 1
                    raise ApiError(rule.code, rule.reason, f"{rule.reason.lower()}: {raw.method} {raw.path}")
            for method, pattern, fn, left in list(self._hooks):
                if method == raw.method and pattern.search(raw.path) and left[0] != 0:
                    if left[0] is not None:
                        left[0] -= 1
                    fn()
            for stall in self._stalls:
                await stall.hold(raw.method, raw.path)
            if raw.method == "GET" and query.get("watch") in ("true", "1"):
                self.log.append(LoggedRequest(raw.method, raw.path, query, 200))
                return await self._watch(raw, parsed, query)
            result = self._dispatch(raw.method, raw.headers.get("Content-Type", ""), parsed, query, data)
        except ApiError as exc:
            return self._error(raw, exc, query, data)
        except ValueError as exc:  # malformed selectors
            return self._error(raw, ApiError(400, "BadRequest", str(exc)), query, data)
        self.log.append(LoggedRequest(raw.method, raw.path, query, 200, data))
        code = 201 if raw.method == "POST" else 200
        return aiohttp.web.json_response(result, status=code)

    def _error(
        self, raw: aiohttp.web.BaseRequest, exc: ApiError, query: dict[str, str] | None = None, data: Any = None
    ) -> aiohttp.web.Response:
        self.log.append(LoggedRequest(raw.method, raw.path, query or {}, exc.code, data))
        status = {
            "apiVersion": "v1",
            "kind": "Status",
            "metadata": {},
            "status": "Failure",
            "message": exc.message,
            "reason": exc.reason,
            "code": exc.code,
        }
        return aiohttp.web.json_response(status, status=exc.code)

    def requests(self, method: str | None = None, path_regex: str = "") -> list[LoggedRequest]:
        """Answered requests, filtered by method and path."""
        pattern = re.compile(path_regex)
        return [r for r in list(self.log) if (method is None or r.method == method) and pattern.search(r.path)]

    # ---- verbs -------------------------------------------------------------
    def _dispatch(self, method: str, ctype: str, p: Parsed, query: dict[str, str], data: Any) -> Any:
        rtype = p.rtype
        with self._store_lock:
            if p.name is None:
                if method == "GET":
                    return self._list(rtype, p.namespace, query)
                if method == "POST":
                    return self._create(rtype, p.namespace, data)
                raise ApiError(405, "MethodNotAllowed", f"{method} on a collection")
            key = self._key(rtype, p.namespace, p.name)
            current = None if key not in self.objects or self.objects[key].deleted else self.objects[key].raw
            if current is None:
                raise ApiError(404, "NotFound", f'{rtype.plural} "{p.name}" not found')
            if method == "GET":
                return self._scale_of(rtype, current) if p.sub == "scale" else copy.deepcopy(current)
            if method == "DELETE":
                self.objects[key].delete()
                self._rv += 1
                self._events.setdefault((rtype.group, rtype.plural), deque(maxlen=self.event_log_size)).append(
                    (self._rv, "DELETED", copy.deepcopy(current))
                )
                return {"apiVersion": "v1", "kind": "Status", "status": "Success", "details": {"name": p.name}}
            if method not in ("PATCH", "PUT"):
                raise ApiError(405, "MethodNotAllowed", method)
            if not isinstance(data, dict | list):
                raise ApiError(400, "BadRequest", "expected a JSON object body")
            return self._write(method, ctype, rtype, key, current, p.sub, data)

    def _list(self, rtype: ResourceType, namespace: str | None, query: dict[str, str]) -> dict[str, Any]:
        label_sel = parse_label_selector(query.get("labelSelector", ""))
        field_sel = query.get("fieldSelector", "")
        items = [
            copy.deepcopy(o)
            for o in self._items(rtype, namespace)
            if label_sel((o.get("metadata") or {}).get("labels") or {}) and field_selector_matches(field_sel, o)
        ]
        return {
            "apiVersion": rtype.api_version,
            "kind": f"{rtype.kind}List",
            "metadata": {"resourceVersion": str(self._rv)},
            "items": items,
        }

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

    async def _watch(
        self, raw: aiohttp.web.BaseRequest, p: Parsed, query: dict[str, str]
    ) -> aiohttp.web.StreamResponse:
        label_sel = parse_label_selector(query.get("labelSelector", ""))
        field_sel = query.get("fieldSelector", "")
        timeout = float(query.get("timeoutSeconds", "60"))
        deadline = time.monotonic() + timeout
        rtype = p.rtype

        def wanted(obj: dict[str, Any]) -> bool:
            meta = obj.get("metadata") or {}
            if p.namespace is not None and meta.get("namespace") != p.namespace:
                return False
            if p.name is not None and meta.get("name") != p.name:
                return False
            return label_sel(meta.get("labels") or {}) and field_selector_matches(field_sel, obj)

        response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(raw)
        since = query.get("resourceVersion", "")
        pending: list[dict[str, Any]] = []
        with self._store_lock:
            log = self._events.setdefault((rtype.group, rtype.plural), deque(maxlen=self.event_log_size))
            if since in ("", "0"):
                last = self._rv
                pending = [{"type": "ADDED", "object": copy.deepcopy(o)} for o in self._items(rtype, p.namespace)]
            else:
                last = int(since)
                if log and log[0][0] > last + 1 and len(log) == log.maxlen:
                    pending = [{"type": "ERROR", "object": {"kind": "Status", "apiVersion": "v1", "code": 410,
                                                              "reason": "Expired", "status": "Failure",
                                                              "message": f"too old resource version: {since}"}}]
                    last = -1
        try:
            for event in pending:
                if event["type"] == "ERROR" or wanted(event["object"]):
                    await response.write(json.dumps(event).encode() + b"\n")
            while last >= 0 and time.monotonic() < deadline and not self.closing:
                with self._store_lock:
                    fresh = [(rv, kind, obj) for rv, kind, obj in log if rv > last]
                for rv, kind, obj in fresh:
                    last = rv
                    if wanted(obj):
                        await response.write(json.dumps({"type": kind, "object": obj}).encode() + b"\n")
                await asyncio.sleep(0.02)
            await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        return response


class EmulatorThread:
    """Serve a StrictKubernetesEmulator on loopback from its own event loop in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self.emulator: StrictKubernetesEmulator | None = None
        self.url = ""
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve())
        except BaseException as exc:  # surfaced to start()
            self._error = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        async with StrictKubernetesEmulator() as emulator, Server(emulator) as server:
            self.emulator = emulator
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()

    def start(self) -> StrictKubernetesEmulator:
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None or self.emulator is None:
            raise RuntimeError(f"emulator did not start: {self._error!r}")
        return self.emulator

    def stop(self) -> None:
        if self.emulator is not None:
            self.emulator.closing = True
        if self._stop is not None:
            self.loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


class Stall:
    """A request held by the emulator until the test releases it (``StrictKubernetesEmulator.stall``).

    ``arrived`` counts every matching request as it arrives (before it is answered); ``entered``
    is set when the held one arrives.
    """

    def __init__(self, method: str, pattern: re.Pattern[str], skip: int) -> None:
        self.method, self.pattern, self.skip = method, pattern, skip
        self.arrived = 0
        self.entered = threading.Event()
        self.released = threading.Event()

    async def hold(self, method: str, path: str) -> None:
        if method != self.method or not self.pattern.search(path):
            return
        self.arrived += 1
        if self.arrived == self.skip + 1:
            self.entered.set()
            await asyncio.get_running_loop().run_in_executor(None, self.released.wait, 120)

    def release(self) -> None:
        self.released.set()
