"""The scrape source against real processes over HTTP: rates summed across replicas; a killed one: unknown.

The replicas are tests/exporter_app.py processes (prometheus_client serving the
casino metric contract with a known rate), started and killed by PID.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from controller.sources.observe import read_current
from controller.sources.scrape import ScrapeSource
from tests.harness import ExporterProcess


def test_rates_across_replicas_and_a_killed_replica_makes_demand_unknown(
    exporter_factory: Callable[..., ExporterProcess],
) -> None:
    a = exporter_factory(rate=30)
    b = exporter_factory(rate=70, error_share=0.5)
    src = ScrapeSource([a.url, b.url], timeout=timedelta(seconds=1), rate_window=timedelta(seconds=3))
    try:
        assert src.current(datetime.now(UTC)) is None  # one sample per replica: no rate yet
        time.sleep(1.5)
        assert src.current(datetime.now(UTC)) == pytest.approx(100, rel=0.15)
        ratios = src.error_ratios(datetime.now(UTC), [timedelta(minutes=5)])
        assert ratios["availability"][timedelta(minutes=5)] == pytest.approx(0.35, abs=0.05)

        b.kill()
        demand = src.current(datetime.now(UTC))
        assert src.stale_replicas() == [b.url]
        assert demand is None  # b cannot be read: unknown, not a's 30/s alone, not b's last rate

        a.kill()
        reading = read_current(src, datetime.now(UTC))
        assert reading.value is None  # every replica stale: unknown, never zero demand
        assert reading.error and "stale replicas" in reading.error
        assert sorted(src.stale_replicas()) == sorted([a.url, b.url])
    finally:
        src.close()
