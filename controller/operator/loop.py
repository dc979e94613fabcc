"""The operator's main loop: leader election, level-triggered cycles, watch wake-ups, clean stop.

Every ``sync_period`` the leader reconciles every policy (level-triggered: a
missed event is repaired by the next cycle). Watches on ScalingPolicy and
TrafficEvent wake the loop at once when something changes (edge-triggered
latency on top of level-triggered correctness). In ``run()`` the Lease is
renewed on its own thread (every third of its duration), so a cycle longer
than the lease cannot lose it; a cycle stops between policies the moment
leadership is lost. Followers retry every ``retry_period``. ``stop()`` (wired to SIGTERM by the CLI)
ends the loop and releases the Lease. ``step()`` runs one iteration and is
what tests drive with a fake clock. Called by ``pitboss operator run``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from controller.operator.leader import LeaderElector
from controller.operator.reconcile import CycleReport, Reconciler

log = logging.getLogger(__name__)


class OperatorLoop:
    """Runs the Reconciler when (and only when) this instance leads."""

    def __init__(
        self,
        reconciler: Reconciler,
        *,
        elector: LeaderElector | None = None,
        sync_period: timedelta = timedelta(seconds=15),
        retry_period: timedelta = timedelta(seconds=2),
        identity: str = "pitboss-operator",
    ) -> None:
        if sync_period <= timedelta(0):
            raise ValueError("syncPeriod: must be positive")
        self.reconciler = reconciler
        self.elector = elector
        self.sync_period = sync_period
        self.retry_period = retry_period
        self.identity = identity
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._leading = threading.Event()
        self._watchers: list[threading.Thread] = []
        self.cycles = 0
        self.last_report: CycleReport | None = None

    def step(self) -> CycleReport | None:
        """One iteration: (re)elect, then reconcile every policy if leading. None when following."""
        leading = True if self.elector is None else self.elector.try_acquire_or_renew()
        self.reconciler.metrics.leader.labels(self.identity).set(1 if leading else 0)
        if not leading:
            self._leading.clear()
            self.reconciler.metrics.heartbeat = time.monotonic()
            return None
        self._leading.set()
        return self._cycle()

    def wake(self) -> None:
        """Run the next iteration now (called by the watches)."""
        self._wake.set()

    def stop(self) -> None:
        """Ask the loop to finish its iteration, release the lease and return."""
        self._stop.set()
        self._wake.set()

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def leading(self) -> bool:
        """True while this instance holds the lease (always, without leader election)."""
        return self._leading.is_set()

    def _renew_forever(self) -> None:
        """The lease lives on its own thread: a cycle longer than the lease must not lose it."""
        assert self.elector is not None
        while not self._stop.is_set():
            was = self._leading.is_set()
            leading = self.elector.try_acquire_or_renew()
            self.reconciler.metrics.leader.labels(self.identity).set(1 if leading else 0)
            if leading:
                self._leading.set()
                if not was:
                    self._wake.set()  # just became leader: reconcile at once
            else:
                self._leading.clear()
                self.reconciler.metrics.heartbeat = time.monotonic()
            pause = self.elector.lease_duration / 3 if leading else self.retry_period
            self._stop.wait(pause.total_seconds())

    def run(self) -> None:
        """Loop until ``stop()``: reconcile every sync period (or when woken) while leading; release at the end."""
        renewer: threading.Thread | None = None
        if self.elector is None:
            self._leading.set()
        else:
            renewer = threading.Thread(target=self._renew_forever, name="lease-renewer", daemon=True)
            renewer.start()
        next_due = 0.0
        try:
            while not self._stop.is_set():
                woken = self._wake.is_set()
                self._wake.clear()
                if self._leading.is_set() and (woken or time.monotonic() >= next_due):
                    self._cycle()
                    next_due = time.monotonic() + self.sync_period.total_seconds()
                wait = max(0.05, next_due - time.monotonic()) if self._leading.is_set() else 0.5
                self._wake.wait(wait)
        finally:
            self._stop.set()
            if renewer is not None:
                renewer.join(30)
            if self.elector is not None:
                self.elector.release()
                self.reconciler.metrics.leader.labels(self.identity).set(0)
            log.info("operator loop stopped")

    def _cycle(self) -> CycleReport:
        report = self.reconciler.reconcile_all(should_continue=lambda: self._leading.is_set())
        self.cycles += 1
        self.last_report = report
        scaled = sum(1 for o in report.outcomes if o.scaled)
        errors = sum(1 for o in report.outcomes if o.error)
        log.info("cycle %d: %d policies, %d scaled, %d with errors, %.3fs", self.cycles, len(report.outcomes),
                 scaled, errors, report.seconds)
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
