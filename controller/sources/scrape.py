"""Demand by scraping each replica's /metrics directly (the embedded default).

Called by the local run and the operator when no Prometheus is configured:
``current(now)`` scrapes every replica once (in parallel, each with a short
timeout), turns the cumulative counters into per-replica rates over a 1-minute
window (a counter that goes down is a restart: its new value is the increase,
as Prometheus' ``rate`` does) and sums the rates across replicas.

A replica that does not answer is *stale*: it is excluded at once and its
samples are forgotten (when it comes back, its counters start over). When every
replica is stale, or none has two samples yet, ``current`` returns None --
unknown, never zero demand. The source also keeps the per-cycle increases of
the SLI counters so the incident rules can compute burn rates without
Prometheus (``error_ratios``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import httpx
import numpy as np
import pandas as pd

from controller.sources.exposition import iter_samples

REQUESTS = "casino_http_requests_total"
DURATION = "casino_http_request_duration_seconds"
FAMILIES = (REQUESTS, DURATION)
LATENCY_THRESHOLD = "0.25"  # the latency SLI: share of requests under 0.25 s


@dataclass(frozen=True)
class Counters:
    """The cumulative counters of one replica that Pitboss reads."""

    requests: float = 0.0
    errors: float = 0.0  # status 5xx, admission 503s included
    fast: float = 0.0  # requests under the latency threshold
    timed: float = 0.0  # requests in the latency histogram

    def increase_since(self, old: Counters) -> Counters:
        """Per-field increase; a field that went down was reset, so its new value is the increase."""
        def inc(new: float, prev: float) -> float:
            return new - prev if new >= prev else new

        return Counters(
            inc(self.requests, old.requests), inc(self.errors, old.errors),
            inc(self.fast, old.fast), inc(self.timed, old.timed),
        )

    def __add__(self, other: Counters) -> Counters:
        return Counters(self.requests + other.requests, self.errors + other.errors,
                        self.fast + other.fast, self.timed + other.timed)


def _label(labels: tuple[tuple[str, str], ...], key: str) -> str | None:
    for k, v in labels:
        if k == key:
            return v
    return None


def counters_from_exposition(text: str) -> Counters:
    """Sum the contract's counters over every label set in one replica's exposition."""
    requests = errors = fast = timed = 0.0
    saw_threshold = False
    threshold = float(LATENCY_THRESHOLD)
    bucket, count = DURATION + "_bucket", DURATION + "_count"
    for name, labels, value in iter_samples(text, FAMILIES):
        if name == REQUESTS:
            requests += value
            status = _label(labels, "status")
            if status is not None and status[:1] == "5":
                errors += value
        elif name == bucket:
            le = _label(labels, "le")
            if le is not None and le != "+Inf" and float(le) == threshold:
                fast += value
                saw_threshold = True
        elif name == count:
            timed += value
    if timed > 0 and not saw_threshold:
        fast = math.nan  # no 0.25 s bucket: the latency SLI is unknown, not 100% bad
    return Counters(requests, errors, fast, timed)


@dataclass
class Replica:
    """What the source knows about one scrape target."""

    url: str
    # (time, counters adjusted to be monotone across resets) within the rate window
    samples: deque[tuple[datetime, Counters]] = field(default_factory=deque)
    raw: Counters | None = None  # last raw counters, to detect resets
    stale: bool = False
    last_error: str | None = None
    failures: int = 0

    def rate(self) -> float | None:
        """Requests/s over the samples in the window; None with fewer than two samples."""
        if len(self.samples) < 2:
            return None
        (t0, c0), (t1, c1) = self.samples[0], self.samples[-1]
        secs = (t1 - t0).total_seconds()
        return (c1.requests - c0.requests) / secs if secs > 0 else None


Fetch = Callable[[str], str]


class ScrapeSource:
    """``DemandSource`` that scrapes replicas' /metrics itself."""

    def __init__(
        self,
        targets: Sequence[str] | Callable[[], Sequence[str]],
        *,
        timeout: timedelta = timedelta(seconds=2),
        rate_window: timedelta = timedelta(minutes=1),
        retention: timedelta = timedelta(days=3, hours=1),
        fetch: Fetch | None = None,
        max_workers: int = 8,
    ) -> None:
        self._targets = targets if callable(targets) else (lambda t=tuple(targets): t)
        self.rate_window = rate_window
        self.retention = retention
        self.replicas: dict[str, Replica] = {}
        self._client = httpx.Client(timeout=timeout.total_seconds()) if fetch is None else None
        self._fetch: Fetch = fetch or self._http_fetch
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pitboss-scrape")
        self._demand: deque[tuple[datetime, float]] = deque()
        self._increase: deque[tuple[datetime, Counters]] = deque()
        self.last_round: datetime | None = None
        self.available = False

    def close(self) -> None:
        """Stop the worker threads and close the HTTP client."""
        self._pool.shutdown(wait=True)
        if self._client is not None:
            self._client.close()

    def _http_fetch(self, url: str) -> str:
        assert self._client is not None
        response = self._client.get(url, headers={"Accept": "text/plain;version=0.0.4"})
        response.raise_for_status()
        return response.text

    def _scrape_one(self, url: str) -> Counters | str:
        try:
            return counters_from_exposition(self._fetch(url))
        except (httpx.HTTPError, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"

    def scrape(self, now: datetime) -> None:
        """One round: scrape every target, update rates, staleness and the SLI increases."""
        urls = list(dict.fromkeys(self._targets()))
        for gone in set(self.replicas) - set(urls):
            del self.replicas[gone]
        results = list(self._pool.map(self._scrape_one, urls))
        round_increase = Counters()
        for url, result in zip(urls, results, strict=True):
            rep = self.replicas.setdefault(url, Replica(url))
            if isinstance(result, str):
                rep.stale, rep.last_error, rep.failures = True, result, rep.failures + 1
                rep.samples.clear()
                rep.raw = None
                continue
            rep.stale, rep.last_error, rep.failures = False, None, 0
            if rep.raw is None or not rep.samples:
                adjusted = Counters()
            else:
                inc = result.increase_since(rep.raw)
                adjusted = rep.samples[-1][1] + inc
                round_increase = round_increase + inc
            rep.raw = result
            rep.samples.append((now, adjusted))
            while len(rep.samples) > 2 and rep.samples[1][0] <= now - self.rate_window:
                rep.samples.popleft()
        self.last_round = now
        demand = self.demand()
        self.available = demand is not None
        if demand is not None:
            self._demand.append((now, demand))
        self._increase.append((now, round_increase))
        horizon = now - self.retention
        for dq in (self._demand, self._increase):
            while dq and dq[0][0] < horizon:
                dq.popleft()

    def demand(self) -> float | None:
        """Sum of the fresh replicas' rates from the last round; None when no fresh replica has one."""
        rates = [r.rate() for r in self.replicas.values() if not r.stale]
        known = [r for r in rates if r is not None]
        return float(sum(known)) if known else None

    def stale_replicas(self) -> list[str]:
        """URLs of the replicas that did not answer the last round."""
        return [r.url for r in self.replicas.values() if r.stale]

    def current(self, now: datetime) -> float | None:
        """Scrape every replica now and return the summed demand (None: unknown)."""
        self.scrape(now)
        return self.demand()

    def history(self, start: datetime, end: datetime, step: timedelta) -> pd.Series:
        """Demand seen by past rounds, averaged onto the grid [start, end) at ``step``; NaN where none."""
        if end <= start:
            raise ValueError(f"history: end {end.isoformat()} must be after start {start.isoformat()}")
        grid = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=pd.Timedelta(step), inclusive="left")
        sums = np.zeros(len(grid))
        counts = np.zeros(len(grid))
        base, secs = grid[0].timestamp(), step.total_seconds()
        for ts, value in self._demand:
            pos = int((ts.timestamp() - base) // secs)
            if 0 <= pos < len(grid):
                sums[pos] += value
                counts[pos] += 1
        with np.errstate(invalid="ignore", divide="ignore"):
            values = np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)
        series = pd.Series(values, index=grid, dtype=float)
        series.index.freq = pd.tseries.frequencies.to_offset(pd.Timedelta(step))
        return series

    def error_ratios(self, now: datetime, windows: Iterable[timedelta]) -> dict[str, dict[timedelta, float | None]]:
        """Availability and latency error ratios over each window, from the increases seen (None: no traffic)."""
        return error_ratios_from_increases(self._increase, now, windows)


def error_ratios_from_increases(
    increases: Iterable[tuple[datetime, Counters]], now: datetime, windows: Iterable[timedelta]
) -> dict[str, dict[timedelta, float | None]]:
    """Sum the increases inside each window and return {"availability": {w: ratio}, "latency": {...}}."""
    items = list(increases)
    out: dict[str, dict[timedelta, float | None]] = {"availability": {}, "latency": {}}
    for window in windows:
        total = Counters()
        for ts, inc in items:
            if now - window < ts <= now:
                total = total + inc
        out["availability"][window] = total.errors / total.requests if total.requests > 0 else None
        latency = 1 - total.fast / total.timed if total.timed > 0 else math.nan
        out["latency"][window] = latency if math.isfinite(latency) else None
    return out

