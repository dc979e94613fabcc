"""Demand replayed from a trace file, through the same ``DemandSource`` protocol.

Called by the simulator, demos and tests that replay a recorded series CSV
(format: data/README.md, read by ``controller.traceio.read_series``).
Values are used as they are (the trace's own demand unit); pass
``per_second=True`` to turn "demand per step" into demand per second.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from controller.traceio import read_series
from forecasting.timeutil import stamps_ns, td_ns, ts_ns, utc_ns_index


class TraceSource:
    """Replays a series: ``current(now)`` is the value of the step containing ``now``."""

    def __init__(self, series: pd.Series, *, per_second: bool = False) -> None:
        if not isinstance(series.index, pd.DatetimeIndex) or series.index.tz is None:
            raise ValueError("series: expected a tz-aware DatetimeIndex")
        if len(series) < 2:
            raise ValueError("series: needs at least two points to know the step")
        self.step = pd.Timedelta(series.index[1] - series.index[0])
        values = series.astype(float)
        if per_second:
            values = values / self.step.total_seconds()
        self.series = values.sort_index()
        self._stamps = stamps_ns(utc_ns_index(self.series.index))  # int64 ns, sorted: history() searches these
        self._values = self.series.to_numpy(dtype=float)

    @classmethod
    def from_csv(cls, path: str | Path, *, per_second: bool = False) -> TraceSource:
        """Read a series CSV (InputError naming the row on bad input)."""
        return cls(read_series(path), per_second=per_second)

    def current(self, now: datetime) -> float | None:
        """The value of the step that contains ``now``; None outside the trace or in a gap."""
        if now.tzinfo is None:
            raise ValueError(f"now {now.isoformat()}: must be timezone-aware (UTC)")
        at, stamps = ts_ns(now), self._stamps
        if at < stamps[0] or at >= stamps[-1] + td_ns(self.step):
            return None
        value = self._values[int(np.searchsorted(stamps, at, side="right")) - 1]
        return None if np.isnan(value) else float(value)

    def history(self, start: datetime, end: datetime, step: timedelta) -> pd.Series:
        """Mean of the trace's values in each [t, t + step) of the grid [start, end); NaN where none.

        On the trace's own step a grid point takes the value stamped exactly at it (a trace point off the
        grid is not used); on another step each bucket averages the values in it, NaN skipped. Two binary
        searches over the int64 stamps bound the window and positions are integer arithmetic, so a read
        costs what it returns, not the trace's length: the operator reads a policy's history every
        cycle (issue 14), the last few steps once its window is kept (``controller.operator.history``).
        """
        if end <= start:
            raise ValueError(f"history: end {end.isoformat()} must be after start {start.isoformat()}")
        grid = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=pd.Timedelta(step), inclusive="left",
                             unit="ns")
        if grid.tz is None:
            raise ValueError("history: start and end must be timezone-aware (UTC)")
        first, width = stamps_ns(grid)[0], td_ns(step)
        lo, hi = np.searchsorted(self._stamps, [first, first + len(grid) * width], side="left")
        offsets = self._stamps[lo:hi] - first
        values = self._values[lo:hi]
        pos = offsets // width
        out = np.full(len(grid), np.nan)
        if step == self.step.to_pytimedelta():
            exact = offsets % width == 0  # reindex: only the stamps on the grid
            out[pos[exact]] = values[exact]
        else:
            known = ~np.isnan(values)
            sums = np.bincount(pos[known], weights=values[known], minlength=len(grid))
            counts = np.bincount(pos[known], minlength=len(grid))
            np.divide(sums, counts, out=out, where=counts > 0)
        return pd.Series(out, index=grid, dtype=float)  # the grid's freq is the step (no re-inference)
