"""The operator's main loop: leader election, level-triggered cycles, watch wake-ups, fenced stop.

Every ``sync_period`` the leader reconciles every policy (level-triggered: a
missed event is repaired by the next cycle). Watches on ScalingPolicy and
TrafficEvent wake the loop at once when something changes (edge-triggered
latency on top of level-triggered correctness). In ``run()`` the Lease is
renewed on its own thread every ``retry_period`` (client-go's cadence), so a
cycle longer than the lease cannot lose it; followers try as often (with
client-go's jitter). Every write of a cycle passes the write fence
(``controller.operator.fence``) and a cycle stops between policies as soon
as the fence closes: when the lease cannot be proven (no renewal within
renewDeadline) or on ``stop()``.

``stop()`` (wired to SIGTERM by the CLI) closes the fence *first*, so no
/scale, /status or Event write leaves this process after it, whatever the
cycle was doing; the cycle then ends at the next policy, the renewer stops,
and only then is the Lease released. Each time this instance becomes leader
a new term begins: the incident reporter forgets what earlier terms left
undelivered (``IncidentReporter.begin_term``) before the first cycle and
before delivery resumes. With ``--shards`` the elector is a
``ShardedElector`` and each cycle works on the shards held when it starts
(``controller.operator.shards``); after each cycle the loop lets it release
what it holds above its quota for a replica that joined (``rebalance``). ``step()`` runs one iteration on the caller's
thread and is what tests drive with a fake clock. Called by ``pitboss
operator run``.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from datetime import timedelta
from typing import Any

from controller.operator.fence import Fence
from controller.operator.leader import LeaderElector
from controller.operator.reconcile import CycleReport, Reconciler
from controller.operator.shards import ShardedElector

log = logging.getLogger(__name__)


class OperatorLoop:
    """Runs the Reconciler when (and only when) this instance leads."""

    def __init__(
        self,
        reconciler: Reconciler,
        *,
        elector: LeaderElector | ShardedElector | None = None,
        fence: Fence | None = None,
        sync_period: timedelta = timedelta(seconds=15),
        identity: str | None = None,
    ) -> None:
        if sync_period <= timedelta(0):
            raise ValueError("syncPeriod: must be positive")
        self.reconciler = reconciler
        self.elector = elector
        self.fence = fence or Fence(elector)
        self.sync_period = sync_period
        # Identity and cadence come from the elector's Election (leader.Election) when there is one.
        self.retry_period = elector.retry_period if elector else timedelta(seconds=2)
        self.identity = identity or (elector.identity if elector else "pitboss-operator")
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._leading = threading.Event()
        self._watchers: list[threading.Thread] = []
        self.cycles = 0
        self.terms = 0
        self.last_report: CycleReport | None = None

    def _elect(self) -> bool:
        """One election round; begins a term on becoming leader (before ``leading`` turns true)."""
        leading = True if self.elector is None else self.elector.try_acquire_or_renew()
        leading = leading and self.fence.permit()
        self.reconciler.metrics.leader.labels(self.identity).set(1 if leading else 0)
        if not leading:
            self._leading.clear()
            self.reconciler.metrics.heartbeat = time.monotonic()
            return False
        if not self._leading.is_set():
            self._begin_term()
            self._leading.set()
            return True
        return True

    def _begin_term(self) -> None:
        self.terms += 1
        incidents = self.reconciler.incidents
        if incidents is not None:
            try:
                incidents.begin_term(self.reconciler.clock.now())
            except Exception:  # incidents never take the loop down
                log.exception("incidents: begin_term failed")

    def step(self) -> CycleReport | None:
        """One iteration: (re)elect, then reconcile every policy if leading. None when following."""
        if not self._elect():
            return None
        return self._cycle()

    def wake(self) -> None:
        """Run the next iteration now (called by the watches)."""
        self._wake.set()

    def stop(self) -> None:
        """Fence every write at once, then let the loop end its cycle, release the lease and return."""
        self.fence.close("shutting down")
        self._stop.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def leading(self) -> bool:
        """True while this instance leads and may write (always, without leader election, until stopped)."""
        return self._leading.is_set() and self.fence.permit()

    def _renew_forever(self) -> None:
        """The lease lives on its own thread: a cycle longer than the lease must not lose it."""
        assert self.elector is not None
        rng = random.Random()
        while not self._stop.is_set():
            was = self._leading.is_set()
            leading = self._elect()
            if leading and not was:
                self._wake.set()  # just became leader: reconcile at once
            pause = self.retry_period.total_seconds()
            if not leading:
                pause *= rng.uniform(1.0, 1.2)  # client-go's JitterFactor for candidates
            self._stop.wait(pause)

    def run(self) -> None:
        """Loop until ``stop()``: reconcile every sync period (or when woken) while leading; release at the end."""
        renewer: threading.Thread | None = None
        if self.elector is None:
            self._elect()
        else:
            renewer = threading.Thread(target=self._renew_forever, name="lease-renewer", daemon=True)
            renewer.start()
        next_due = 0.0
        try:
            while not self._stop.is_set():
                woken = self._wake.is_set()
                self._wake.clear()
                if self.leading and (woken or time.monotonic() >= next_due):
                    self._cycle()
                    next_due = time.monotonic() + self.sync_period.total_seconds()
                wait = max(0.05, next_due - time.monotonic()) if self.leading else 0.5
                self._wake.wait(wait)
        finally:
            self.fence.close("shutting down")  # also when run() ends on an exception
            self._stop.set()
            if renewer is not None:
                renewer.join(30)
            self._leading.clear()
            if self.elector is not None:
                self.elector.release()
                self.reconciler.metrics.leader.labels(self.identity).set(0)
            log.info("operator loop stopped (%d write(s) refused by the fence)", self.fence.refused)

    def _shard_cycle(self) -> AbstractContextManager[object]:
        """Sharded: fix the cycle's shards; the fence and the policy list follow them (operator.shards)."""
        return self.elector.cycle() if isinstance(self.elector, ShardedElector) else nullcontext()

    def _cycle(self) -> CycleReport:
        with self._shard_cycle():
            report = self.reconciler.reconcile_all(should_continue=self.fence.permit)
        if isinstance(self.elector, ShardedElector):
            self.elector.rebalance()  # between cycles: hand a joining replica its share (operator.shards)
        self.cycles += 1
        self.last_report = report
        scaled = sum(1 for o in report.outcomes if o.scaled)
        errors = sum(1 for o in report.outcomes if o.error)
        log.info("cycle %d: %d policies, %d scaled, %d with errors, %d fits (%d deferred), %.3fs", self.cycles,
                 len(report.outcomes), scaled, errors, report.fits, report.deferred_fits, report.seconds)
        return report

    def start_watch(self, name: str, stream: Callable[[threading.Event], Any]) -> None:
        """Run ``stream(stop_event)`` in a daemon thread; it calls ``wake()`` on every change."""

        def target() -> None:
            while not self._stop.is_set():
                try:
                    stream(self._stop)
                except Exception as exc:  # a broken watch only costs latency: the sync period still runs
                    log.warning("watch %s: %s; retrying", name, exc)
                    self._stop.wait(1.0)

        thread = threading.Thread(target=target, name=f"watch-{name}", daemon=True)
        thread.start()
        self._watchers.append(thread)
