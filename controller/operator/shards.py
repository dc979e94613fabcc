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
* hold one *membership* Lease, ``<name>-member-<j>`` (the first free slot of
  N in an order of its own), and read the other slots: a replica that holds
  no shard yet is seen by the others through its slot;
* the live replicas are the holders of unexpired shard and membership Leases,
  plus itself. Their quotas split N as evenly as it goes (N // live each, one
  more for the first N % live ranked by shards held now, then identity, so a
  balanced assignment is stable and every replica computes the same quotas);
* below its quota it asks for free shards (never created, released, or
  expired: an orphan of a replica that died), in an order of its own (seeded
  by its identity) so that replicas starting together ask for different ones.
  During its first lease duration it takes at most one: by then it has seen
  the others' claims, so replicas started together end with one share each;
* above its quota (a replica joined) it releases the surplus at a safe point
  between cycles (``rebalance``: never while a cycle is in progress, under the
  lock a cycle takes to start), so the joiner takes them in its next round.
  ``LeaderElector.release`` ends leadership before it writes the Lease, so the
  fence is closed for the released shard before anyone else can win it.

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
import random
import threading
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

from controller.operator.clock import Clock
from controller.operator.kube import LeaseApi, PolicyObject
from controller.operator.leader import Election, LeaderElector

log = logging.getLogger(__name__)

MAX_SHARDS = 16  # manifests/base/rbac.yaml grants the Leases of shards 0..15 by name


def shard_of(uid: str, shards: int) -> int:
    """The shard of the policy with this uid: BLAKE2b(uid) mod ``shards`` (stable across processes)."""
    digest = hashlib.blake2b(uid.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def shard_lease_name(base: str, shard: int, shards: int) -> str:
    """The Lease of ``shard``: ``base`` itself when there is one shard, else ``<base>-shard-<i>``."""
    return base if shards == 1 else f"{base}-shard-{shard}"


def member_lease_name(base: str, slot: int) -> str:
    """The membership Lease of ``slot``: ``<base>-member-<j>`` (one per replica, N slots)."""
    return f"{base}-member-{slot}"


def quotas(shards: int, held: Counter[str], live: Iterable[str]) -> dict[str, int]:
    """How many shards each live replica should hold: N // live, one more for the first N % live.

    Ranked by shards held now (most first), then identity: an assignment that is already as even
    as it goes keeps its quotas, so only the surplus of a replica above its quota moves.
    """
    ranked = sorted(set(live), key=lambda r: (-held[r], r))
    base, extra = divmod(shards, max(1, len(ranked)))
    return {r: base + (1 if rank < extra else 0) for rank, r in enumerate(ranked)}


def check_shards(shards: int) -> int:
    """``shards`` if it is 1..MAX_SHARDS; ValueError naming the field otherwise."""
    if not 1 <= shards <= MAX_SHARDS:
        raise ValueError(f"shards: expected 1..{MAX_SHARDS}, got {shards}")
    return shards


class ShardedElector:
    """Holds this replica's quota of N shard Leases; the write fence's proof for the current cycle."""

    def __init__(
        self,
        api: LeaseApi,
        clock: Clock,
        election: Election,
        *,
        namespace: str,
        name: str = "pitboss-operator",
        shards: int,
    ) -> None:
        self.shards = check_shards(shards)
        self.election = election
        self.identity = election.identity
        self.lease_duration, self.renew_deadline, self.retry_period = (
            election.lease_duration, election.renew_deadline, election.retry_period)
        self.electors = [LeaderElector(api, clock, election, namespace=namespace,
                                       name=shard_lease_name(name, i, shards)) for i in range(shards)]
        self.members = [LeaderElector(api, clock, election, namespace=namespace, name=member_lease_name(name, j))
                        for j in range(shards)]
        self.clock = clock
        self.on_gain: Callable[[], None] | None = None  # the loop's wake(): reconcile a new shard at once
        self.live: frozenset[str] = frozenset({self.identity})  # replicas seen holding a live Lease (and itself)
        self.quota = 0  # this replica's share as of the last round
        self.released = 0  # shards given up to a joining replica so far (tests, logs)
        self._order = list(range(shards))
        random.Random(self.identity).shuffle(self._order)
        self._started: float | None = None
        self._writing: frozenset[int] | None = None  # the shards of the cycle in progress
        self._lock = threading.Lock()  # one round at a time
        self._cycle_lock = threading.Lock()  # a cycle starts, or surplus shards are released: never both

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
        with self._cycle_lock:  # not while rebalance() is releasing
            writing = self.held()
            self._writing = writing
        try:
            yield writing
        finally:
            self._writing = None

    # ---- one round -----------------------------------------------------------
    def _membership(self) -> set[str]:
        """Renew (or claim) this replica's membership slot; the holders of the others."""
        seen: set[str] = set()
        mine = next((m for m in self.members if m.is_leader), None)
        if mine is not None and not mine.try_acquire_or_renew():
            mine = None
        for j in self._order:
            m = self.members[j]
            if m is mine:
                continue
            holder = m.peek()
            if holder in ("", self.identity) and mine is None and m.try_acquire_or_renew():
                mine = m  # a free slot (or ours from before a restart)
            elif holder:
                seen.add(holder)
        return seen

    def try_acquire_or_renew(self) -> bool:
        """Renew held shards, read the others, take free ones up to the quota, release surplus between cycles.

        True if any shard is held.
        """
        with self._lock:
            now = self.clock.monotonic()
            if self._started is None:
                self._started = now
            holders: dict[int, str | None] = {}
            for i, e in enumerate(self.electors):
                if e.is_leader:
                    e.try_acquire_or_renew()
                holders[i] = self.identity if e.is_leader else e.peek()
            members = self._membership()
            live = frozenset(h for h in holders.values() if h) | members | {self.identity}
            counts = Counter(h for h in holders.values() if h)
            quota = quotas(self.shards, counts, live)[self.identity]
            target = quota
            if now - self._started < self.lease_duration.total_seconds():
                target = min(target, 1)  # first lease duration: one shard, until the others' claims are seen
            held = counts[self.identity]
            gained: list[int] = []
            for i in self._order:
                if held >= target:
                    break
                if self.electors[i].is_leader or holders[i] not in ("", self.identity):
                    continue
                if self.electors[i].try_acquire_or_renew():
                    held += 1
                    gained.append(i)
            if gained or live != self.live or quota != self.quota:
                log.info("shards: %s holds %s of %d (live replicas: %d, quota %d)", self.identity,
                         sorted(i for i, e in enumerate(self.electors) if e.is_leader), self.shards, len(live),
                         quota)
            self.live, self.quota = live, quota
        if gained and self.on_gain is not None:
            self.on_gain()
        self.rebalance()
        return any(e.is_leader for e in self.electors)

    def rebalance(self) -> list[int]:
        """Between cycles: release the shards held above the quota (a replica joined); returns them.

        Called after each round and by the loop after each cycle; does nothing while a cycle is in
        progress. Each released shard's leadership ends before its Lease is written (the fence is
        closed for it), and no cycle can start meanwhile, so its policies are never written by this
        replica again before the joiner takes the Lease.
        """
        if not self._cycle_lock.acquire(blocking=False):
            return []  # a cycle is starting: the next round or the end of that cycle releases
        try:
            if self._writing is not None:
                return []
            held = [i for i in reversed(self._order) if self.electors[i].is_leader]
            surplus = held[:max(0, len(held) - self.quota)] if self._started is not None else []
            for i in surplus:
                self.electors[i].release()
                self.released += 1
            if surplus:
                log.info("shards: %s released %s for a joining replica (quota %d of %d, live replicas: %d)",
                         self.identity, sorted(surplus), self.quota, self.shards, len(self.live))
            return surplus
        finally:
            self._cycle_lock.release()

    def release(self) -> None:
        """Give every held shard and the membership slot up (on shutdown), so the others take them at once."""
        for e in self.electors + self.members:
            e.release()
