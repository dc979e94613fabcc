"""Retries with exponential backoff and full jitter, plus httpx error mapping.

Used by the Prometheus source, the scrape source and the incident sinks
(Alertmanager), so every HTTP call in ``controller`` retries and classifies
failures the same way: connection refused, timeouts, 429 and 5xx are
``RetryableError``; other 4xx are ``PermanentError``. The clock and the sleep
are injectable so tests run instantly.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import httpx

from controller.errors import PermanentError, RetryableError, is_retryable

T = TypeVar("T")


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: delay n is uniform in [0, min(cap, base * 2**n)]."""

    base: float = 0.2
    cap: float = 10.0
    attempts: int = 3  # total tries of one call, the first included
    rng: random.Random = field(default_factory=random.Random, compare=False)

    def __post_init__(self) -> None:
        if self.base <= 0:
            raise ValueError(f"backoff.base: must be positive, got {self.base}")
        if self.cap < self.base:
            raise ValueError(f"backoff.cap: must be >= base ({self.base}), got {self.cap}")
        if self.attempts < 1:
            raise ValueError(f"backoff.attempts: must be >= 1, got {self.attempts}")

    def ceiling(self, failures: int) -> float:
        """The upper bound of the delay after ``failures`` consecutive failures (>= 1)."""
        return float(min(self.cap, self.base * 2 ** max(0, failures - 1)))

    def delay(self, failures: int) -> float:
        """A jittered delay after ``failures`` consecutive failures (>= 1)."""
        return self.rng.uniform(0, self.ceiling(failures))


def call_with_retries(
    fn: Callable[[], T],
    backoff: Backoff,
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``fn``; on a retryable error sleep a jittered delay and try again, up to ``backoff.attempts``."""
    failures = 0
    while True:
        try:
            return fn()
        except Exception as exc:
            if not is_retryable(exc):
                raise
            failures += 1
            if failures >= backoff.attempts:
                raise
            sleep(backoff.delay(failures))


def classify_http_error(exc: Exception, what: str) -> Exception:
    """Map an httpx failure to our vocabulary, naming ``what`` was being done."""
    if isinstance(exc, RetryableError | PermanentError):
        return exc
    if isinstance(exc, httpx.TimeoutException):
        return RetryableError(f"{what}: timed out ({type(exc).__name__})")
    if isinstance(exc, httpx.TransportError):
        return RetryableError(f"{what}: cannot connect ({exc or type(exc).__name__})")
    return exc


def classify_status(response: httpx.Response, what: str, detail: str = "") -> Exception | None:
    """None for 2xx; RetryableError for 429/5xx; PermanentError for other statuses."""
    code = response.status_code
    if 200 <= code < 300:
        return None
    text = detail or response.text.strip().replace("\n", " ")[:300]
    message = f"{what}: HTTP {code}" + (f": {text}" if text else "")
    if code == 429 or code >= 500:
        return RetryableError(message)
    return PermanentError(message)
