"""Prometheus metrics of one casino app, on its own registry (names per the metrics contract).

Created by ``casino.app.create_app``; updated by ``casino.middleware`` (HTTP
and admission), ``casino.api`` (bets, wallet) and refreshed at scrape time
(sessions, DB pool). The names are a contract with controller/sources,
the Prometheus rules and the dashboards: do not rename.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

# The *_created series double the exposition and nothing here reads them.
disable_created_metrics()

# Label children are looked up once and kept: ``.labels()`` validates and locks on every call.
# The caches are bounded so that label values chosen by clients (HTTP methods) cannot grow them forever.
MAX_CACHED_CHILDREN = 4096
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class CasinoMetrics:
    def __init__(self, max_in_flight: int) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("casino_http_requests_total", "HTTP requests by route template, method and status",
                                ["route", "method", "status"], registry=r)
        self.latency = Histogram("casino_http_request_duration_seconds", "HTTP request latency",
                                 ["route", "method"], buckets=LATENCY_BUCKETS, registry=r)
        self.in_flight = Gauge("casino_http_requests_in_flight", "Requests being served now", registry=r)
        self.rejections = Counter("casino_admission_rejections_total",
                                  "Requests refused with 503 by admission control", ["route"], registry=r)
        self.bets = Counter("casino_bets_total", "Bets placed", ["game"], registry=r)
        self.bet_amount = Counter("casino_bet_amount_minor_total", "Sum of bets in minor units", ["game"], registry=r)
        self.win_amount = Counter("casino_win_amount_minor_total", "Sum of wins in minor units", ["game"], registry=r)
        self.wallet = Counter("casino_wallet_transactions_total", "Wallet movements by type and outcome",
                              ["type", "outcome"], registry=r)
        self.active_sessions = Gauge("casino_active_sessions",
                                     "Distinct session tokens seen on this replica in the last 5 minutes", registry=r)
        self.pool_in_use = Gauge("casino_db_pool_in_use", "Database connections checked out", registry=r)
        self.pool_size = Gauge("casino_db_pool_size", "Database connection pool size", registry=r)
        self.capacity = Gauge("casino_admission_capacity", "Per-replica cap on in-flight requests", registry=r)
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
