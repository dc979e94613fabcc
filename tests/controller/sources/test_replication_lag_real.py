"""Replication lag read the way production reads it: postgres_exporter -> Prometheus -> PrometheusLagSource.

A real primary and streaming standby (tests/pg_cluster.py), Debian's
``prometheus-postgres-exporter`` on the standby (its example queries.yaml
exports ``pg_replication_lag`` in seconds), a real Prometheus scraping it,
and the operator's production ``PrometheusLagSource`` over the real
``PrometheusClient``. The primary writes all along (that exporter's figure is
the age of the last replayed commit, so an idle primary would read as lag).
With replay paused the lag read grows past a threshold; after resume it
drops. Only lag values are asserted, not what the operator decides on them.
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from controller.core.decision import ReplicaLag
from controller.operator.app import PrometheusLagSource
from controller.sources.prometheus import PrometheusClient, PrometheusConfig
from tests.harness import Process, PrometheusServer, free_port, wait_until
from tests.pg_cluster import PgCluster

pytestmark = [pytest.mark.prometheus, pytest.mark.postgres]
QUERIES = Path("/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml")
THRESHOLD = 5.0  # seconds of lag the paused standby must exceed


def exporter_binary() -> str:
    for name in ("prometheus-postgres-exporter", "postgres_exporter"):
        path = shutil.which(name)
        if path is not None:
            return path
    pytest.fail("prometheus-postgres-exporter not found: install it (make system-deps); this test is not optional")


class PostgresExporter(Process):
    """postgres_exporter for one server, on a free loopback port (DATA_SOURCE_NAME names the server)."""

    def __init__(self, workdir: Path, dsn: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        if not QUERIES.exists():
            pytest.fail(f"{QUERIES} is missing: it ships with Debian's prometheus-postgres-exporter")
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.dsn = dsn
        argv = [exporter_binary(), f"--web.listen-address={self.target}", f"--extend.query-path={QUERIES}",
                "--log.level=warn"]
        super().__init__("postgres-exporter", argv, workdir, f"http://{self.target}/metrics")


@pytest.fixture
def standby_exporter(pg_cluster: PgCluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[
        PostgresExporter]:
    dsn = f"postgresql://postgres@127.0.0.1:{pg_cluster.standby.port}/postgres?sslmode=disable"
    monkeypatch.setenv("DATA_SOURCE_NAME", dsn)  # how the exporter is told its server (inherited at start)
    exporter = PostgresExporter(tmp_path / "exporter", dsn)
    exporter.start()
    try:
        yield exporter
    finally:
        exporter.stop()


@pytest.fixture
def writing_primary(pg_cluster: PgCluster) -> Iterator[None]:
    """The primary commits a row every 0.2 s for the whole test."""
    pg_cluster.primary.sql("CREATE TABLE heartbeat (at timestamptz DEFAULT now())")
    stop = threading.Event()

    def write() -> None:
        while not stop.wait(0.2):
            pg_cluster.primary.sql("INSERT INTO heartbeat DEFAULT VALUES")

    thread = threading.Thread(target=write, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def test_paused_replay_reads_as_growing_lag_then_drops_after_resume(
    pg_cluster: PgCluster, standby_exporter: PostgresExporter, writing_primary: None,
    prometheus_factory: Callable[..., PrometheusServer],
) -> None:
    prom = prometheus_factory(targets=[standby_exporter.target], scrape_interval="1s")
    source = PrometheusLagSource(PrometheusClient(PrometheusConfig(url=prom.url, timeout="3s")), "pg_replication_lag")

    def lag() -> float | None:
        rows = source.lags(datetime.now(UTC))
        assert len(rows) <= 1 and all(isinstance(r, ReplicaLag) for r in rows)
        return rows[0].lag_seconds if rows else None

    def caught_up() -> bool:
        value = lag()
        return value is not None and value < 2.0

    wait_until(caught_up, timeout=60, interval=0.5, what="a first lag sample below 2 s (streaming)")
    assert source.lags(datetime.now(UTC))[0].name == standby_exporter.target  # one series per scraped standby
    pg_cluster.pause_replay()
    try:
        def lagging() -> float | None:
            value = lag()
            return value if value is not None and value > THRESHOLD else None

        grown = wait_until(lagging, timeout=60, interval=0.5, what=f"lag above {THRESHOLD} s with replay paused")
        standby_view = pg_cluster.replay_lag_seconds()
        assert standby_view is not None and standby_view > THRESHOLD  # the standby agrees with what was read
    finally:
        pg_cluster.resume_replay()
    wait_until(caught_up, timeout=60, interval=0.5, what="lag back below 2 s after resume")
    assert grown > THRESHOLD
