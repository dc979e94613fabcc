"""The scrape source over an in-memory fetch: rates, resets, staleness, history and SLI ratios.

The fetch function stands in for HTTP here (scenario tables need exact counter
values per round); tests/controller/sources/test_scrape_real.py scrapes real
processes over HTTP.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import pytest

from controller.sources.base import DemandSource
from controller.sources.observe import read_current
from controller.sources.scrape import Counters, Endpoint, ScrapeSource, counters_from_exposition

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def exposition(ok: float, bad: float = 0.0, fast: float | None = None) -> str:
    timed = ok + bad
    fast = timed if fast is None else fast
    return (
        "# TYPE casino_http_requests_total counter\n"
        f'casino_http_requests_total{{route="/a",method="GET",status="200"}} {ok}\n'
        f'casino_http_requests_total{{route="/a",method="GET",status="503"}} {bad}\n'
        f'casino_http_request_duration_seconds_bucket{{route="/a",method="GET",le="0.1"}} {fast / 2}\n'
        f'casino_http_request_duration_seconds_bucket{{route="/a",method="GET",le="0.25"}} {fast}\n'
        f'casino_http_request_duration_seconds_bucket{{route="/a",method="GET",le="+Inf"}} {timed}\n'
        f'casino_http_request_duration_seconds_count{{route="/a",method="GET"}} {timed}\n'
        "casino_http_requests_in_flight 4\n"
    )


class Replicas:
    """Per-URL exposition text; None means the replica does not answer."""

    def __init__(self) -> None:
        self.texts: dict[str, str | None] = {}

    def fetch(self, url: str) -> str:
        text = self.texts.get(url)
        if text is None:
            raise OSError(f"connection refused: {url}")
        return text


def source(reps: Replicas, urls: list[str]) -> ScrapeSource:
    return ScrapeSource(lambda: urls, fetch=reps.fetch, rate_window=timedelta(seconds=60))


def test_counters_from_exposition() -> None:
    c = counters_from_exposition(exposition(90, 10, fast=70))
    assert c == Counters(requests=100, errors=10, fast=70, timed=100)


def test_is_a_demand_source() -> None:
    assert isinstance(source(Replicas(), []), DemandSource)


# Each row: rounds 15 s apart of {url: ok counter, or None (does not answer)}; a URL missing from a round is
# not listed (the pod is gone or not there yet). Then the expected demand after each round.
SCENARIOS = {
    "first round has no rate": ([{"a": 0}], [None]),
    "steady 10/s on one replica": ([{"a": 0}, {"a": 150}, {"a": 300}], [None, 10.0, 10.0]),
    "two replicas sum": ([{"a": 0, "b": 0}, {"a": 150, "b": 75}], [None, 15.0]),
    "reset counts the new value as the increase": ([{"a": 1000}, {"a": 1150}, {"a": 150}], [None, 10.0, 10.0]),
    "a ready replica that does not answer makes demand unknown, never smaller": (
        [{"a": 0, "b": 0}, {"a": 150, "b": 150}, {"a": 300, "b": None}], [None, 20.0, None]),
    "back after a miss: its increase across the gap counts": (
        [{"a": 0, "b": 0}, {"a": 150, "b": None}, {"a": 300, "b": 300}], [None, None, 20.0]),
    "all down -> unknown": ([{"a": 0}, {"a": 150}, {"a": None}], [None, 10.0, None]),
    "no endpoints -> unknown, not zero": ([{"a": 0}, {"a": 150}, {}], [None, 10.0, None]),
    # 20/s in total, split evenly over the pods that are there
    "a pod that joins takes its share: no false drop": (
        [{"a": 0, "b": 0}, {"a": 150, "b": 150}, {"a": 250, "b": 250, "c": 100}, {"a": 350, "b": 350, "c": 200},
         {"a": 450, "b": 450, "c": 300}, {"a": 550, "b": 550, "c": 400}],
        [None, 20.0, 20.0, 20.0, 20.0, 20.0]),
    "a pod that leaves keeps what it served in the window: no false drop": (
        [{"a": 0, "b": 0, "c": 0}, {"a": 100, "b": 100, "c": 100}, {"a": 250, "b": 250}, {"a": 400, "b": 400},
         {"a": 550, "b": 550}, {"a": 700, "b": 700}, {"a": 850, "b": 850}],
        [None, 20.0, 20.0, 20.0, 20.0, 20.0, 20.0]),
    # b restarted while it did not answer: its new value (150) is its increase since, as in Prometheus' rate;
    # what it served between its last scrape and the restart is gone with its process
    "a pod restarted while it was away: its new value is the increase": (
        [{"a": 0, "b": 500}, {"a": 150, "b": 650}, {"a": 300, "b": None}, {"a": 450, "b": 150}],
        [None, 20.0, None, (450 + 150 + 150) / 45]),
}


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_scenarios(name: str) -> None:
    rounds, expected = SCENARIOS[name]
    reps = Replicas()
    listed: list[str] = []
    src = ScrapeSource(lambda: listed, fetch=reps.fetch, rate_window=timedelta(seconds=60))
    for i, (counters, want) in enumerate(zip(rounds, expected, strict=True)):
        listed[:] = sorted(counters)
        reps.texts = {u: (None if v is None else exposition(v)) for u, v in counters.items()}
        got = src.current(T0 + timedelta(seconds=15 * i))
        assert got == (pytest.approx(want) if want is not None else None), (name, i)


def test_a_pod_that_is_not_ready_serves_no_traffic_and_cannot_make_demand_unknown() -> None:
    reps = Replicas()
    endpoints = [Endpoint("a", "pod-a"), Endpoint("b", "pod-b", ready=False)]
    src = ScrapeSource(lambda: endpoints, fetch=reps.fetch)
    reps.texts = {"a": exposition(0), "b": None}
    src.current(T0)
    reps.texts = {"a": exposition(150), "b": None}
    assert src.current(T0 + timedelta(seconds=15)) == pytest.approx(10.0)
    endpoints[1] = Endpoint("b", "pod-b", ready=True)  # ready now: it must be read
    assert src.current(T0 + timedelta(seconds=30)) is None
    assert "pod-b" in (src.unknown_reason or "")


def test_a_new_pod_on_an_old_address_counts_from_zero() -> None:
    reps = Replicas()
    endpoints = [Endpoint("a", "pod-1")]
    src = ScrapeSource(lambda: endpoints, fetch=reps.fetch)
    reps.texts = {"a": exposition(900)}
    src.current(T0)
    reps.texts = {"a": exposition(1050)}
    assert src.current(T0 + timedelta(seconds=15)) == pytest.approx(10.0)
    endpoints[0] = Endpoint("a", "pod-2")  # pod-1 went away, pod-2 got its IP and has served 150 so far
    reps.texts = {"a": exposition(150)}
    assert src.current(T0 + timedelta(seconds=30)) == pytest.approx((150 + 150) / 30)


NAMED = """# HELP app_requests_total requests
# TYPE app_requests_total counter
app_requests_total{{route="/bet",code="200"}} {bet}
app_requests_total{{route="/bet",code="500"}} {bad}
app_requests_total{{route="/login",code="200"}} {login}
app_requests_created{{route="/bet",code="200"}} 1.7e9
casino_http_requests_total{{status="200"}} 999999
"""


def test_the_named_counter_is_read_with_its_label_matchers() -> None:
    page = {"a": NAMED.format(bet=0, bad=0, login=0)}
    src = ScrapeSource(["a"], metric="app_requests_total", labels={"route": "/bet"}, fetch=lambda u: page[u])
    assert src.current(T0) is None
    page["a"] = NAMED.format(bet=270, bad=30, login=600)
    assert src.current(T0 + timedelta(seconds=30)) == pytest.approx(10.0)  # /bet only, 5xx included
    assert src.error_ratios(T0 + timedelta(seconds=30), [timedelta(minutes=5)])["availability"][
        timedelta(minutes=5)] == pytest.approx(0.1)
    assert counters_from_exposition(page["a"], "app_requests").requests == 900  # named without _total


def test_a_page_without_the_counter_is_unknown_not_zero() -> None:
    page = {"a": "# TYPE other_total counter\nother_total 5\n"}
    src = ScrapeSource(["a"], metric="app_requests_total", fetch=lambda u: page[u])
    src.current(T0)
    assert src.current(T0 + timedelta(seconds=15)) is None
    assert "app_requests_total is not on the page" in (src.unknown_reason or "")
    page["a"] = "# HELP app_requests_total x\n# TYPE app_requests_total counter\n"  # declared, no traffic yet
    src.current(T0 + timedelta(seconds=30))
    assert src.current(T0 + timedelta(seconds=45)) == 0.0  # a declared counter with no samples: a real zero


def test_rate_uses_the_window() -> None:
    """Over a 60 s window the rate is the average of the last minute, not only the last step."""
    reps, src = Replicas(), None
    src = source(reps, ["a"])
    values = [0, 150, 300, 450, 600, 1500]  # 10/s, then 60/s in the last 15 s
    for i, v in enumerate(values):
        reps.texts = {"a": exposition(v)}
        src.current(T0 + timedelta(seconds=15 * i))
    # window (15 s .. 75 s]: samples at 15 s .. 75 s -> (1500 - 150) / 60
    assert src.demand() == pytest.approx((1500 - 150) / 60)


def test_stale_replicas_are_reported_and_explained() -> None:
    reps = Replicas()
    src = source(reps, ["a", "b"])
    reps.texts = {"a": exposition(0), "b": None}
    src.current(T0)
    assert src.stale_replicas() == ["b"]
    reps.texts = {"a": None, "b": None}
    reading = read_current(src, T0 + timedelta(seconds=15))
    assert reading.value is None and reading.error is not None and "stale replicas: a, b" in reading.error


def test_removed_targets_are_forgotten() -> None:
    reps = Replicas()
    urls = ["a", "b"]
    src = ScrapeSource(lambda: urls, fetch=reps.fetch)
    reps.texts = {"a": exposition(0), "b": exposition(0)}
    src.current(T0)
    urls.remove("b")
    src.current(T0 + timedelta(seconds=15))
    assert set(src.replicas) == {"a"}


def test_malformed_exposition_marks_the_replica_stale() -> None:
    reps = Replicas()
    src = source(reps, ["a"])
    reps.texts = {"a": "casino_http_requests_total{status=\"200\"} notanumber\n"}
    assert src.current(T0) is None
    assert src.replicas["a"].stale and "not a number" in (src.replicas["a"].last_error or "")


def test_history_averages_rounds_onto_the_grid() -> None:
    reps = Replicas()
    src = source(reps, ["a"])
    for i, v in enumerate([0, 150, 300, 600]):  # rates 10, 10, 20 at 15 s, 30 s, 45 s
        reps.texts = {"a": exposition(v)}
        src.current(T0 + timedelta(seconds=15 * i))
    hist = src.history(T0, T0 + timedelta(minutes=2), timedelta(seconds=30))
    assert len(hist) == 4
    assert hist.iloc[0] == pytest.approx(10.0)  # [0, 30): the 15 s round
    assert hist.iloc[1] == pytest.approx((10.0 + (600 - 0) / 45) / 2)  # rounds at 30 s and 45 s
    assert math.isnan(hist.iloc[2]) and math.isnan(hist.iloc[3])


def test_error_ratios_from_scraped_counters() -> None:
    reps = Replicas()
    src = source(reps, ["a"])
    reps.texts = {"a": exposition(0, 0, fast=0)}
    src.current(T0)
    reps.texts = {"a": exposition(980, 20, fast=900)}
    src.current(T0 + timedelta(minutes=1))
    ratios = src.error_ratios(T0 + timedelta(minutes=1), [timedelta(minutes=5), timedelta(seconds=10)])
    assert ratios["availability"][timedelta(minutes=5)] == pytest.approx(0.02)
    assert ratios["latency"][timedelta(minutes=5)] == pytest.approx(0.1)
    # a window with no increase in it: no traffic seen -> None, not 0
    reps.texts = {"a": exposition(980, 20, fast=900)}
    src.current(T0 + timedelta(minutes=2))
    later = src.error_ratios(T0 + timedelta(minutes=2), [timedelta(seconds=10)])
    assert later["availability"][timedelta(seconds=10)] is None


def test_missing_latency_bucket_is_unknown_not_all_bad() -> None:
    text = ('casino_http_requests_total{status="200"} 10\n'
            'casino_http_request_duration_seconds_bucket{le="0.3"} 10\n'
            "casino_http_request_duration_seconds_count 10\n")
    assert math.isnan(counters_from_exposition(text).fast)
    reps = Replicas()
    src = source(reps, ["a"])
    for i, n in enumerate((10, 20)):
        reps.texts = {"a": text.replace("10", str(n))}
        src.current(T0 + timedelta(seconds=15 * i))
    ratios = src.error_ratios(T0 + timedelta(seconds=15), [timedelta(minutes=5)])
    assert ratios["latency"][timedelta(minutes=5)] is None
    assert ratios["availability"][timedelta(minutes=5)] == 0.0
