"""The ScaleTarget protocol: how the loop reads and sets a workload's replicas.

Two adapters implement it: ``KubernetesScaleTarget`` (the /scale subresource
through the official client) and ``InMemoryScaleTarget`` (the fake beside it,
for unit tests and local what-ifs). Called by the reconcile loop only; the
decision core never sees a target.

Errors use the shared vocabulary: a 409 is ``ScaleConflict`` (retryable:
re-read and try again), a 403 is ``TargetForbidden`` and a 404
``TargetNotFound`` (permanent: report and move on), anything transient is a
``RetryableError``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from controller.errors import PermanentError, RetryableError


@dataclass(frozen=True)
class TargetKey:
    """A workload addressed through /scale: any kind with a scale subresource (apps/v1 by default)."""

    namespace: str
    kind: str
    name: str
    api_version: str = "apps/v1"

    def __str__(self) -> str:
        group = self.api_version.rpartition("/")[0]
        kind = self.kind.lower() if group in ("apps", "") else f"{self.kind.lower()}.{group}"
        return f"{kind}/{self.name} in {self.namespace}"


@dataclass(frozen=True)
class ScaleState:
    """What /scale (and the workload's status) said: spec and observed replicas."""

    replicas: int  # spec.replicas: what is asked for
    status_replicas: int  # status.replicas: pods that exist
    ready_replicas: int  # pods that are ready
    resource_version: str | None = None  # for optimistic concurrency on the next write
    selector: str = ""


class TargetNotFound(PermanentError):
    """The workload (or its /scale) does not exist: HTTP 404."""


class TargetForbidden(PermanentError):
    """The operator may not read or scale the workload: HTTP 403."""


class ScaleConflict(RetryableError):
    """Someone else wrote the workload since we read it: HTTP 409."""


@runtime_checkable
class ScaleTarget(Protocol):
    """Read and set the replicas of a workload."""

    def get_scale(self, key: TargetKey) -> ScaleState:
        """The current scale of ``key``."""
        ...

    def set_replicas(self, key: TargetKey, replicas: int, resource_version: str | None = None) -> ScaleState:
        """Set spec.replicas; with ``resource_version`` the write fails with ScaleConflict if it is stale."""
        ...
