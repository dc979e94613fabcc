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

    @classmethod
    def from_csv(cls, path: str | Path, *, per_second: bool = False) -> TraceSource:
        """Read a series CSV (InputError naming the row on bad input)."""
        return cls(read_series(path), per_second=per_second)

    def current(self, now: datetime) -> float | None:
        """The value of the step that contains ``now``; None outside the trace or in a gap."""
        ts = pd.Timestamp(now).tz_convert("UTC")
        idx = self.series.index
        if ts < idx[0] or ts >= idx[-1] + self.step:
            return None
        value = self.series.iloc[idx.searchsorted(ts, side="right") - 1]
        return None if pd.isna(value) else float(value)

    def history(self, start: datetime, end: datetime, step: timedelta) -> pd.Series:
        """Mean of the trace's values in each [t, t + step) of the grid [start, end); NaN where none."""
        if end <= start:
            raise ValueError(f"history: end {end.isoformat()} must be after start {start.isoformat()}")
        grid = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=pd.Timedelta(step), inclusive="left",
                             unit="ns")
        window = self.series[(self.series.index >= grid[0]) & (self.series.index < grid[-1] + pd.Timedelta(step))]
        if step == self.step.to_pytimedelta():
            out = window.reindex(grid)
        else:
            pos = ((window.index - grid[0]) // pd.Timedelta(step)).astype(int)
            out = window.groupby(np.asarray(pos)).mean().reindex(range(len(grid)))
            out.index = grid
        out = out.astype(float)
        out.index.freq = pd.tseries.frequencies.to_offset(pd.Timedelta(step))
        return out
