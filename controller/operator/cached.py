"""The operator's reads from watch-fed caches, behind the ports the reconcile loop already uses.

``CachedPolicyStore`` (a ``PolicyStore``) lists ScalingPolicies and
TrafficEvents from their informers, and ``CachedScaleTarget`` (a
``ScaleTarget``) reads a Deployment's or StatefulSet's scale (spec and
status replicas, ready replicas, selector, resourceVersion) from the
workload informers, so a steady cycle sends no LIST and no GET per policy:
only the writes, which still go to the API with the resourceVersion as a
precondition.

The consistency guards, each counted in
``pitboss_operator_cache_fallbacks_total{resource,reason}`` (a cache going
out of use and back into it is logged and shown by
``pitboss_operator_cache_synced{resource}``):

* a cache that has not synced (first list not done) is not read: the port
  reads the API directly, so a cycle never decides on empty data;
* a cache whose stream broke (410 Gone, a broken connection) keeps serving
  its last snapshot while it relists, for at most ``Informers.max_stale``
  seconds (``--cache-max-stale``, default ``MAX_STALE_SYNC_PERIODS`` sync
  periods, ``max_stale_seconds``: a relist of
  10,000 policies must not turn the next cycles into 10,000 GETs each), with
  ``pitboss_operator_cache_stale_seconds{resource}`` saying how old it is;
  then the API is read until the relist completes. A write decided on the
  stale snapshot carries its resourceVersion: a stale one meets a 409, and
  the next read of that target goes to the API (below);
* after a 409 on a /scale patch the next read of that target goes to the API
  (``controller.cycle.act`` re-reads and decides again from the fresh
  scale), never to the cache that may not have seen the other writer yet;
* a target the cache does not hold (just created; another kind, such as a
  CloudNativePG Cluster) is read from the API, whose 404 stays a 404.

After its own successful write (a /status or /scale patch) the port stores
what the API answered in the cache (``Informer.replace_if``), so the next
cycle writes with the new resourceVersion even before the watch delivers the
change. Built by ``controller.operator.app.build_operator`` (``cache=True``);
``Informers`` starts and stops the four informers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from kubernetes import client

from controller.operator.informer import Informer, object_key
from controller.operator.kube import PolicyObject, PolicyStore
from controller.operator.resources import EVENT_PLURAL, GROUP, POLICY_PLURAL, VERSION
from controller.targets.base import ScaleConflict, ScaleState, ScaleTarget, TargetKey
from controller.telemetry.metrics import OperatorMetrics

log = logging.getLogger(__name__)

WORKLOAD_PLURALS = {"Deployment": "deployments", "StatefulSet": "statefulsets"}
# The default --cache-max-stale, in sync periods (the one place it is set): a relist of 10,000 policies must not
# turn the next cycles into a LIST plus 10,000 GETs each.
MAX_STALE_SYNC_PERIODS = 2


def max_stale_seconds(sync_period: timedelta, max_stale: timedelta | None = None) -> float:
    """Seconds a relisting cache's snapshot is still read: ``max_stale``, or by default two sync periods."""
    return (MAX_STALE_SYNC_PERIODS * sync_period if max_stale is None else max_stale).total_seconds()


def format_selector(selector: Any) -> str:
    """A LabelSelector as /scale's ``status.selector`` says it (metav1.FormatLabelSelector's syntax)."""
    if not isinstance(selector, dict):
        return ""
    parts = [(k, f"{k}={v}") for k, v in (selector.get("matchLabels") or {}).items()]
    for expr in selector.get("matchExpressions") or []:
        key, op = str(expr.get("key", "")), str(expr.get("operator", ""))
        values = ",".join(sorted(str(v) for v in expr.get("values") or []))
        text = {"In": f"{key} in ({values})", "NotIn": f"{key} notin ({values})", "Exists": key,
                "DoesNotExist": f"!{key}"}.get(op)
        if text is not None:
            parts.append((key, text))
    return ",".join(text for _, text in sorted(parts))


def workload_scale(raw: dict[str, Any]) -> ScaleState:
    """What GET /scale and /status would say of a Deployment or StatefulSet (one object of the watch)."""
    spec, status = raw.get("spec") or {}, raw.get("status") or {}
    replicas = spec.get("replicas", 1)
    return ScaleState(
        replicas=int(replicas if replicas is not None else 1),
        status_replicas=int(status.get("replicas") or 0),
        ready_replicas=int(status.get("readyReplicas") or 0),
        resource_version=str((raw.get("metadata") or {}).get("resourceVersion") or "") or None,
        selector=format_selector(spec.get("selector")),
    )


def _scale_version(state: ScaleState) -> str:
    return state.resource_version or ""


def _policy_version(policy: PolicyObject) -> str:
    return policy.resource_version


def _event_version(raw: dict[str, Any]) -> str:
    return str((raw.get("metadata") or {}).get("resourceVersion") or "")


@dataclass
class Informers:
    """The operator's four informers: ScalingPolicies, TrafficEvents, Deployments, StatefulSets."""

    policies: Informer[PolicyObject]
    events: Informer[dict[str, Any]]
    workloads: dict[str, Informer[ScaleState]]  # by kind
    max_stale: float  # seconds a broken-off snapshot is still read while its informer relists (max_stale_seconds)

    @classmethod
    def build(cls, api_client: client.ApiClient, namespace: str | None, *, max_stale: float,
              timeout_seconds: int = 300,
              on_change: Callable[[str, str, dict[str, Any]], None] | None = None) -> Informers:
        """Informers over ``namespace`` (None: every namespace); ``on_change(plural, type, raw)`` per event;
        a relisting informer's last snapshot read for ``max_stale`` seconds."""
        custom, apps = client.CustomObjectsApi(api_client), client.AppsV1Api(api_client)

        def custom_list(plural: str) -> tuple[Callable[..., Any], tuple[Any, ...]]:
            if namespace:
                return custom.list_namespaced_custom_object, (GROUP, VERSION, namespace, plural)
            return custom.list_cluster_custom_object, (GROUP, VERSION, plural)

        def changes(plural: str) -> Callable[[str, dict[str, Any]], None] | None:
            if on_change is None:
                return None
            return lambda kind, raw: on_change(plural, kind, raw)

        fn, args = custom_list(POLICY_PLURAL)
        policies = Informer(POLICY_PLURAL, fn, args, PolicyObject.from_raw, _policy_version,
                            timeout_seconds=timeout_seconds, on_change=changes(POLICY_PLURAL))
        fn, args = custom_list(EVENT_PLURAL)
        events: Informer[dict[str, Any]] = Informer(EVENT_PLURAL, fn, args, lambda raw: raw, _event_version,
                                                    timeout_seconds=timeout_seconds,
                                                    on_change=changes(EVENT_PLURAL))
        lists = {
            "Deployment": (apps.list_namespaced_deployment, (namespace,)) if namespace
            else (apps.list_deployment_for_all_namespaces, ()),
            "StatefulSet": (apps.list_namespaced_stateful_set, (namespace,)) if namespace
            else (apps.list_stateful_set_for_all_namespaces, ()),
        }
        workloads = {kind: Informer(WORKLOAD_PLURALS[kind], fn, args, workload_scale, _scale_version,
                                    timeout_seconds=timeout_seconds) for kind, (fn, args) in lists.items()}
        return cls(policies, events, workloads, max_stale)

    def all(self) -> list[Informer[Any]]:
        return [self.policies, self.events, *self.workloads.values()]

    def start(self) -> Informers:
        for informer in self.all():
            informer.start()
        return self

    def stop(self) -> None:
        for informer in self.all():
            informer.stop()

    def wait_synced(self, timeout: float) -> bool:
        """True when every informer synced within ``timeout`` seconds (each waited for in turn)."""
        return all(informer.wait_synced(timeout) for informer in self.all())


class _Fallbacks:
    """Counts the reads that bypassed a cache; logs (and sets the synced and stale gauges) when a cache goes in
    or out of use, or is read stale."""

    def __init__(self, metrics: OperatorMetrics | None) -> None:
        self.metrics = metrics
        self._reading: dict[str, str] = {}  # resource -> "synced", "stale" (a relist's snapshot) or "api"

    def _flip(self, resource: str, reading: str) -> bool:
        if self._reading.get(resource) == reading:
            return False
        self._reading[resource] = reading
        if self.metrics is not None:
            self.metrics.cache_synced.labels(resource).set(1 if reading == "synced" else 0)
        return True

    def usable(self, resource: str, informer: Informer[Any], max_stale: float) -> bool:
        """May ``resource``'s cache be read: synced, or relisting with a snapshot at most ``max_stale`` s old."""
        age = informer.staleness()
        if age == 0.0:
            if self._flip(resource, "synced"):
                self._stale(resource, 0.0)
                log.info("%s cache synced: reading from it", resource)
            return True
        if age is not None and age <= max_stale:
            self._stale(resource, age)
            if self._flip(resource, "stale"):
                log.warning("%s cache is relisting: reading its snapshot of %.1fs ago for at most %.0fs", resource,
                            age, max_stale)
            return True
        if age is not None:
            self._stale(resource, age)
        self.note(resource, "unsynced")
        return False

    def _stale(self, resource: str, age: float) -> None:
        if self.metrics is not None:
            self.metrics.cache_stale.labels(resource).set(age)

    def note(self, resource: str, why: str) -> None:
        """A read of ``resource`` went to the API: ``unsynced``, ``conflict`` (after a 409) or ``miss``."""
        if self.metrics is not None:
            self.metrics.cache_fallbacks.labels(resource, why).inc()
        if why == "unsynced" and self._flip(resource, "api"):
            log.warning("%s cache has not synced: reading from the API until it has", resource)


class CachedPolicyStore:
    """A PolicyStore that lists from the informers once synced; /status writes go to ``inner``."""

    def __init__(self, inner: PolicyStore, informers: Informers, metrics: OperatorMetrics | None = None) -> None:
        self.inner = inner
        self.informers = informers
        self.fallbacks = _Fallbacks(metrics)

    def list_policies(self, namespace: str | None) -> list[PolicyObject]:
        """Every ScalingPolicy, from the cache (from the API while it has not synced)."""
        informer = self.informers.policies
        if not self.fallbacks.usable(POLICY_PLURAL, informer, self.informers.max_stale):
            return self.inner.list_policies(namespace)
        return [p for p in informer.items() if namespace is None or p.namespace == namespace]

    def list_events(self, namespace: str | None) -> list[dict[str, Any]]:
        """Every TrafficEvent, from the cache (from the API while it has not synced)."""
        informer = self.informers.events
        if not self.fallbacks.usable(EVENT_PLURAL, informer, self.informers.max_stale):
            return self.inner.list_events(namespace)
        return [e for e in informer.items() if namespace is None or object_key(e)[0] == namespace]

    def write_status(self, policy: PolicyObject, status: dict[str, Any]) -> dict[str, Any] | None:
        """Patch /status through ``inner`` (409 when the policy changed since it was read); cache the answer."""
        written = self.inner.write_status(policy, status)
        if written is not None and written.get("metadata"):
            self.informers.policies.replace_if((policy.namespace, policy.name), policy.resource_version,
                                               PolicyObject.from_raw(written))
        return written


class CachedScaleTarget:
    """A ScaleTarget reading Deployments and StatefulSets from their informers; writes go to ``inner``."""

    def __init__(self, inner: ScaleTarget, informers: Informers, metrics: OperatorMetrics | None = None,
                 fallbacks: _Fallbacks | None = None) -> None:
        self.inner = inner
        self.informers = informers
        self.fallbacks = fallbacks or _Fallbacks(metrics)
        self._reread: set[TargetKey] = set()  # conflicted: the next read goes to the API
        self._lock = threading.Lock()

    def _informer(self, key: TargetKey) -> Informer[ScaleState] | None:
        return self.informers.workloads.get(key.kind) if key.api_version == "apps/v1" else None

    def get_scale(self, key: TargetKey) -> ScaleState:
        """The cached scale of ``key``; the API's when uncached, unsynced or just conflicted."""
        informer = self._informer(key)
        if informer is None:
            return self.inner.get_scale(key)  # a kind without an informer (e.g. a CloudNativePG Cluster)
        resource = WORKLOAD_PLURALS[key.kind]
        with self._lock:
            conflicted = key in self._reread
            self._reread.discard(key)
        if conflicted:
            self.fallbacks.note(resource, "conflict")
            return self.inner.get_scale(key)
        if not self.fallbacks.usable(resource, informer, self.informers.max_stale):
            return self.inner.get_scale(key)
        state = informer.get((key.namespace, key.name))
        if state is None:
            self.fallbacks.note(resource, "miss")
            return self.inner.get_scale(key)  # created since the last event, or absent: the API says which
        return state

    def set_replicas(self, key: TargetKey, replicas: int, resource_version: str | None = None) -> ScaleState:
        """Patch /scale through ``inner``; after a 409 the next read of ``key`` bypasses the cache."""
        try:
            after = self.inner.set_replicas(key, replicas, resource_version)
        except ScaleConflict:
            with self._lock:
                self._reread.add(key)
            raise
        informer = self._informer(key)
        if informer is not None and resource_version is not None:
            cached = informer.get((key.namespace, key.name))
            if cached is not None:  # the new spec and resourceVersion; status as last seen, until the watch
                informer.replace_if((key.namespace, key.name), resource_version,
                                    replace(cached, replicas=after.replicas,
                                            resource_version=after.resource_version))
        return after


__all__ = ["MAX_STALE_SYNC_PERIODS", "CachedPolicyStore", "CachedScaleTarget", "Informers", "format_selector",
           "max_stale_seconds", "workload_scale"]
