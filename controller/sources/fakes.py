"""In-memory fakes of the metrics sources, for tests and the simulator.

``FakeDemandSource`` implements ``DemandSource`` over a dict/series you set,
and can be told to fail (retryable or permanent) to exercise the loop's
hold-on-unavailable path. ``FakeSLISource`` returns fixed error ratios.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

import pandas as pd

from controller.errors import PermanentError, RetryableError


class FakeDemandSource:
    """A DemandSource whose answers are set by the test."""

    def __init__(self, series: pd.Series | None = None, value: float | None = None) -> None:
        self.series = series
        self.value = value
        self.fail: Exception | None = None
        self.calls: list[tuple[str, datetime]] = []

    def fail_retryable(self, message: str = "fake source unavailable") -> None:
        """Make every later call raise RetryableError."""
        self.fail = RetryableError(message)

    def fail_permanent(self, message: str = "fake query invalid") -> None:
        """Make every later call raise PermanentError."""
        self.fail = PermanentError(message)

    def recover(self) -> None:
        """Stop failing."""
        self.fail = None

    def current(self, now: datetime) -> float | None:
        """The set value, else the series' value at or before ``now``."""
        self.calls.append(("current", now))
        if self.fail is not None:
            raise self.fail
        if self.value is not None or self.series is None:
            return self.value
        upto = self.series[self.series.index <= pd.Timestamp(now)]
        if upto.empty or pd.isna(upto.iloc[-1]):
            return None
        return float(upto.iloc[-1])

    def history(self, start: datetime, end: datetime, step: timedelta) -> pd.Series:
        """The series reindexed onto the grid [start, end) (NaN where unknown)."""
        self.calls.append(("history", start))
        if self.fail is not None:
            raise self.fail
        if end <= start:  # as every real source answers (tests/controller/sources/test_conformance.py)
            raise ValueError(f"history: end {end.isoformat()} must be after start {start.isoformat()}")
        grid = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=pd.Timedelta(step), inclusive="left",
                             unit="ns")
        if self.series is None:
            return pd.Series(float("nan"), index=grid, dtype=float)
        return self.series.reindex(grid).astype(float)


class FakeSLISource:
    """Fixed error ratios per SLO and window (None: no traffic)."""

    def __init__(self, ratios: dict[str, dict[timedelta, float | None]] | None = None) -> None:
        self.ratios = ratios or {}

    def error_ratios(self, now: datetime, windows: Iterable[timedelta]) -> dict[str, dict[timedelta, float | None]]:
        """The configured ratios for ``windows`` (missing ones are None)."""
        return {slo: {w: by_window.get(w) for w in windows} for slo, by_window in self.ratios.items()}
