"""Wake the operator's loop on spec changes: the watches without the informers, and the informers' filter.

``watch_stream`` watches ScalingPolicies or TrafficEvents through the
official client (``OperatorLoop.start_watch`` runs it on a thread; a 410
relists) and wakes the loop on every change; ``wake`` is the informers'
``on_change`` (``controller.operator.cached``). Both skip a policy event
that only carries the operator's own status write (``spec_event``:
generation == observedGeneration). Split from ``controller.operator.app``,
which wires them (``build_operator``, ``start_watches``).
"""

from __future__ import annotations

import threading
from typing import Any

from kubernetes import client, watch

from controller.operator.loop import OperatorLoop
from controller.operator.resources import GROUP, POLICY_PLURAL, VERSION


def wake(loops: list[OperatorLoop], plural: str, kind: str, raw: dict[str, Any]) -> None:
    """An informer's event: wake the loop for spec changes (not our own status writes) and relists."""
    if loops and (kind == "RELIST" or spec_event(plural, {"type": kind, "raw_object": raw})):
        loops[0].wake()


def watch_stream(api_client: client.ApiClient, plural: str, namespace: str | None, loop: OperatorLoop,
                 *, timeout_seconds: int = 60) -> Any:
    """A function for ``OperatorLoop.start_watch``: watch ``plural`` and wake the loop on every change."""
    custom = client.CustomObjectsApi(api_client)

    def stream(stop: threading.Event) -> None:
        resource_version = None
        while not stop.is_set():
            w = watch.Watch()
            kwargs: dict[str, Any] = {"timeout_seconds": timeout_seconds}
            if resource_version:
                kwargs["resource_version"] = resource_version
            if namespace:
                events = w.stream(custom.list_namespaced_custom_object, GROUP, VERSION, namespace, plural, **kwargs)
            else:
                events = w.stream(custom.list_cluster_custom_object, GROUP, VERSION, plural, **kwargs)
            for event in events:
                if stop.is_set():
                    w.stop()
                    return
                obj = event.get("raw_object") or event.get("object") or {}
                if event.get("type") == "ERROR":
                    resource_version = None  # 410 Gone: start over from a fresh list
                    break
                resource_version = (obj.get("metadata") or {}).get("resourceVersion", resource_version)
                if event.get("type") in ("ADDED", "MODIFIED", "DELETED") and spec_event(plural, event):
                    loop.wake()

    return stream


def spec_event(plural: str, event: dict[str, Any]) -> bool:
    """Wake for spec changes, not for our own status writes (generation == observedGeneration)."""
    if plural != POLICY_PLURAL or event.get("type") != "MODIFIED":
        return True
    obj = event.get("raw_object") or {}
    generation = (obj.get("metadata") or {}).get("generation")
    observed = (obj.get("status") or {}).get("observedGeneration")
    return generation != observed


__all__ = ["spec_event", "wake", "watch_stream"]
