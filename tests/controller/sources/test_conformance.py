"""Every DemandSource through the same table of cases (the protocol of controller/sources/base.py).

One row per implementation, each on its real component where it has one:

* ``prometheus``: ``PrometheusSource`` against a real Prometheus (Debian's
  package, tests/harness.py) whose TSDB holds two hours of a counter growing
  at a known rate, written with ``promtool tsdb create-blocks-from
  openmetrics``; "down" stops a Prometheus, "bad query" is malformed PromQL;
* ``scrape``: ``ScrapeSource`` over HTTP against real /metrics processes
  (tests/exporter_app.py, prometheus_client at a known rate), rounds on the
  wall clock; "down" kills the process;
* ``trace``: ``TraceSource.from_csv`` over a trace CSV written to disk (the
  format of data/README.md);
* ``fake``: ``FakeDemandSource``, the in-memory stand-in other tests use
  (nothing real to run: it must answer like the others, or those tests lie).

A case that cannot apply to an implementation is listed in ``NOT_APPLICABLE``
with the reason, and skipped. ``test_the_recipe_shows_this_table`` keeps the
table in docs/adding-a-source.md equal to ``CASES`` x ``IMPLEMENTATIONS``.
"""

from __future__ import annotations

import math
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.errors import PermanentError, RetryableError
from controller.sources.base import DemandSource
from controller.sources.fakes import FakeDemandSource
from controller.sources.prometheus import PrometheusClient, PrometheusConfig, PrometheusSource
from controller.sources.retry import Backoff
from controller.sources.scrape import ScrapeSource
from controller.sources.trace import TraceSource
from controller.traceio import write_series
from tests.harness import ExporterProcess, PrometheusServer, binary, free_port

pytestmark = pytest.mark.prometheus

RATE = 20.0  # demand units per second, in every implementation's known window
DOC = Path(__file__).resolve().parents[3] / "docs" / "adding-a-source.md"

IMPLEMENTATIONS = ("prometheus", "scrape", "trace", "fake")
CASES: dict[str, str] = {
    "protocol": "is a `DemandSource` (runtime-checkable protocol)",
    "grid": "`history` is a float Series on exactly [start, end) at the step: UTC, ns index, freq = step",
    "values": "`history` reads back the known demand (per second)",
    "coarser-step": "`history` at twice the native step: same grid rules, same demand",
    "empty-window": "`history` of a window without data: all NaN, right length (never zeros, never an error)",
    "bad-window": "`history` with end <= start: ValueError naming `history`",
    "current": "`current` inside the known window: the demand",
    "current-unknown": "`current` with no data for now: None (never 0)",
    "down-current": "source down: `current` is None or RetryableError (never a number, never permanent)",
    "down-history": "source down: `history` raises RetryableError",
    "bad-query": "bad query: PermanentError naming the query, from `current` and `history`",
}
NOT_APPLICABLE: dict[tuple[str, str], str] = {
    ("scrape", "down-history"): "history is what past rounds saw, in memory: nothing to reach",
    ("scrape", "bad-query"): "the counter name is validated in the spec; a page without it is unknown demand",
    ("trace", "down-current"): "the trace is read once, when the source is made: nothing to go down",
    ("trace", "down-history"): "the trace is read once, when the source is made: nothing to go down",
    ("trace", "bad-query"): "a trace has no query",
}


@dataclass
class Subject:
    """One implementation set up with a known demand of ``RATE`` over [start, end)."""

    source: DemandSource
    start: datetime
    end: datetime
    step: timedelta
    rel: float  # tolerance on the demand read back
    before: datetime  # a time with no data at all
    current_unknown: Callable[[], float | None]
    down: Callable[[], DemandSource] | None = None  # a source of the same kind whose backend is down
    bad: Callable[[], DemandSource] | None = None  # a source of the same kind with a bad query
    cleanup: list[Callable[[], None]] = field(default_factory=list)


def _client(url: str) -> PrometheusClient:
    return PrometheusClient(PrometheusConfig(url=url, timeout="2s", attempts=1),
                            backoff=Backoff(base=0.05, cap=0.1, attempts=1))


def _trace_series() -> tuple[pd.Series, datetime, datetime]:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    index = pd.date_range(start, periods=120, freq="1min", unit="ns")
    return pd.Series(RATE, index=index, dtype=float), start, start + timedelta(hours=2)


def _prometheus(tmp: Path) -> Subject:
    end = (int(datetime.now(UTC).timestamp()) // 3600 - 2) * 3600
    start = end - 2 * 3600
    lines = ["# TYPE demand counter"]
    lines += [f'demand_total{{service="slots"}} {RATE * (t - start)} {t}' for t in range(start, end, 15)]
    (tmp / "history.om").write_text("\n".join([*lines, "# EOF"]) + "\n")
    subprocess.run([binary("promtool"), "tsdb", "create-blocks-from", "openmetrics", "-q", str(tmp / "history.om"),
                    str(tmp / "tsdb")], check=True, capture_output=True, timeout=120)
    prom = PrometheusServer(tmp / "prometheus", tsdb=tmp / "tsdb")
    prom.start()
    t0, t1 = datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)
    source = PrometheusSource(_client(prom.url), "sum(rate(demand_total[1m]))")

    def down() -> DemandSource:  # a Prometheus address nothing listens on (as when it is stopped)
        return PrometheusSource(_client(f"http://127.0.0.1:{free_port()}"), "sum(rate(demand_total[1m]))")

    return Subject(
        source=source, start=t0 + timedelta(minutes=10), end=t1 - timedelta(minutes=10), step=timedelta(minutes=1),
        rel=1e-6, before=t0 - timedelta(days=1), current_unknown=lambda: source.current(t0 - timedelta(days=1)),
        down=down, bad=lambda: PrometheusSource(_client(prom.url), "sum(rate(demand_total[1m]"),
        cleanup=[prom.stop],
    )


def _scrape(tmp: Path) -> Subject:
    exporter = ExporterProcess(tmp / "exporter", rate=RATE)
    exporter.start()
    source = ScrapeSource([exporter.url], timeout=timedelta(seconds=1), rate_window=timedelta(seconds=3))
    first = datetime.now(UTC)
    for _ in range(8):  # eight rounds a second apart: seven rates
        source.current(datetime.now(UTC))
        time.sleep(1.0)
    last = datetime.now(UTC)
    start = first.replace(microsecond=0) + timedelta(seconds=2)
    end = last.replace(microsecond=0)

    def unknown() -> float | None:
        fresh = ScrapeSource([exporter.url], timeout=timedelta(seconds=1))
        try:
            return fresh.current(datetime.now(UTC))  # the first round has no rate yet
        finally:
            fresh.close()

    def down() -> DemandSource:
        dead = ExporterProcess(tmp / "dead", rate=RATE)
        dead.start()
        src = ScrapeSource([dead.url], timeout=timedelta(seconds=1), rate_window=timedelta(seconds=3))
        src.current(datetime.now(UTC))
        time.sleep(1.0)
        src.current(datetime.now(UTC))
        dead.kill()
        subject.cleanup.append(src.close)
        return src

    subject = Subject(source=source, start=start, end=end, step=timedelta(seconds=1), rel=0.2,
                      before=first - timedelta(hours=1), current_unknown=unknown, down=down,
                      cleanup=[source.close, exporter.stop])
    return subject


def _trace(tmp: Path) -> Subject:
    series, start, end = _trace_series()
    write_series(series, tmp / "trace.csv")
    source = TraceSource.from_csv(tmp / "trace.csv")  # the file format of data/README.md, read back
    return Subject(source=source, start=start, end=end, step=timedelta(minutes=1), rel=1e-9,
                   before=start - timedelta(days=1), current_unknown=lambda: source.current(start - timedelta(days=1)))


def _fake(_: Path) -> Subject:
    series, start, end = _trace_series()
    source = FakeDemandSource(series)

    def failing(how: str) -> DemandSource:
        fake = FakeDemandSource(series)
        fake.fail_retryable() if how == "down" else fake.fail_permanent("query 'bad(': parse error")
        return fake

    return Subject(source=source, start=start, end=end, step=timedelta(minutes=1), rel=1e-9,
                   before=start - timedelta(days=1), current_unknown=lambda: source.current(start - timedelta(days=1)),
                   down=lambda: failing("down"), bad=lambda: failing("bad"))


BUILDERS: dict[str, Callable[[Path], Subject]] = {"prometheus": _prometheus, "scrape": _scrape, "trace": _trace,
                                                  "fake": _fake}


@pytest.fixture(scope="module", params=IMPLEMENTATIONS)
def subject(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Subject]:
    impl = str(request.param)
    built = BUILDERS[impl](tmp_path_factory.mktemp(impl))
    try:
        yield built
    finally:
        for fn in reversed(built.cleanup):
            fn()


@pytest.fixture(autouse=True)
def _applicable(request: pytest.FixtureRequest) -> None:
    case = request.node.originalname.removeprefix("test_").replace("_", "-")
    impl = request.node.callspec.params.get("subject") if hasattr(request.node, "callspec") else None
    if impl is not None and (impl, case) in NOT_APPLICABLE:
        pytest.skip(f"n/a: {NOT_APPLICABLE[impl, case]}")


def _check_grid(series: pd.Series, start: datetime, end: datetime, step: timedelta) -> None:
    expected = pd.date_range(start, end, freq=step, inclusive="left", unit="ns")
    assert isinstance(series, pd.Series) and series.dtype == np.float64
    assert isinstance(series.index, pd.DatetimeIndex) and series.index.equals(expected)
    assert str(series.index.tz) == "UTC" and series.index.unit == "ns"
    assert series.index.freq == pd.tseries.frequencies.to_offset(pd.Timedelta(step))


def _known(series: pd.Series, rel: float) -> None:
    known = series.dropna()
    assert len(known) >= 0.6 * len(series), f"too many gaps: {series.to_list()}"
    np.testing.assert_allclose(known.to_numpy(), RATE, rtol=rel)


def test_protocol(subject: Subject) -> None:
    assert isinstance(subject.source, DemandSource)


def test_grid(subject: Subject) -> None:
    _check_grid(subject.source.history(subject.start, subject.end, subject.step), subject.start, subject.end,
                subject.step)


def test_values(subject: Subject) -> None:
    _known(subject.source.history(subject.start, subject.end, subject.step), subject.rel)


def test_coarser_step(subject: Subject) -> None:
    step = subject.step * 2
    end = subject.start + step * ((subject.end - subject.start) // step)
    series = subject.source.history(subject.start, end, step)
    _check_grid(series, subject.start, end, step)
    _known(series, subject.rel)


def test_empty_window(subject: Subject) -> None:
    start = subject.before - subject.step * 10
    series = subject.source.history(start, subject.before, subject.step)
    _check_grid(series, start, subject.before, subject.step)
    assert series.isna().all()


def test_bad_window(subject: Subject) -> None:
    with pytest.raises(ValueError, match="history"):
        subject.source.history(subject.end, subject.start, subject.step)


def test_current(subject: Subject) -> None:
    middle = subject.start + (subject.end - subject.start) / 2
    now = datetime.now(UTC) if isinstance(subject.source, ScrapeSource) else middle  # a scrape reads the present
    value = subject.source.current(now)
    assert value is not None and math.isfinite(value)
    assert value == pytest.approx(RATE, rel=subject.rel)


def test_current_unknown(subject: Subject) -> None:
    assert subject.current_unknown() is None


def test_down_current(subject: Subject) -> None:
    assert subject.down is not None
    source = subject.down()
    try:
        value = source.current(datetime.now(UTC))
    except RetryableError:
        return
    assert value is None


def test_down_history(subject: Subject) -> None:
    assert subject.down is not None
    source = subject.down()
    with pytest.raises(RetryableError):
        source.history(subject.start, subject.end, subject.step)


def test_bad_query(subject: Subject) -> None:
    assert subject.bad is not None
    source = subject.bad()
    with pytest.raises(PermanentError, match=r"bad|query") as info:
        source.current(subject.start)
    assert not isinstance(info.value, RetryableError)
    with pytest.raises(PermanentError, match=r"bad|query"):
        source.history(subject.start, subject.end, subject.step)


def table() -> str:
    """The Markdown table of which implementation passes which case (docs/adding-a-source.md)."""
    rows = ["| case | " + " | ".join(IMPLEMENTATIONS) + " |", "|---|" + "---|" * len(IMPLEMENTATIONS)]
    for case, what in CASES.items():
        marks = ["n/a" if (impl, case) in NOT_APPLICABLE else "pass" for impl in IMPLEMENTATIONS]
        rows.append(f"| `{case}`: {what} | " + " | ".join(marks) + " |")
    return "\n".join(rows)


def test_every_case_has_a_test() -> None:
    tests = {name.removeprefix("test_").replace("_", "-") for name in globals() if name.startswith("test_")}
    assert set(CASES) <= tests
    assert {case for _, case in NOT_APPLICABLE} <= set(CASES)
    assert {impl for impl, _ in NOT_APPLICABLE} <= set(IMPLEMENTATIONS)


def test_the_recipe_shows_this_table() -> None:
    assert table() in DOC.read_text(), f"docs/adding-a-source.md: paste the table from table():\n{table()}"
