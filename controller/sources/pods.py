"""The pods a scrape policy reads: a Service's EndpointSlices, or the pods the target's selector picks.

Called every round by the ``ScrapeSource`` of a ``metric.scrape`` policy
(built by ``controller.operator.app.SourceFactory``), through the official
client. Each call lists once and returns one ``Endpoint`` per pod, with its
own URL (``scheme://<pod IP>:<port><path>``), its pod name and whether it
serves traffic, so every pod is scraped on its own (a Service URL would
reach a random pod per scrape).

* ``EndpointSliceTargets``: ``discovery.k8s.io/v1`` EndpointSlices labelled
  ``kubernetes.io/service-name=<service>``; an endpoint is ready unless its
  ``conditions.ready`` is false or it is terminating (nil means ready, as the
  API documents); the port is the slice's port of that name (or number), or
  its only port.
* ``SelectorTargets``: the pods of the target's /scale label selector (read
  each round, so it works for any kind with a scale subresource); a pod
  without an IP has not started and is skipped; ready means its ``Ready``
  condition is True and it is not being deleted; the port is the container
  port of that name (or the number), or the pod's only port.

A listing failure raises (retryable or permanent): the demand is then
unknown, never zero. RBAC: list on ``endpointslices`` or on ``pods``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kubernetes import client

from controller.errors import PermanentError
from controller.sources.scrape import Endpoint
from controller.targets.kubernetes import call_api

SERVICE_LABEL = "kubernetes.io/service-name"


def endpoint_url(scheme: str, ip: str, port: int, path: str) -> str:
    """``scheme://ip:port/path`` (IPv6 addresses in brackets)."""
    host = f"[{ip}]" if ":" in ip else ip
    return f"{scheme}://{host}:{port}{path}"


def pick_port(port: str | None, ports: Iterable[tuple[str | None, int]], where: str) -> int:
    """The port named (or numbered) ``port`` among (name, number) pairs, or the only one when ``port`` is None."""
    pairs = [(name, number) for name, number in ports if number]
    if port is None:
        if len(pairs) != 1:
            raise PermanentError(f"metric.scrape.port: {where} has {len(pairs)} ports; name the one that serves"
                                 " /metrics")
        return int(pairs[0][1])
    if port.isdigit():
        return int(port)
    for name, number in pairs:
        if name == port:
            return int(number)
    raise PermanentError(f"metric.scrape.port: {where} has no port named {port!r}")


class EndpointSliceTargets:
    """The endpoints of one Service, from its EndpointSlices."""

    def __init__(self, api_client: client.ApiClient, namespace: str, service: str, *, port: str | None = None,
                 path: str = "/metrics", scheme: str = "http") -> None:
        self.discovery = client.DiscoveryV1Api(api_client)
        self.namespace, self.service = namespace, service
        self.port, self.path, self.scheme = port, path, scheme

    def __call__(self) -> list[Endpoint]:
        slices = call_api(self.discovery.list_namespaced_endpoint_slice, f"endpointslices of service {self.service}",
                          self.namespace, label_selector=f"{SERVICE_LABEL}={self.service}")
        out: list[Endpoint] = []
        for item in slices.items or []:
            if not item.endpoints:
                continue
            where = f"EndpointSlice {item.metadata.name if item.metadata else '?'} of service {self.service}"
            number = pick_port(self.port, [(p.name, p.port or 0) for p in item.ports or []], where)
            for ep in item.endpoints:
                if not ep.addresses:
                    continue
                cond = ep.conditions
                ready = cond is None or (cond.ready is not False and not cond.terminating)
                name = ep.target_ref.name if ep.target_ref is not None and ep.target_ref.name else ep.addresses[0]
                out.append(Endpoint(endpoint_url(self.scheme, ep.addresses[0], number, self.path), name, ready))
        return out


class SelectorTargets:
    """The pods the scaled target's label selector picks (``selector()`` reads it from /scale)."""

    def __init__(self, api_client: client.ApiClient, namespace: str, selector: Callable[[], str], *,
                 port: str | None = None, path: str = "/metrics", scheme: str = "http") -> None:
        self.core = client.CoreV1Api(api_client)
        self.namespace, self.selector = namespace, selector
        self.port, self.path, self.scheme = port, path, scheme

    def __call__(self) -> list[Endpoint]:
        selector = self.selector()
        if not selector:
            raise PermanentError("metric.scrape: the target's /scale reports no label selector; set"
                                 " metric.scrape.service to scrape a Service's endpoints")
        pods = call_api(self.core.list_namespaced_pod, f"pods of {selector}", self.namespace,
                        label_selector=selector)
        out: list[Endpoint] = []
        for pod in pods.items or []:
            status = pod.status
            if status is None or not status.pod_ip or status.phase in ("Succeeded", "Failed"):
                continue  # not started yet, or done
            meta = pod.metadata
            name = str(meta.name if meta is not None else status.pod_ip)
            number = pick_port(self.port, _container_ports(pod), f"pod {name}")
            ready = (meta is None or meta.deletion_timestamp is None) and any(
                c.type == "Ready" and c.status == "True" for c in status.conditions or [])
            out.append(Endpoint(endpoint_url(self.scheme, status.pod_ip, number, self.path), name, ready))
        return out


def _container_ports(pod: Any) -> list[tuple[str | None, int]]:
    return [(p.name, p.container_port) for c in (pod.spec.containers if pod.spec else []) or []
            for p in c.ports or []]
