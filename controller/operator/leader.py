"""Leader election on a coordination.k8s.io/v1 Lease, as client-go does it.

One call, ``try_acquire_or_renew()``, per loop iteration: create the Lease
when it is missing, renew it when we hold it, take it over when its holder
let it expire (renewTime + leaseDurationSeconds before now), otherwise stay
a follower. Every write carries the Lease's resourceVersion, so two
instances racing for it cannot both win (the loser gets a 409).
``release()`` (on SIGTERM) empties holderIdentity so another instance takes
over at once. Time comes from the injected clock. Called by the loop.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from controller.errors import PitbossError
from controller.operator.clock import Clock
from controller.operator.kube import LeaseApi, micro_time
from controller.targets.base import ScaleConflict

log = logging.getLogger(__name__)


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


class LeaderElector:
    """Holds (or waits for) one Lease in the operator's namespace."""

    def __init__(
        self,
        api: LeaseApi,
        clock: Clock,
        *,
        namespace: str,
        name: str = "pitboss-operator",
        identity: str,
        lease_duration: timedelta = timedelta(seconds=15),
    ) -> None:
        if lease_duration <= timedelta(0):
            raise ValueError("leaseDuration: must be positive")
        self.api = api
        self.clock = clock
        self.namespace = namespace
        self.name = name
        self.identity = identity
        self.lease_duration = lease_duration
        self.is_leader = False
        self.transitions_seen = 0

    def _spec(self, now: datetime, *, acquire: datetime, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration.total_seconds())),
            "acquireTime": micro_time(acquire),
            "renewTime": micro_time(now),
            "leaseTransitions": transitions,
        }

    def try_acquire_or_renew(self) -> bool:
        """One election round; returns whether this instance leads now."""
        now = self.clock.now()
        try:
            lease = self.api.get(self.namespace, self.name)
            if lease is None:
                self.api.create(self.namespace, self.name, self._spec(now, acquire=now, transitions=0))
                return self._set(True, "created the lease")
            spec = lease.get("spec") or {}
            rv = str((lease.get("metadata") or {}).get("resourceVersion", ""))
            holder = spec.get("holderIdentity") or ""
            transitions = int(spec.get("leaseTransitions") or 0)
            self.transitions_seen = transitions
            if holder == self.identity:
                acquire = _parse_time(spec.get("acquireTime")) or now
                spec = self._spec(now, acquire=acquire, transitions=transitions)
                self.api.replace(self.namespace, self.name, rv, spec)
                return self._set(True, "renewed")
            renewed = _parse_time(spec.get("renewTime"))
            duration = timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0))
            expired = not holder or renewed is None or renewed + duration < now
            if not expired:
                return self._set(False, f"held by {holder}")
            self.api.replace(self.namespace, self.name, rv, self._spec(now, acquire=now, transitions=transitions + 1))
            return self._set(True, f"took over from {holder or 'nobody'}")
        except ScaleConflict:
            return self._set(False, "lost a race for the lease (409)")
        except PitbossError as exc:
            # Cannot reach or write the Lease: stop acting, the lease will expire for others.
            log.warning("leader election: %s", exc)
            return self._set(False, str(exc))

    def _set(self, leader: bool, why: str) -> bool:
        if leader != self.is_leader:
            log.info("leader election: %s is %s (%s)", self.identity, "leader" if leader else "follower", why)
        self.is_leader = leader
        return leader

    def release(self) -> None:
        """Give the lease up (on shutdown) so a follower takes over without waiting for expiry."""
        if not self.is_leader:
            return
        try:
            lease = self.api.get(self.namespace, self.name)
            if lease and (lease.get("spec") or {}).get("holderIdentity") == self.identity:
                spec = dict(lease["spec"])
                spec.update(
                    {"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": micro_time(self.clock.now())}
                )
                self.api.replace(self.namespace, self.name, str(lease["metadata"]["resourceVersion"]), spec)
        except PitbossError as exc:
            log.warning("leader election: release failed: %s", exc)
        self.is_leader = False
