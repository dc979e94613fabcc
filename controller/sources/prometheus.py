"""Demand from the Prometheus HTTP API: instant and range queries over httpx.

Called by the reconcile loop (``current`` every cycle, ``history`` once at start
to backfill up to 14 days) and by the incident checks that need SLI ratios.

Why the synchronous ``httpx.Client``: the operator loop is synchronous (the
official ``kubernetes`` client blocks), one query per cycle per policy does not
need concurrency, and a sync client keeps retries and timeouts plain code with
no event loop to share. Every call has a timeout and retries retryable
failures with exponential backoff and jitter; a 4xx (a bad query) is a
``PermanentError`` naming the query, connection refused / timeout / 5xx a
``RetryableError``. Empty results and NaN are "unknown" (None / NaN gaps),
never zero.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, field_validator

from controller.core.durations import parse_duration
from controller.errors import InputError, PermanentError, RetryableError
from controller.sources.retry import Backoff, call_with_retries, classify_http_error, classify_status

MAX_POINTS = 11_000  # Prometheus refuses range queries with more points per series
MAX_BACKFILL = timedelta(days=14)
DEFAULT_DEMAND_QUERY = "sum(rate(casino_http_requests_total[1m]))"

Series = tuple[dict[str, str], np.ndarray, np.ndarray]  # labels, unix seconds, values


class PrometheusConfig(BaseModel):
    """How to reach Prometheus. Validated on load; messages name the field."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(description="base URL, e.g. http://prometheus:9090")
    timeout: timedelta = timedelta(seconds=10)
    bearer_token: str | None = None
    bearer_token_file: Path | None = None
    ca_file: Path | None = None
    insecure_skip_verify: bool = False
    attempts: int = Field(default=3, ge=1, le=10)

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if not v.startswith(("http://", "https://")):
            raise ValueError(f"expected an http:// or https:// URL, got {v!r}")
        return v.rstrip("/")

    @field_validator("timeout", mode="before")
    @classmethod
    def _timeout(cls, v: Any) -> timedelta:
        value = parse_duration(v, field="timeout")
        if value <= timedelta(0):
            raise ValueError("timeout: must be positive")
        return value


def _unix(ts: datetime) -> float:
    if ts.tzinfo is None:
        raise ValueError(f"timestamp {ts.isoformat()}: must be timezone-aware (UTC)")
    return ts.timestamp()


class PrometheusClient:
    """A thin Prometheus HTTP API v1 client: ``query`` and ``query_range``."""

    def __init__(
        self,
        config: PrometheusConfig,
        *,
        transport: httpx.BaseTransport | None = None,
        backoff: Backoff | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        headers = {"Accept": "application/json", "User-Agent": "pitboss"}
        token = config.bearer_token
        if config.bearer_token_file is not None:
            try:
                token = config.bearer_token_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise InputError(f"cannot read: {exc.strerror}", field="bearer_token_file") from exc
        if token:
            headers["Authorization"] = f"Bearer {token}"
        verify: bool | str = True
        if config.insecure_skip_verify:
            verify = False
        elif config.ca_file is not None:
            if not config.ca_file.is_file():
                raise InputError(f"no such file: {config.ca_file}", field="ca_file")
            verify = str(config.ca_file)
        self._http = httpx.Client(
            base_url=config.url,
            headers=headers,
            timeout=config.timeout.total_seconds(),
            verify=verify,
            transport=transport,
        )
        self._backoff = backoff or Backoff(attempts=config.attempts)
        self._sleep = sleep

    def close(self) -> None:
        """Close the HTTP connection pool."""
        self._http.close()

    def _get(self, path: str, params: dict[str, str], what: str) -> Any:
        def once() -> Any:
            try:
                response = self._http.post(path, data=params)
            except httpx.HTTPError as exc:
                raise classify_http_error(exc, what) from exc
            detail = ""
            try:
                body = response.json()
            except ValueError:
                body = None
            if isinstance(body, dict) and body.get("status") == "error":
                detail = f"{body.get('errorType', 'error')}: {body.get('error', '')}"
            err = classify_status(response, what, detail)
            if err is not None:
                raise err
            if not isinstance(body, dict) or body.get("status") != "success":
                raise RetryableError(f"{what}: unexpected response {response.text[:200]!r}")
            return body["data"]

        return call_with_retries(once, self._backoff, sleep=self._sleep)

    def query(self, promql: str, at: datetime) -> list[tuple[dict[str, str], float]]:
        """Instant query at ``at``: a list of (labels, value); a scalar comes back as one unlabeled value."""
        data = self._get(
            "/api/v1/query", {"query": promql, "time": f"{_unix(at):.3f}"}, f"prometheus query {promql!r}"
        )
        kind, result = data.get("resultType"), data.get("result")
        if kind == "vector":
            return [(dict(item["metric"]), float(item["value"][1])) for item in result]
        if kind == "scalar":
            return [({}, float(result[1]))]
        raise PermanentError(f"prometheus query {promql!r}: expected a vector or scalar, got {kind}")

    def query_range(self, promql: str, start: datetime, end: datetime, step: timedelta) -> list[Series]:
        """Range query over [start, end] (both inclusive, Prometheus semantics), one call."""
        secs = step.total_seconds()
        if secs <= 0:
            raise ValueError(f"step: must be positive, got {step}")
        points = int((_unix(end) - _unix(start)) // secs) + 1
        if points > MAX_POINTS:
            raise ValueError(f"range: {points} points exceed Prometheus' limit of {MAX_POINTS}; chunk the query")
        params = {"query": promql, "start": f"{_unix(start):.3f}", "end": f"{_unix(end):.3f}", "step": f"{secs:g}"}
        data = self._get("/api/v1/query_range", params, f"prometheus range query {promql!r}")
        if data.get("resultType") != "matrix":
            raise PermanentError(f"prometheus range query {promql!r}: expected a matrix, got {data.get('resultType')}")
        out: list[Series] = []
        for item in data["result"]:
            values = item.get("values", [])
            times = np.array([float(v[0]) for v in values], dtype=float)
            vals = np.array([float(v[1]) for v in values], dtype=float)
            out.append((dict(item["metric"]), times, vals))
        return out


def _single(promql: str, series: list[Any]) -> Any | None:
    if not series:
        return None
    if len(series) > 1:
        raise PermanentError(
            f"prometheus query {promql!r}: returned {len(series)} series, expected one (aggregate it with sum())"
        )
    return series[0]


class PrometheusSource:
    """``DemandSource`` over a PromQL query that returns one series of demand per second."""

    def __init__(self, client: PrometheusClient, query: str = DEFAULT_DEMAND_QUERY) -> None:
        if not query.strip():
            raise InputError("must not be empty", field="query")
        self.client = client
        self.query = query
        self.available = True
        self.last_error: str | None = None

    def _guard(self, fn: Callable[[], Any]) -> Any:
        try:
            result = fn()
        except RetryableError as exc:
            self.available, self.last_error = False, str(exc)
            raise
        self.available, self.last_error = True, None
        return result

    def current(self, now: datetime) -> float | None:
        """Demand at ``now``; None when the query has no data or NaN. Raises RetryableError when unreachable."""
        rows = self._guard(lambda: self.client.query(self.query, now))
        row = _single(self.query, rows)
        if row is None or not math.isfinite(row[1]):
            return None
        return float(row[1])

    def history(self, start: datetime, end: datetime, step: timedelta) -> pd.Series:
        """Demand on the grid [start, end) at ``step``, in chunks of at most 11,000 points; NaN gaps.

        Windows longer than 14 days are clipped to the last 14 days.
        """
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("history: start and end must be timezone-aware (UTC)")
        if end <= start:
            raise ValueError(f"history: end {end.isoformat()} must be after start {start.isoformat()}")
        if end - start > MAX_BACKFILL:
            start = end - MAX_BACKFILL
        return backfill(self.client, self.query, start, end, step, guard=self._guard)


ChunkProgress = Callable[[int, int], None]  # (chunks done, chunks in all)


def backfill(
    client: PrometheusClient,
    query: str,
    start: datetime,
    end: datetime,
    step: timedelta,
    *,
    progress: ChunkProgress | None = None,
    guard: Callable[[Callable[[], Any]], Any] | None = None,
) -> pd.Series:
    """One series of ``query`` on the grid [start, end) at ``step``, in chunks of at most 11,000 points.

    Grid points without a sample stay NaN (gaps). No clipping: callers that
    must stay within a retention window clip first. ``progress`` is called
    after every chunk; ``guard`` wraps each range query (the source's
    availability bookkeeping). Used by ``PrometheusSource.history`` and
    ``pitboss trace export``.
    """
    if start.tzinfo is None or end.tzinfo is None:
        raise ValueError("history: start and end must be timezone-aware (UTC)")
    secs = step.total_seconds()
    if secs <= 0:
        raise ValueError(f"step: must be positive, got {step}")
    grid = pd.date_range(pd.Timestamp(start).tz_convert("UTC"), pd.Timestamp(end).tz_convert("UTC"),
                         freq=pd.Timedelta(step), inclusive="left", unit="ns")
    series = pd.Series(np.nan, index=grid, dtype=float)
    series.index.freq = pd.tseries.frequencies.to_offset(pd.Timedelta(step))
    chunk = MAX_POINTS - 1
    chunks = math.ceil(len(grid) / chunk)
    run = guard or (lambda fn: fn())
    for n, i in enumerate(range(0, len(grid), chunk), start=1):
        part = grid[i : i + chunk]
        first, last = part[0].to_pydatetime(), part[-1].to_pydatetime()
        result: list[Series] = run(partial(client.query_range, query, first, last, step))
        row = _single(query, result)
        if row is not None:
            _, times, values = row
            base = grid[0].timestamp()
            positions = np.rint((times - base) / secs).astype(int)
            ok = (positions >= 0) & (positions < len(grid)) & np.isfinite(values)
            series.iloc[positions[ok]] = values[ok]
        if progress is not None:
            progress(n, chunks)
    return series
