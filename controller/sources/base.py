"""The metrics-source protocol: where the loop reads demand from.

Three adapters implement it (Prometheus HTTP API, direct /metrics scrape, trace
file replay), each with an in-memory fake beside it for tests. Called by the
reconcile loop and the local run; the decision core never sees a source.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable

import pandas as pd


@runtime_checkable
class DemandSource(Protocol):
    """Demand of one service, in units per second (requests/s by default)."""

    def history(self, start: datetime, end: datetime, step: timedelta) -> pd.Series:
        """Demand on the regular UTC grid [start, end) at ``step``; NaN where unknown.

        Raises ``RetryableError`` when the source cannot be reached and
        ``PermanentError`` when the query itself is wrong.
        """
        ...

    def current(self, now: datetime) -> float | None:
        """Demand right now; None when it cannot be known (stale, unavailable)."""
        ...
