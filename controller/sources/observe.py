"""One guarded read of the current demand, for the loop: a value or the reason it is unknown.

The reconcile loop calls ``read_current`` every cycle. A retryable failure
(Prometheus down, timeouts) becomes ``Reading(None, error)`` so the loop holds
replicas (``ObservedState.observed_demand=None`` -> MetricsAvailable=False in
the decision) and the ``MetricsUnavailable`` incident carries the error.
A permanent failure (a bad query) is re-raised: it needs a person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from controller.errors import RetryableError
from controller.sources.base import DemandSource


@dataclass(frozen=True)
class Reading:
    """Current demand (None: unknown) and, when unknown, why."""

    value: float | None
    error: str | None = None

    @property
    def available(self) -> bool:
        """True when a demand value was read."""
        return self.value is not None


def read_current(source: DemandSource, now: datetime) -> Reading:
    """``source.current(now)``, with retryable failures turned into an unknown reading."""
    try:
        value = source.current(now)
    except RetryableError as exc:
        return Reading(None, str(exc))
    if value is None:
        reason = getattr(source, "unknown_reason", None)  # the scrape source says which pod failed and how
        stale = getattr(source, "stale_replicas", None)
        detail = f"; stale replicas: {', '.join(stale())}" if callable(stale) and stale() else ""
        if isinstance(reason, str) and reason:
            detail = f": {reason}{detail}"
        return Reading(None, f"no current demand from {type(source).__name__}{detail}")
    return Reading(value)
