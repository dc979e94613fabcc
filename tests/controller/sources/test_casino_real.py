"""Metrics of the real casino API (`pitboss casino serve`, SQLite) read by Prometheus and by the scrape source.

Two casino processes serve a known number of requests; a real Prometheus
scrapes them and range queries read back exactly what was served; the scrape
source sums their rates, and a killed casino is stale, never zero demand.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from controller.sources.exposition import parse
from controller.sources.observe import read_current
from controller.sources.prometheus import PrometheusClient, PrometheusConfig, PrometheusSource
from controller.sources.scrape import ScrapeSource
from tests.harness import CasinoProcess, PrometheusServer, wait_until

pytestmark = pytest.mark.prometheus
ROUTE = "/v1/events"


def serve(casino: CasinoProcess, n: int) -> None:
    with httpx.Client(base_url=casino.base_url, timeout=5) as http:
        for _ in range(n):
            assert http.get(ROUTE).status_code == 200


def test_prometheus_and_scrape_read_the_real_casino(
    casino_factory: Callable[[int], list[CasinoProcess]], prometheus_factory: Callable[..., PrometheusServer]
) -> None:
    a, b = casino_factory(2)
    prom = prometheus_factory(targets=[a.target, b.target], scrape_interval="1s")
    scrape = ScrapeSource([a.url, b.url], timeout=timedelta(seconds=2), rate_window=timedelta(seconds=30))
    try:
        assert scrape.current(datetime.now(UTC)) is None  # first round: counters, no rate yet
        t0 = time.monotonic()
        serve(a, 60)
        serve(b, 30)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - t0)))
        demand = scrape.current(datetime.now(UTC))
        assert demand is not None and demand > 0
        # the increase per replica over the window is what was served (plus Prometheus' own
        # scrapes of /metrics, which the casino counts too: a few per second)
        increases = {url: rep.total.requests for url, rep in scrape.replicas.items()}  # since the first round
        assert 60 <= increases[a.url] <= 60 + 10 and 30 <= increases[b.url] <= 30 + 10
        served = {c.url: sum(s.value for s in parse(httpx.get(c.url).text, ["casino_http_requests_total"])
                             if ("route", ROUTE) in s.labels) for c in (a, b)}
        assert served == {a.url: 60, b.url: 30}

        client = PrometheusClient(PrometheusConfig(url=prom.url, timeout="3s"))
        total = f'sum(casino_http_requests_total{{route="{ROUTE}",status="200"}})'

        def scraped_all() -> bool:
            rows = client.query(total, datetime.now(UTC))
            return bool(rows) and rows[0][1] == 90

        wait_until(scraped_all, timeout=30, interval=0.5, what="Prometheus to scrape all 90 requests")
        # a grid that ends after the query above, so its last point sees the same samples
        now = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        hist = PrometheusSource(client, total).history(now - timedelta(seconds=60), now, timedelta(seconds=1))
        known = hist.dropna()
        assert known.iloc[-1] == 90  # read back exactly what was served
        assert known.is_monotonic_increasing and known.min() >= 0

        b.kill()
        demand_after = scrape.current(datetime.now(UTC))
        assert scrape.stale_replicas() == [b.url]
        assert demand_after is None  # b cannot be read: unknown, never a's share alone
        a.kill()
        reading = read_current(scrape, datetime.now(UTC))
        assert reading.value is None and "stale replicas" in (reading.error or "")
    finally:
        scrape.close()
