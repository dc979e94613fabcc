"""An in-memory ScaleTarget: the fake beside the Kubernetes /scale adapter.

Used by unit tests of the loop and by anything that wants a target without a
cluster. It keeps resourceVersions and answers 409/403/404 the way the real
adapter raises them, so callers exercise the same error paths.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from controller.targets.base import ScaleConflict, ScaleState, TargetForbidden, TargetKey, TargetNotFound


@dataclass
class _Workload:
    state: ScaleState
    forbidden: bool = False


class InMemoryScaleTarget:
    """Workloads in a dict; pods become ready the moment they are asked for (configurable)."""

    def __init__(self, *, instant_ready: bool = True) -> None:
        self._items: dict[TargetKey, _Workload] = {}
        self._version = 0
        self.instant_ready = instant_ready
        self.writes: list[tuple[TargetKey, int]] = []

    def _next_version(self) -> str:
        self._version += 1
        return str(self._version)

    def add(self, key: TargetKey, replicas: int, ready: int | None = None, *, forbidden: bool = False) -> None:
        """Create or replace a workload."""
        ready = replicas if ready is None else ready
        state = ScaleState(replicas, replicas, ready, self._next_version())
        self._items[key] = _Workload(state, forbidden)

    def bump(self, key: TargetKey) -> None:
        """Change the workload behind the caller's back (its resourceVersion moves on)."""
        workload = self._lookup(key)
        workload.state = replace(workload.state, resource_version=self._next_version())

    def _lookup(self, key: TargetKey) -> _Workload:
        workload = self._items.get(key)
        if workload is None:
            raise TargetNotFound(f"{key}: not found")
        if workload.forbidden:
            raise TargetForbidden(f"{key}: forbidden")
        return workload

    def get_scale(self, key: TargetKey) -> ScaleState:
        """The current scale of ``key``."""
        return self._lookup(key).state

    def set_replicas(self, key: TargetKey, replicas: int, resource_version: str | None = None) -> ScaleState:
        """Set spec.replicas, failing with ScaleConflict on a stale resource_version."""
        if replicas < 0:
            raise ValueError(f"replicas: must be >= 0, got {replicas}")
        workload = self._lookup(key)
        if resource_version is not None and resource_version != workload.state.resource_version:
            raise ScaleConflict(f"{key}: stale resourceVersion {resource_version}")
        ready = replicas if self.instant_ready else workload.state.ready_replicas
        workload.state = ScaleState(replicas, replicas, ready, self._next_version(), workload.state.selector)
        self.writes.append((key, replicas))
        return workload.state
