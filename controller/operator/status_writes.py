"""Write a policy's /status: at once when it changed materially, volatile-only changes at most every max age.

Every cycle rebuilds each policy's status, and most of what moves from one
cycle to the next is volatile: the observed demand in the conditions' and
the decision's messages, the next peak's time and demand, the times that
move with them. Patching 1,000 statuses for that every cycle costs the API
(and the cycle: ~5 ms a PATCH through the emulator) while telling nobody
anything new. ``StatusWriter.write`` therefore:

* sends nothing when the status equals the one the policy has;
* sends at once when ``status.material`` (replicas, conditions' status and
  reason, mode, observedGeneration, open incidents, decisions, the memory's
  fields...) differs from the current status's projection;
* holds back a volatile-only change until the policy's turn: each policy has
  a phase in the ``max_age`` window (from a hash of its uid) and writes its
  volatile changes when a window boundary at its phase passed since its last
  write, so the status it shows is at most ``max_age`` behind and the
  refreshes of 1,000 policies spread evenly over the window's cycles instead
  of landing together. A policy first seen counts as written then (the status
  read is what the cluster shows: its age is unknown, so it waits at most
  ``max_age`` too, and a restarted operator does not rewrite every status in
  its first cycle). ``max_age`` None or 0: every change is written at once.

A new policy's first status (it has none) is the one material write that
waits, and only when the cycle is late: past its deadline less the time the
write pool needs to drain (``DRAIN_ROUNDS`` write latencies, an EWMA of the
PATCHes' seconds), the next cycle writes it. 1,000 policies created at once
then get their first statuses over two cycles instead of one cycle over its
deadline; their /scale writes, Events and incidents are not held.

A held-back status keeps what the policy's memory needs: the reconcile
treats it like a failed write (its ``_memory`` keeps the latest dump), and
the memory's fields are material anyway. Called by
``controller.operator.reconcile.Reconciler._apply`` on the write pool's
threads (one policy's writes on one thread at a time); the counts go to the
cycle report (``status_writes``, ``status_skipped``) and to
``pitboss_operator_status_writes_total{result}``.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from controller.cycle.deadline import Ewma
from controller.errors import PermanentError, RetryableError
from controller.operator import status as st
from controller.operator.kube import PolicyObject, PolicyStore
from controller.operator.report import Timings
from controller.telemetry.metrics import OperatorMetrics

log = logging.getLogger(__name__)

Written = Literal["same", "written", "skipped", "failed"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The write pool holds at most 2 x concurrency policies' writes (writes.py): draining it takes about two
# rounds of writes, and the one being decided a third.
DRAIN_ROUNDS = 3


def phase(uid: str, max_age: timedelta) -> timedelta:
    """The policy's offset in the ``max_age`` window: stable across restarts and replicas (a hash of the uid;
    blake2b, not crc32, whose linearity bunches uids that differ in a counter)."""
    digest = hashlib.blake2b(uid.encode(), digest_size=8).digest()
    return max_age * (int.from_bytes(digest, "big") / 2**64)


def turn_passed(last: datetime, now: datetime, max_age: timedelta, offset: timedelta) -> bool:
    """Whether a window boundary at ``offset`` (mod ``max_age``, since the epoch) lies in (last, now]."""
    def window(at: datetime) -> int:
        at = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
        return (at - _EPOCH - offset) // max_age

    return window(now) > window(last)


class StatusWriter:
    """Writes statuses through ``store`` (inside ``timed``), holding back volatile-only changes (module docstring)."""

    def __init__(self, store: PolicyStore, timings: Timings, metrics: OperatorMetrics,
                 max_age: timedelta | None = None) -> None:
        self.store = store
        self.timings = timings
        self.metrics = metrics
        self.max_age = max_age if max_age is not None and max_age > timedelta(0) else None
        self._written: dict[str, datetime] = {}  # uid -> when its status was last written (or first seen)
        self._timed: Callable[[], AbstractContextManager[None]] = timings.api
        self.latency = Ewma()  # seconds per /status PATCH
        self._began: float | None = None  # the cycle's start (perf_counter), while one runs
        self._limit: float | None = None  # seconds the cycle should stay within (None: no limit)
        self._timer = time.perf_counter

    def start_cycle(self, began: float | None, limit: float | None) -> None:
        """A cycle began at ``began`` (``time.perf_counter``) and should end within ``limit`` seconds."""
        self._began, self._limit = began, limit

    def late(self) -> bool:
        """Whether the cycle is past its limit less the pool's drain time: new policies' first statuses wait."""
        if self._began is None or self._limit is None:
            return False
        drain = DRAIN_ROUNDS * (self.latency.value or 0.0)
        return self._timer() - self._began + drain >= self._limit

    def write(self, policy: PolicyObject, status: dict[str, Any], now: datetime, *, quiet: bool = False) -> Written:
        """Send ``status`` when it is due; what happened ("failed": the write failed, logged unless ``quiet``)."""
        if status == policy.status:
            self._seen(policy, now)
            return "same"
        if not self._due(policy, status, now) or (not policy.status and self.late()):
            self.timings.add(status_skipped=1)
            self.metrics.status_writes.labels("skipped").inc()
            return "skipped"
        began = self._timer()
        try:
            with self._timed():
                self.store.write_status(policy, status)
        except (PermanentError, RetryableError) as exc:
            if not quiet:
                log.warning("%s/%s: status write failed: %s", policy.namespace, policy.name, exc)
            return "failed"
        self.latency.add(self._timer() - began)
        if policy.uid:
            self._written[policy.uid] = now
        self.timings.add(status_writes=1)
        self.metrics.status_writes.labels("written").inc()
        return "written"

    def forget_except(self, uids: set[str]) -> None:
        """Drop what is kept for policies that are gone."""
        for uid in set(self._written) - uids:
            del self._written[uid]

    def _seen(self, policy: PolicyObject, now: datetime) -> datetime:
        if not policy.uid:
            return now
        return self._written.setdefault(policy.uid, now)

    def _due(self, policy: PolicyObject, status: dict[str, Any], now: datetime) -> bool:
        if self.max_age is None or not policy.uid or st.material(status) != st.material(policy.status):
            return True
        last = self._seen(policy, now)
        return turn_passed(last, now, self.max_age, phase(policy.uid, self.max_age))


__all__ = ["DRAIN_ROUNDS", "StatusWriter", "Written", "phase", "turn_passed"]
