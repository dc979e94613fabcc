"""Leader election on a coordination.k8s.io/v1 Lease, with client-go's semantics.

One call, ``try_acquire_or_renew()``, per election round (every
``retry_period``, from the loop's renewer thread or ``OperatorLoop.step``):

* A follower never trusts the holder's ``renewTime``: wall clocks of two
  machines may be seconds apart. It remembers the Lease record it last saw
  and *when it saw it change*, on its own monotonic clock (client-go's
  ``observedTime``); the lease has expired only when the record has not
  changed for ``leaseDurationSeconds`` of that clock. Then it writes itself
  in as holder with the resourceVersion it read: of two candidates racing
  for it, the second gets a 409 and stays a follower.
* The leader renews every round (first optimistically with the
  resourceVersion of its own last write; on 409 it reads the Lease again).
  A 409 means someone else wrote the Lease: not leader this round. When it
  cannot renew for ``renew_deadline`` it gives leadership up.
* ``holds_lease()`` is the cheap proof the write fence asks before every
  write (``controller.operator.fence``): leader, and the last successful
  renewal was *sent* less than ``renew_deadline`` ago on the monotonic
  clock. A follower can take over no sooner than ``lease_duration`` after
  that renewal reached the API server, so the leader's writes stop at least
  ``lease_duration - renew_deadline`` before anyone else's can start.

``release()`` (on SIGTERM, after the fence has closed and the cycle has
stopped) empties holderIdentity so a follower takes over at once. The wall
clock only stamps acquireTime/renewTime for people reading the Lease.
Called by the loop; built by ``controller.operator.app.build_operator``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from controller.errors import PitbossError
from controller.operator.clock import Clock
from controller.operator.kube import LeaseApi, micro_time
from controller.targets.base import ScaleConflict

log = logging.getLogger(__name__)

JITTER = 1.2  # client-go's JitterFactor: renewDeadline must exceed retryPeriod * JITTER


def election_timings(
    lease_duration: timedelta, renew_deadline: timedelta | None = None, retry_period: timedelta | None = None,
) -> tuple[timedelta, timedelta, timedelta]:
    """(lease, renew deadline, retry period), defaults in client-go's 15:10:2 proportions; ValueError naming the flag.

    client-go's rules: leaseDuration > renewDeadline > retryPeriod * 1.2 > 0.
    """
    if lease_duration <= timedelta(0):
        raise ValueError("leaseDuration: must be positive")
    deadline = renew_deadline if renew_deadline is not None else lease_duration * 2 / 3
    retry = retry_period if retry_period is not None else lease_duration * 2 / 15
    if retry <= timedelta(0):
        raise ValueError("retryPeriod: must be positive")
    if deadline >= lease_duration:
        raise ValueError(f"renewDeadline: must be shorter than leaseDuration {lease_duration.total_seconds():g}s")
    if deadline <= retry * JITTER:
        raise ValueError(f"renewDeadline: must be longer than {JITTER:g} x retryPeriod "
                         f"({(retry * JITTER).total_seconds():g}s)")
    return lease_duration, deadline, retry


@dataclass(frozen=True)
class Election:
    """Who this replica is and its election timings: the one way both electors take them.

    Built once (``Election.of``, which fills client-go's defaults and checks its rules) and
    handed to ``LeaderElector`` and ``ShardedElector``, so every Lease of a replica runs on the
    same identity and timings and the loop reads its cadence from here.
    """

    identity: str
    lease_duration: timedelta
    renew_deadline: timedelta
    retry_period: timedelta

    @classmethod
    def of(cls, identity: str, lease_duration: timedelta = timedelta(seconds=15),
           renew_deadline: timedelta | None = None, retry_period: timedelta | None = None) -> Election:
        """Defaults in client-go's 15:10:2 proportions; ValueError naming the flag (``election_timings``)."""
        if not identity:
            raise ValueError("identity: must not be empty")
        return cls(identity, *election_timings(lease_duration, renew_deadline, retry_period))


class LeaderElector:
    """Holds (or waits for) one Lease in the operator's namespace."""

    def __init__(
        self,
        api: LeaseApi,
        clock: Clock,
        election: Election,
        *,
        namespace: str,
        name: str = "pitboss-operator",
    ) -> None:
        self.election = election
        self.identity = election.identity
        self.lease_duration, self.renew_deadline, self.retry_period = (
            election.lease_duration, election.renew_deadline, election.retry_period)
        self.api = api
        self.clock = clock
        self.namespace = namespace
        self.name = name
        self.is_leader = False
        self.holder = ""  # the holder in the record last seen
        self.transitions_seen = 0
        self._lock = threading.Lock()
        self._observed: tuple[str, dict[str, Any]] | None = None  # (resourceVersion, spec) last seen
        self._observed_at = 0.0  # monotonic time the record was last seen to change (or written by us)
        self._renewed_at: float | None = None  # monotonic time our last successful write was *sent*

    # ---- the fence's question ------------------------------------------------
    def holds_lease(self) -> bool:
        """Leader, and the last successful renewal was sent less than renewDeadline ago (monotonic)."""
        with self._lock:
            sent = self._renewed_at
            leader = self.is_leader
        return leader and sent is not None and self.clock.monotonic() - sent < self.renew_deadline.total_seconds()

    # ---- one round -------------------------------------------------------------
    def _spec(self, *, acquire: str, transitions: int) -> dict[str, Any]:
        return {
            "holderIdentity": self.identity,
            "leaseDurationSeconds": max(1, round(self.lease_duration.total_seconds())),
            "acquireTime": acquire,
            "renewTime": micro_time(self.clock.now()),
            "leaseTransitions": transitions,
        }

    def _observe(self, lease: dict[str, Any]) -> None:
        rv = str((lease.get("metadata") or {}).get("resourceVersion", ""))
        spec = dict(lease.get("spec") or {})
        record = (rv, spec)
        if record != self._observed:
            self._observed = record
            self._observed_at = self.clock.monotonic()
        self.holder = str(spec.get("holderIdentity") or "")
        self.transitions_seen = int(spec.get("leaseTransitions") or 0)

    def _won(self, lease: dict[str, Any], sent: float, why: str) -> bool:
        with self._lock:
            self._observe(lease)
            self._renewed_at = sent
        return self._set(True, why)

    def try_acquire_or_renew(self) -> bool:
        """One election round; returns whether this instance leads now."""
        sent = self.clock.monotonic()  # before any request: the lease we win is valid from no earlier than this
        if self.is_leader and self._observed is not None:  # fast path: renew on top of our own last write
            rv, spec = self._observed
            body = self._spec(acquire=str(spec.get("acquireTime") or micro_time(self.clock.now())),
                              transitions=int(spec.get("leaseTransitions") or 0))
            try:
                return self._won(self.api.replace(self.namespace, self.name, rv, body), sent, "renewed")
            except ScaleConflict:
                pass  # someone wrote the Lease since: read it and decide below
            except PitbossError as exc:
                return self._failed(exc)
        try:
            lease = self.api.get(self.namespace, self.name)
            if lease is None:
                body = self._spec(acquire=micro_time(self.clock.now()), transitions=0)
                return self._won(self.api.create(self.namespace, self.name, body), sent, "created the lease")
            with self._lock:
                self._observe(lease)
                observed_at = self._observed_at
            spec = lease.get("spec") or {}
            holder = str(spec.get("holderIdentity") or "")
            duration = float(spec.get("leaseDurationSeconds") or 0)
            valid = observed_at + duration > self.clock.monotonic()
            if holder and holder != self.identity and valid:
                return self._set(False, f"held by {holder}")
            ours = holder == self.identity
            body = self._spec(
                acquire=str(spec.get("acquireTime") or "") if ours else micro_time(self.clock.now()),
                transitions=int(spec.get("leaseTransitions") or 0) + (0 if ours else 1),
            )
            rv = str((lease.get("metadata") or {}).get("resourceVersion", ""))
            new = self.api.replace(self.namespace, self.name, rv, body)
            return self._won(new, sent, "renewed" if ours else f"took over from {holder or 'nobody'}")
        except ScaleConflict:
            return self._set(False, "lost a race for the lease (409)")
        except PitbossError as exc:
            return self._failed(exc)

    def peek(self) -> str | None:
        """Read the Lease without writing (a sharded replica deciding whether to ask for it).

        The live holder's identity; "" when the Lease is missing, released or expired on this
        instance's monotonic clock (same observation rule as ``try_acquire_or_renew``); None when it
        could not be read.
        """
        try:
            lease = self.api.get(self.namespace, self.name)
        except PitbossError as exc:
            log.warning("leader election: %s", exc)
            return None
        if lease is None:
            self.holder = ""
            return ""
        with self._lock:
            self._observe(lease)
            observed_at = self._observed_at
        spec = lease.get("spec") or {}
        duration = float(spec.get("leaseDurationSeconds") or 0)
        if self.holder and observed_at + duration > self.clock.monotonic():
            return self.holder
        return ""

    def _failed(self, exc: Exception) -> bool:
        """The Lease could not be read or written: a leader keeps leading until renewDeadline, then gives up."""
        log.warning("leader election: %s", exc)
        if self.is_leader and self.holds_lease():
            return True
        return self._set(False, f"could not renew within {self.renew_deadline.total_seconds():g}s: {exc}"
                         if self.is_leader else str(exc))

    def _set(self, leader: bool, why: str) -> bool:
        if leader != self.is_leader:
            log.info("leader election: %s is %s (%s)", self.identity, "leader" if leader else "follower", why)
        with self._lock:
            self.is_leader = leader
            if not leader:
                self._renewed_at = None
        return leader

    def release(self) -> None:
        """Give the lease up (on shutdown) so a follower takes over without waiting for expiry.

        Leadership ends here first (``holds_lease()`` is False before the Lease is written), so no
        write of ours can follow the release.
        """
        was = self.is_leader
        self._set(False, "released the lease")
        if not was:
            return
        try:
            lease = self.api.get(self.namespace, self.name)
            spec = dict((lease or {}).get("spec") or {})
            if lease and spec.get("holderIdentity") == self.identity:
                stamp = micro_time(self.clock.now())
                spec.update({"holderIdentity": "", "leaseDurationSeconds": 1, "renewTime": stamp,
                             "acquireTime": stamp})
                self.api.replace(self.namespace, self.name, str(lease["metadata"]["resourceVersion"]), spec)
        except PitbossError as exc:
            log.warning("leader election: release failed: %s", exc)
