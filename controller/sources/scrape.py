"""Demand by scraping each replica's /metrics directly (the embedded default, and metric.scrape policies).

Called by the local run (its replicas' URLs) and the operator (each pod of the
target, from ``controller.sources.pods``). ``current(now)`` lists the
endpoints, scrapes every one of them on its own (in parallel, each with a
short timeout) and reads one named counter (``metric``, only the series that
match ``labels``); demand is the counter's total increase across the pods
over the rate window (1 minute), divided by the window.

* **Resets** are per pod: a counter that goes down restarted, so its new value
  is the increase, as Prometheus' ``rate`` does.
* **Unknown, never smaller.** A ready endpoint that cannot be scraped (or whose
  page lacks the counter) makes the round incomplete and ``current`` returns
  None; so does a round with no endpoint at all, or the first round (no rate
  yet). An endpoint listed as not ready serves no traffic: it is scraped when
  it answers, but its failure is not a reason for unknown.
* **Pods that come and go.** A pod that appears after the first round started
  its counter at zero since the previous listing, so its whole value is new
  traffic (no false drop while it takes its share); a pod that disappears keeps
  the traffic it served inside the window (no false drop when its share moves
  to the others), and is forgotten once it has left the window. Every rate is
  taken between two *complete* rounds, so pods and window always agree.

The source also keeps the per-round increases of the SLI counters (5xx share,
the 0.25 s latency bucket) so the incident rules can compute burn rates
without Prometheus (``error_ratios``).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterable, Mapping, Sequence
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


@dataclass(frozen=True)
class Endpoint:
    """One scrape target: its /metrics URL, the pod behind it (when known) and whether it serves traffic."""

    url: str
    name: str = ""
    ready: bool = True


def _label(labels: tuple[tuple[str, str], ...], key: str) -> str | None:
    for k, v in labels:
        if k == key:
            return v
    return None


def _names(counter: str) -> set[str]:
    """The sample names a counter can have: ``x_total`` and, named without the suffix, ``x``'s ``x_total``."""
    return {counter} if counter.endswith("_total") else {counter, f"{counter}_total"}


def has_counter(text: str, counter: str = REQUESTS) -> bool:
    """True when the page declares or carries ``counter`` (a counter with no samples yet still has # TYPE)."""
    for name in _names(counter) | {counter.removesuffix("_total")}:
        for prefix in (f"# TYPE {name} ", f"{name}{{", f"{name} "):
            if text.startswith(prefix) or f"\n{prefix}" in text:
                return True
    return False


def counters_from_exposition(text: str, counter: str = REQUESTS,
                             labels: Mapping[str, str] | None = None) -> Counters:
    """Sum ``counter`` (series matching ``labels``), its 5xx share and the latency histogram over one page."""
    requests = errors = fast = timed = 0.0
    saw_threshold = False
    threshold = float(LATENCY_THRESHOLD)
    names = _names(counter)
    wanted = dict(labels or {})
    bucket, count = DURATION + "_bucket", DURATION + "_count"
    for name, series, value in iter_samples(text, (counter, DURATION)):
        if name in names:
            if wanted and any(_label(series, k) != v for k, v in wanted.items()):
                continue
            requests += value
            status = _label(series, "status") or _label(series, "code")
            if status is not None and status[:1] == "5":
                errors += value
        elif name == bucket:
            le = _label(series, "le")
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
    """What the source knows about one scrape target (kept while its traffic is inside the window)."""

    url: str
    name: str = ""
    ready: bool = True
    from_zero: bool = False  # first listed after the first round: its counters started at 0 since then
    since: float | None = None  # first listed (a round stamp, see ScrapeSource._stamp)
    listed: bool = True  # in the last listing
    raw: Counters | None = None  # last raw counters, to detect resets
    total: Counters = field(default_factory=Counters)  # monotone across resets (from 0 when from_zero)
    first_total: Counters | None = None  # ``total`` at its first good scrape
    last_sample: float | None = None
    stale: bool = False
    last_error: str | None = None
    failures: int = 0


Fetch = Callable[[str], str]
Targets = Sequence[str] | Callable[[], Sequence[str | Endpoint]]


class ScrapeSource:
    """``DemandSource`` that scrapes every replica's /metrics itself and sums one counter's rates."""

    def __init__(
        self,
        targets: Targets,
        *,
        metric: str = REQUESTS,
        labels: Mapping[str, str] | None = None,
        timeout: timedelta = timedelta(seconds=2),
        rate_window: timedelta = timedelta(minutes=1),
        retention: timedelta = timedelta(days=3, hours=1),
        fetch: Fetch | None = None,
        max_workers: int = 8,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        if callable(targets):
            self._targets: Callable[[], Sequence[str | Endpoint]] = targets
        else:
            fixed = tuple(targets)
            self._targets = lambda: fixed
        self.metric = metric
        self.labels = dict(labels or {})
        self.rate_window = rate_window
        self.retention = retention
        self.replicas: dict[str, Replica] = {}
        self._client = httpx.Client(timeout=timeout.total_seconds()) if fetch is None else None
        self._fetch: Fetch = fetch or self._http_fetch
        self._pool = ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="pitboss-scrape")
        # Rates are taken between round stamps: by default the ``now`` passed in (exact for tests and
        # replays); with ``monotonic`` (the operator: time.monotonic) the moment the pods were scraped, so a
        # cycle that reached the scrape late does not bend the rate.
        self._monotonic = monotonic
        self._rounds: deque[tuple[float, dict[str, Counters]]] = deque()  # complete rounds only
        self._demand: deque[tuple[datetime, float]] = deque()
        self._increase: deque[tuple[datetime, Counters]] = deque()
        self._current: float | None = None
        self.last_round: datetime | None = None
        self.available = False
        self.unknown_reason: str | None = None

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
            text = self._fetch(url)
            if not has_counter(text, self.metric):
                return f"counter {self.metric} is not on the page"
            return counters_from_exposition(text, self.metric, self.labels)
        except (httpx.HTTPError, OSError, ValueError) as exc:
            return f"{type(exc).__name__}: {exc}"

    def _endpoints(self) -> list[Endpoint]:
        seen: dict[str, Endpoint] = {}
        for item in self._targets():
            ep = item if isinstance(item, Endpoint) else Endpoint(str(item))
            seen.setdefault(ep.url, ep)
        return list(seen.values())

    @staticmethod
    def _key(ep: Endpoint) -> str:
        """A replica is its pod on its address: a new pod on an old IP is another replica."""
        return f"{ep.name}@{ep.url}" if ep.name else ep.url

    def scrape(self, now: datetime) -> None:
        """One round: list and scrape every endpoint, update per-pod totals, the window and the SLI increases."""
        first = self.last_round is None
        endpoints = self._endpoints()
        before = self._monotonic() if self._monotonic is not None else 0.0
        results = list(self._pool.map(self._scrape_one, [ep.url for ep in endpoints]))
        stamp = now.timestamp() if self._monotonic is None else (before + self._monotonic()) / 2
        for rep in self.replicas.values():
            rep.listed = False
        complete, ready, round_increase, failed = bool(endpoints), 0, Counters(), []
        for ep, result in zip(endpoints, results, strict=True):
            known = self.replicas.get(self._key(ep))
            if known is None:  # a new pod (perhaps on an old pod's IP)
                known = self.replicas[self._key(ep)] = Replica(ep.url, ep.name, from_zero=not first, since=stamp)
            rep = known
            rep.ready, rep.listed = ep.ready, True
            ready += ep.ready
            if isinstance(result, str):
                rep.stale, rep.last_error, rep.failures = True, result, rep.failures + 1
                if ep.ready:
                    complete = False
                    failed.append(f"{ep.name or ep.url}: {result}")
                continue
            rep.stale, rep.last_error, rep.failures = False, None, 0
            if rep.raw is not None:
                inc = result.increase_since(rep.raw)
            elif rep.from_zero:
                inc = result  # started at zero after the previous listing: all of it is new traffic
            else:
                inc = None  # there before we first looked: a baseline
            rep.total = rep.total + inc if inc is not None else rep.total
            if rep.first_total is None:
                rep.first_total = rep.total
            if inc is not None:
                round_increase = round_increase + inc
            rep.raw, rep.last_sample = result, stamp
        complete = complete and ready > 0
        if complete:
            self._rounds.append((stamp, {u: r.total for u, r in self.replicas.items() if r.last_sample == stamp}))
        self._prune(stamp)
        self.last_round = now
        self._current = self._rate(stamp) if complete else None
        self.available = self._current is not None
        self.unknown_reason = None if self.available else (
            "no endpoints to scrape" if not endpoints else "no endpoint is ready" if not ready
            else "cannot scrape " + "; ".join(failed) if failed else "first round: no rate yet")
        if self._current is not None:
            self._demand.append((now, self._current))
        self._increase.append((now, round_increase))
        horizon = now - self.retention
        for dq in (self._demand, self._increase):
            while dq and dq[0][0] < horizon:
                dq.popleft()

    def _prune(self, stamp: float) -> None:
        """Keep the newest complete round at or before the window's start and every later one; forget the
        replicas that are gone and have no traffic left inside the kept rounds."""
        cutoff = stamp - self.rate_window.total_seconds()
        while len(self._rounds) > 1 and self._rounds[1][0] <= cutoff:
            self._rounds.popleft()
        oldest = self._rounds[0][0] if self._rounds else stamp
        for url in [u for u, r in self.replicas.items() if not r.listed
                    and (r.last_sample is None or r.last_sample <= oldest)]:
            del self.replicas[url]

    def _rate(self, stamp: float) -> float | None:
        """Requests/s between the window's start round and the round at ``stamp`` (both complete)."""
        starts = [(t, snap) for t, snap in self._rounds if t < stamp]
        if not starts:
            return None
        t0, snap = starts[0]
        secs = stamp - t0
        if secs <= 0:
            return None
        total = 0.0
        for url, rep in self.replicas.items():
            if rep.last_sample is None or rep.last_sample <= t0:
                continue
            if url in snap:
                base = snap[url].requests
            elif rep.from_zero and rep.since is not None and rep.since > t0:
                base = 0.0  # appeared after the window's start: counted from zero
            else:
                base = (rep.first_total or rep.total).requests  # not scraped at the start: from its first scrape
            total += max(0.0, rep.total.requests - base)
        return total / secs

    def demand(self) -> float | None:
        """The summed demand of the last round (None: unknown)."""
        return self._current

    def stale_replicas(self) -> list[str]:
        """URLs of the listed replicas that did not answer the last round."""
        return [r.url for r in self.replicas.values() if r.stale and r.listed]

    def current(self, now: datetime) -> float | None:
        """Scrape every replica now and return the summed demand (None: unknown)."""
        self.scrape(now)
        return self.demand()

    def history(self, start: datetime, end: datetime, step: timedelta) -> pd.Series:
        """Demand seen by past rounds, averaged onto the grid [start, end) at ``step``; NaN where none."""
        if end <= start:
            raise ValueError(f"history: end {end.isoformat()} must be after start {start.isoformat()}")
        grid = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=pd.Timedelta(step), inclusive="left",
                             unit="ns")
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
