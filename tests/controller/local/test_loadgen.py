"""The load generator against one real local casino replica (real HTTP on loopback, no mocks).

The replica admits 2 requests and holds each 0.1 s: 20 requests/s at most, 503 beyond.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from controller.errors import InputError
from controller.local.loadgen import LoadGenerator, SpinWorkload, Tally
from controller.local.observe import business_fetch, without_ops_routes
from controller.sources.scrape import counters_from_exposition
from controller.targets.local import LocalConfig, LocalProcessTarget


@pytest.fixture(scope="module")
def replica(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalProcessTarget]:
    with LocalProcessTarget(tmp_path_factory.mktemp("loadgen"), LocalConfig(max_in_flight=2, service_time=0.1)) as t:
        t.set_replicas(t.key, 1)
        t.wait_ready(1, timeout=60)
        yield t


@pytest.fixture(scope="module")
def workload(replica: LocalProcessTarget) -> SpinWorkload:
    w = SpinWorkload(players=2)
    w.setup(replica.ready_urls()[0])
    return w


def drive(gen: LoadGenerator, seconds: float) -> Tally:
    gen.start()
    time.sleep(seconds)
    gen.stop()
    return gen.snapshot()


@pytest.mark.parametrize(
    ("rate", "expect_rejections"),
    [(8.0, False), (60.0, True)],  # well under the 20/s admission limit; three times over it
)
def test_replays_a_rate_and_counts_admission_rejections(replica: LocalProcessTarget, workload: SpinWorkload,
                                                        rate: float, expect_rejections: bool) -> None:
    gen = LoadGenerator(lambda _: rate, replica.ready_urls, workload, max_requests=10_000, max_seconds=30)
    tally = drive(gen, 2.0)
    assert tally.offered == pytest.approx(rate * 2.0, rel=0.3)
    assert tally.sent == tally.offered and tally.unrouted == 0 and tally.failed == 0
    assert tally.served + tally.rejected == tally.sent
    if expect_rejections:
        assert tally.rejected > tally.offered * 0.3
        assert tally.served <= 20 * 2.0 * 1.3  # the replica's capacity bounds what is served
    else:
        assert tally.rejected == 0 and tally.served == tally.offered
        assert tally.latency_sum / tally.served >= 0.1  # the service time is really held


def test_is_bounded_in_requests_and_time(replica: LocalProcessTarget, workload: SpinWorkload) -> None:
    gen = LoadGenerator(lambda _: 100.0, replica.ready_urls, workload, max_requests=25, max_seconds=30)
    tally = drive(gen, 1.5)
    assert tally.offered == 25 and gen.exhausted
    gen = LoadGenerator(lambda _: 5.0, replica.ready_urls, workload, max_requests=1000, max_seconds=0.5)
    gen.start()
    gen._thread.join(timeout=5)  # type: ignore[union-attr]
    assert not gen.running and gen.exhausted and gen.snapshot().offered <= 5


def test_no_ready_replica_means_unrouted_demand(workload: SpinWorkload) -> None:
    gen = LoadGenerator(lambda _: 20.0, lambda: [], workload, max_requests=1000, max_seconds=30)
    tally = drive(gen, 1.0)
    assert tally.offered > 0 and tally.unrouted == tally.offered == tally.unserved and tally.sent == 0


def test_a_dead_replica_counts_as_failed(workload: SpinWorkload) -> None:
    gen = LoadGenerator(lambda _: 10.0, lambda: ["http://127.0.0.1:9"], workload, max_requests=1000, max_seconds=30,
                        timeout=1.0)
    tally = drive(gen, 1.0)
    assert tally.sent > 0 and tally.failed == tally.sent and tally.served == 0


def test_tally_difference_and_unserved() -> None:
    a = Tally(offered=10, sent=9, served=5, rejected=2, failed=1, unrouted=1, dropped=0, latency_sum=1.0)
    b = Tally(offered=4, sent=4, served=3, rejected=1)
    d = a - b
    assert (d.offered, d.served, d.rejected, d.unserved) == (6, 2, 1, 3)


@pytest.mark.parametrize(
    ("kwargs", "field"), [({"max_requests": 0}, "maxRequests"), ({"max_seconds": 0}, "maxSeconds")]
)
def test_refuses_unbounded_settings(kwargs: dict[str, float], field: str) -> None:
    base: dict[str, object] = {"max_requests": 10, "max_seconds": 1.0, **kwargs}
    with pytest.raises(InputError, match=field):
        LoadGenerator(lambda _: 1.0, lambda: [], SpinWorkload(), **base)  # type: ignore[arg-type]


def test_workload_needs_setup_and_players() -> None:
    with pytest.raises(RuntimeError, match="setup"):
        SpinWorkload().request()
    with pytest.raises(InputError, match="players"):
        SpinWorkload(players=0)


def test_business_fetch_counts_spins_but_not_the_scrapes(replica: LocalProcessTarget, workload: SpinWorkload) -> None:
    """The local run's scrape sees exactly the requests the load generator sent, not its own /metrics calls."""
    url = replica.metrics_urls()[0]
    with httpx.Client(timeout=2) as client:
        fetch = business_fetch(client)

        def count(raw: bool) -> float:
            text = client.get(url).text if raw else fetch(url)
            return counters_from_exposition(text).requests

        before, raw_before = count(False), count(True)
        gen = LoadGenerator(lambda _: 50.0, replica.ready_urls, workload, max_requests=20, max_seconds=10)
        gen.start()
        # It stops by itself after the 20th request and its answer: wait for that, not a fixed time
        # (a loaded machine sends them late).
        gen._thread.join(timeout=15)  # type: ignore[union-attr]
        gen.stop()
        tally = gen.snapshot()
        after, raw_after = count(False), count(True)
    assert tally.sent == 20
    assert after - before == 20
    assert raw_after - raw_before == 20 + 2  # the raw counter also has the two scrapes in between


def test_without_ops_routes_keeps_business_samples() -> None:
    text = "\n".join([
        "# TYPE casino_http_requests_total counter",
        'casino_http_requests_total{route="/metrics",method="GET",status="200"} 50',
        'casino_http_requests_total{route="/v1/games/slots/spins",method="POST",status="201"} 7',
        'casino_http_requests_total{route="/readyz",method="GET",status="200"} 3',
        'casino_http_requests_total{route="/v1/games/slots/spins",method="POST",status="503"} 2',
    ])
    counters = counters_from_exposition(without_ops_routes(text))
    assert (counters.requests, counters.errors) == (9, 2)
