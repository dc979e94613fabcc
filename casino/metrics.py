"""Prometheus metrics of one casino app, on its own registry (names per the metrics contract).

Created by ``casino.app.create_app``; updated by ``casino.middleware`` (HTTP
and admission), ``casino.api`` (bets, wallet, rate limits), ``casino.replicas``
(read routing) and refreshed at scrape time (sessions, DB pool). The names
are a contract with controller/sources, the Prometheus rules and the
dashboards: do not rename.

Several uvicorn workers (``pitboss casino serve --workers N``) use
prometheus-client's multiprocess mode: ``PROMETHEUS_MULTIPROC_DIR`` is set
(and wiped) by the CLI before the workers start, every worker writes its
values to files there, and /metrics, whichever worker serves it, sums them
(counters and histograms over every worker that ever ran, so they never go
backwards; gauges over the live workers, or their maximum for lag).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    values,
)
from prometheus_client import multiprocess as mp

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# The *_created series double the exposition and nothing here reads them.
disable_created_metrics()

# Label children are looked up once and kept: ``.labels()`` validates and locks on every call.
# The caches are bounded so that label values chosen by clients (HTTP methods) cannot grow them forever.
MAX_CACHED_CHILDREN = 4096
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def multiprocess_dir() -> str | None:
    """The multiprocess directory when this process runs in multiprocess mode.

    prometheus-client picks its mode once, when it is imported: the variable must have been set before
    (as the CLI does for its workers); set later, this process keeps its values in memory.
    """
    path = os.environ.get(MULTIPROC_ENV) or None
    return path if path and values.ValueClass is not values.MutexValue else None


def prepare_multiprocess_dir(path: Path) -> None:
    """Before the workers start: the directory exists, is writable, and holds no values of a previous run."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".pitboss-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"metrics_dir: {path} is not a writable directory ({exc.strerror or exc}); several "
                         "workers need one (an emptyDir on a read-only root filesystem)") from None
    for stale in path.glob("*.db"):
        stale.unlink()


def forget_dead_workers(path: str) -> None:
    """Drop the live gauges of workers that are gone (a crashed worker cannot do it itself)."""
    for file in Path(path).glob("gauge_live*_*.db"):
        pid = file.stem.rsplit("_", 1)[-1]
        if pid.isdigit() and not _alive(int(pid)):
            mp.mark_process_dead(int(pid), path)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CasinoMetrics:
    def __init__(self, max_in_flight: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.multiprocess_dir = multiprocess_dir()
        r = self.registry
        self.requests = Counter("casino_http_requests_total", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("casino_http_request_duration_seconds", "HTTP request latency",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("casino_http_requests_in_flight", "Requests being served now", registry=r,
                               multiprocess_mode="livesum")
        self.rejections = Counter("casino_admission_rejections_total",
                                  "Requests refused with 503 by admission control", ["route"], registry=r)
        self.bets = Counter("casino_bets_total", "Bets placed", ["game"], registry=r)
        self.bet_amount = Counter("casino_bet_amount_minor_total", "Sum of bets in minor units", ["game"], registry=r)
        self.win_amount = Counter("casino_win_amount_minor_total", "Sum of wins in minor units", ["game"], registry=r)
        self.wallet = Counter("casino_wallet_transactions_total", "Wallet movements by type and outcome",
                              ["type", "outcome"], registry=r)
        self.active_sessions = Gauge("casino_active_sessions",
                                     "Distinct session tokens seen on this replica in the last 5 minutes (summed "
                                     "over workers)", registry=r, multiprocess_mode="livesum")
        self.pool_in_use = Gauge("casino_db_pool_in_use", "Database connections checked out", registry=r,
                                 multiprocess_mode="livesum")
        self.pool_size = Gauge("casino_db_pool_size", "Database connection pool size", registry=r,
                               multiprocess_mode="livesum")
        self.capacity = Gauge("casino_admission_capacity",
                              "Cap on in-flight requests of this replica (the sum of its workers' caps)", registry=r,
                              multiprocess_mode="livesum")
        self.capacity.set(max_in_flight)
        # Business metrics for the dashboards (dashboards/grafana/business.py).
        self.wallet_amount = Counter("casino_wallet_amount_minor_total",
                                     "Sum of deposits and withdrawals in minor units (applied, not replayed)",
                                     ["type"], registry=r)
        self.tournament_entries = Counter("casino_tournament_entries_total", "New tournament entries (entrants)",
                                          registry=r)
        self.rtp_theoretical = Gauge("casino_game_rtp_theoretical_ratio",
                                     "Each game's theoretical return to player (its paytable's exact RTP)", ["game"],
                                     registry=r)
        for kind in ("deposit", "withdrawal"):
            self.wallet_amount.labels(kind)
        self.rate_limited = Counter("casino_auth_rate_limited_total",
                                    "Log-in and registration attempts refused with 429", ["route", "scope"],
                                    registry=r)
        self.db_reads = Counter("casino_db_reads_total", "Read-only queries by the server that answered them",
                                ["target"], registry=r)
        self.replica_fallbacks = Counter("casino_db_replica_fallbacks_total",
                                         "Reads meant for a read replica that the primary served, by reason",
                                         ["reason"], registry=r)
        self.replica_lag = Gauge("casino_db_replica_lag_seconds",
                                 "Replication lag of each read replica as last measured by the casino",
                                 ["replica"], registry=r, multiprocess_mode="livemax")
        self.replica_up = Gauge("casino_db_replica_up", "1 when the read replica answered its last check",
                                ["replica"], registry=r, multiprocess_mode="livemin")
        self._reads: dict[str, Any] = {}
        self._http: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        self._bets: dict[str, tuple[Any, Any, Any]] = {}
        self._wallet: dict[tuple[str, str], Any] = {}

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Count one HTTP request and record its latency."""
        key = (route, method, status)
        children = self._http.get(key)
        if children is None:
            children = (self.requests.labels(route, method, str(status)), self.latency.labels(route, method))
            if len(self._http) < MAX_CACHED_CHILDREN:
                self._http[key] = children
        children[0].inc()
        children[1].observe(seconds)

    def record_wallet(self, kind: str, outcome: str) -> None:
        """Count one wallet movement (``casino_wallet_transactions_total``)."""
        key = (kind, outcome)
        child = self._wallet.get(key)
        if child is None:
            child = self._wallet[key] = self.wallet.labels(kind, outcome)
        child.inc()

    def record_money(self, kind: str, amount: int) -> None:
        """Add one applied deposit or withdrawal to ``casino_wallet_amount_minor_total``."""
        self.wallet_amount.labels(kind).inc(amount)

    def record_bet(self, game: str, bet: int, win: int) -> None:
        children = self._bets.get(game)
        if children is None:
            children = self._bets[game] = (self.bets.labels(game), self.bet_amount.labels(game),
                                           self.win_amount.labels(game))
        children[0].inc()
        children[1].inc(bet)
        children[2].inc(win)

    def record_read(self, target: str, fallback: str | None = None) -> None:
        """Count one read on ``target`` (primary or replica) and, for a fallback, why the replica was not used."""
        child = self._reads.get(target)
        if child is None:
            child = self._reads[target] = self.db_reads.labels(target)
        child.inc()
        if fallback is not None:
            self.replica_fallbacks.labels(fallback).inc()

    def observe_replica(self, replica: str, up: bool, lag: float | None) -> None:
        """What the last check of a read replica found (lag NaN when unknown)."""
        self.replica_up.labels(replica).set(1.0 if up else 0.0)
        self.replica_lag.labels(replica).set(float("nan") if lag is None else lag)

    def render(self) -> bytes:
        """This worker's registry, or in multiprocess mode the sum over every worker's files."""
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        mp.MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)

    def close(self) -> None:
        """A worker that stops cleanly takes its live gauges with it (multiprocess mode)."""
        if self.multiprocess_dir is not None:
            with contextlib.suppress(OSError):
                mp.mark_process_dead(os.getpid(), self.multiprocess_dir)
