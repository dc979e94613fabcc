"""Sharding: N Leases, each ScalingPolicy owned by the shard its uid hashes to.

With ``--shards N`` (N > 1) the operator's replicas share the policies instead
of one leader doing them all. Shard ``i`` is the Lease ``<name>-shard-<i>``
(``shard_lease_name``; with one shard the Lease keeps today's name and
``build_operator`` uses the plain ``LeaderElector``, so N = 1 behaves exactly
as before). A policy belongs to shard ``shard_of(uid, N)``: BLAKE2b of the
uid modulo N, the same in every process and Python version (``hash()`` is
salted per process and would not be).

``ShardedElector`` runs one ``LeaderElector`` per shard, with its client-go
semantics unchanged (expiry judged on the follower's monotonic clock, 409 on
a race), in one round per ``retry_period``:

* renew every shard it holds; read (``LeaderElector.peek``) the others;
* the live replicas are the holders of unexpired shard Leases, plus itself;
  its fair share is ceil(N / live);
* below its fair share it asks for free shards (never created, released, or
  expired: an orphan of a replica that died), in an order of its own (seeded
  by its identity) so that replicas starting together ask for different ones.
  During its first lease duration it takes at most one: by then it has seen
  the others' claims, so replicas started together end with one share each.

A replica does not give up shards it holds to one that joins later (it cannot
see a replica holding nothing): rebalancing happens as replicas stop (SIGTERM
releases every shard) or die (their shards expire and the survivors' fair
share grows).

Writes are fenced per shard: ``cycle()`` fixes the shards a cycle works on
(the ones provably held when it starts), the Reconciler works only on their
policies (``owns``, its filter over the full list: a policy of another shard
still exists, so a shard that moves hands its incidents off instead of
resolving them), and ``holds_lease()``, which the write
fence asks before every write, is true only while *every* one of those shards
is still provably held. A replica that loses one shard's Lease therefore writes
nothing more in that cycle (for that shard's policies or any other); the next
cycle works on the shards it still holds. Built by
``controller.operator.app.build_operator``; driven by ``OperatorLoop``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

from controller.operator.clock import Clock
from controller.operator.kube import LeaseApi, PolicyObject
from controller.operator.leader import LeaderElector

log = logging.getLogger(__name__)

MAX_SHARDS = 16  # manifests/base/rbac.yaml grants the Leases of shards 0..15 by name


def shard_of(uid: str, shards: int) -> int:
    """The shard of the policy with this uid: BLAKE2b(uid) mod ``shards`` (stable across processes)."""
    digest = hashlib.blake2b(uid.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_lease_name(base: str, shard: int, shards: int) -> str:
    """The Lease of ``shard``: ``base`` itself when there is one shard, else ``<base>-shard-<i>``."""
    return base if shards == 1 else f"{base}-shard-{shard}"


def check_shards(shards: int) -> int:
    """``shards`` if it is 1..MAX_SHARDS; ValueError naming the field otherwise."""
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards: expected 1..{MAX_SHARDS}, got {shards}")
    return shards


class ShardedElector:
    """Holds this replica's fair share of N shard Leases; the write fence's proof for the current cycle."""

    def __init__(
        self,
        api: LeaseApi,
        clock: Clock,
        *,
        namespace: str,
        name: str = "pitboss-operator",
        identity: str,
        shards: int,
        lease_duration: timedelta = timedelta(seconds=15),
        renew_deadline: timedelta | None = None,
        retry_period: timedelta | None = None,
    ) -> None:
        self.shards = check_shards(shards)
        self.electors = [
            LeaderElector(api, clock, namespace=namespace, name=shard_lease_name(name, i, shards), identity=identity,
                          lease_duration=lease_duration, renew_deadline=renew_deadline, retry_period=retry_period)
            for i in range(shards)
        ]
        first = self.electors[0]
        self.lease_duration, self.renew_deadline, self.retry_period = (
            first.lease_duration, first.renew_deadline, first.retry_period)
        self.clock = clock
        self.identity = identity
        self.on_gain: Callable[[], None] | None = None  # the loop's wake(): reconcile a new shard at once
        self.live: frozenset[str] = frozenset({identity})  # replicas seen holding a live shard (and itself)
        self._order = list(range(shards))
        random.Random(identity).shuffle(self._order)
        self._started: float | None = None
        self._writing: frozenset[int] | None = None  # the shards of the cycle in progress
        self._lock = threading.Lock()

    # ---- what the loop and the fence ask -------------------------------------
    @property
    def is_leader(self) -> bool:
        """Holds at least one shard."""
        return any(e.is_leader for e in self.electors)

    def held(self) -> frozenset[int]:
        """The shards whose Lease is provably held right now (``LeaderElector.holds_lease``)."""
        return frozenset(i for i, e in enumerate(self.electors) if e.holds_lease())

    def holds_lease(self) -> bool:
        """In a cycle: every shard of the cycle still provably held. Between cycles: any shard held."""
        writing = self._writing
        if writing is None:
            return any(e.holds_lease() for e in self.electors)
        return bool(writing) and all(self.electors[i].holds_lease() for i in writing)

    def owns(self, policy: PolicyObject) -> bool:
        """Is ``policy`` in a shard of the current cycle (or, between cycles, a shard held now)?"""
        writing = self._writing if self._writing is not None else self.held()
        return shard_of(policy.uid, self.shards) in writing

    @contextmanager
    def cycle(self) -> Iterator[frozenset[int]]:
        """Fix the cycle's shards (those held now) until it ends; yields them."""
        writing = self.held()
        self._writing = writing
        try:
            yield writing
        finally:
            self._writing = None

    def fair_share(self, live: int) -> int:
        """ceil(shards / live replicas)."""
        return math.ceil(self.shards / max(1, live))

    # ---- one round -----------------------------------------------------------
    def try_acquire_or_renew(self) -> bool:
        """Renew held shards, read the others, take free ones up to the fair share; True if any is held."""
        with self._lock:
            now = self.clock.monotonic()
            if self._started is None:
                self._started = now
            holders: dict[int, str | None] = {}
            for i, e in enumerate(self.electors):
                if e.is_leader:
                    e.try_acquire_or_renew()
                holders[i] = self.identity if e.is_leader else e.peek()
            live = frozenset(h for h in holders.values() if h) | {self.identity}
            held = sum(1 for e in self.electors if e.is_leader)
            target = self.fair_share(len(live))
            if now - self._started < self.lease_duration.total_seconds():
                target = min(target, 1)  # first lease duration: one shard, until the others' claims are seen
            gained: list[int] = []
            for i in self._order:
                if held >= target:
                    break
                if self.electors[i].is_leader or holders[i] not in ("", self.identity):
                    continue
                if self.electors[i].try_acquire_or_renew():
                    held += 1
                    gained.append(i)
            if gained or live != self.live:
                log.info("shards: %s holds %s of %d (live replicas: %d, fair share %d)", self.identity,
                         sorted(i for i, e in enumerate(self.electors) if e.is_leader), self.shards, len(live),
                         self.fair_share(len(live)))
            self.live = live
        if gained and self.on_gain is not None:
            self.on_gain()
        return held > 0

    def release(self) -> None:
        """Give every held shard up (on shutdown) so the others take them without waiting for expiry."""
        for e in self.electors:
            e.release()
