"""The write fence: no write to the cluster unless this instance can prove it leads, right now.

``Fence.permit()`` is asked before every write the reconcile loop makes
(/scale patches, /status writes, Events) and before each policy of a cycle.
It is cheap (two attribute reads and a monotonic clock reading, no I/O) and
false as soon as either

* ``close()`` was called (SIGTERM: the loop fences itself *before* it lets
  the cycle end and releases the Lease), or
* the elector cannot prove its lease: its last successful renewal was sent
  more than ``renewDeadline`` ago on the monotonic clock, or it lost the
  Lease (``LeaderElector.holds_lease``).

The ``Fenced*`` wrappers put the check in front of the adapters, so a write
refused by the fence raises ``NotLeader`` instead of reaching the API
server; the Reconciler abandons that policy without writing anything else
(``Reconciler.reconcile``). Built by ``controller.operator.app.build_operator``
and owned by the ``OperatorLoop``.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from typing import Any, Protocol

from controller.errors import PitbossError
from controller.operator.kube import EventRecorder, EventType, PolicyObject, PolicyStore
from controller.targets.base import ScaleState, ScaleTarget, TargetKey

log = logging.getLogger(__name__)


class NotLeader(PitbossError):
    """A write refused because this instance cannot prove it holds the lease (neither retried nor reported)."""


class LeaseHolder(Protocol):
    """What the fence asks the elector (``LeaderElector.holds_lease``)."""

    def holds_lease(self) -> bool: ...


class Fence:
    """Permits writes while the lease is provably held and the process is not shutting down."""

    def __init__(self, elector: LeaseHolder | None = None) -> None:
        self.elector = elector
        self._closed: str | None = None
        self._lock = threading.Lock()
        self.refused = 0  # writes refused so far (tests, logs)

    def close(self, why: str) -> None:
        """Refuse every write from now on (idempotent: the first reason is kept)."""
        with self._lock:
            if self._closed is None:
                self._closed = why
                log.info("write fence closed: %s", why)

    @property
    def closed(self) -> bool:
        """True once ``close()`` was called."""
        return self._closed is not None

    def permit(self) -> bool:
        """May this instance write now?"""
        if self._closed is not None:
            return False
        return self.elector is None or self.elector.holds_lease()

    def why(self) -> str:
        """Why writes are refused (for the log and the outcome)."""
        if self._closed is not None:
            return self._closed
        return "this instance cannot prove it holds the lease (no renewal within renewDeadline)"

    def check(self, what: str) -> None:
        """Raise NotLeader unless ``permit()``."""
        if not self.permit():
            with self._lock:
                self.refused += 1
            raise NotLeader(f"{what}: not written: {self.why()}")


class FencedScaleTarget:
    """A ScaleTarget whose ``set_replicas`` passes the fence first (reads are not fenced)."""

    def __init__(self, inner: ScaleTarget, fence: Fence) -> None:
        self.inner = inner
        self.fence = fence

    def get_scale(self, key: TargetKey) -> ScaleState:
        """The inner target's scale."""
        return self.inner.get_scale(key)

    def set_replicas(self, key: TargetKey, replicas: int, resource_version: str | None = None) -> ScaleState:
        """Check the fence, then patch /scale."""
        self.fence.check(f"PATCH {key} /scale")
        return self.inner.set_replicas(key, replicas, resource_version)


class FencedPolicyStore:
    """A PolicyStore whose /status writes pass the fence first."""

    def __init__(self, inner: PolicyStore, fence: Fence) -> None:
        self.inner = inner
        self.fence = fence

    def list_policies(self, namespace: str | None) -> list[PolicyObject]:
        """The inner store's policies."""
        return self.inner.list_policies(namespace)

    def list_events(self, namespace: str | None) -> list[dict[str, Any]]:
        """The inner store's TrafficEvents."""
        return self.inner.list_events(namespace)

    def write_status(self, policy: PolicyObject, status: dict[str, Any]) -> dict[str, Any] | None:
        """Check the fence, then write /status."""
        self.fence.check(f"scalingpolicy/{policy.name} in {policy.namespace} /status")
        return self.inner.write_status(policy, status)


class FencedEventRecorder:
    """An EventRecorder whose Events pass the fence first."""

    def __init__(self, inner: EventRecorder, fence: Fence) -> None:
        self.inner = inner
        self.fence = fence

    def record(
        self, *, namespace: str, kind: str, name: str, event_type: EventType, reason: str, message: str, at: datetime
    ) -> None:
        """Check the fence, then create the Event."""
        self.fence.check(f"event {reason} on {kind.lower()}/{name}")
        self.inner.record(namespace=namespace, kind=kind, name=name, event_type=event_type, reason=reason,
                          message=message, at=at)
