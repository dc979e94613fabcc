"""Trace replay through the DemandSource protocol."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.errors import InputError
from controller.sources.base import DemandSource
from controller.sources.trace import TraceSource


def write(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("timestamp,value\n" + "".join(f"{t},{v}\n" for t, v in rows))
    return path


@pytest.fixture
def trace(tmp_path: Path) -> TraceSource:
    rows = [(f"2026-01-01T00:{m:02d}:00", "" if m == 2 else str(60 * (m + 1))) for m in range(6)]
    return TraceSource.from_csv(write(tmp_path / "t.csv", rows))


def test_protocol(trace: TraceSource) -> None:
    assert isinstance(trace, DemandSource)


@pytest.mark.parametrize(("at", "expected"), [
    ("2026-01-01T00:00:00", 60.0),
    ("2026-01-01T00:01:30", 120.0),
    ("2026-01-01T00:02:10", None),  # gap
    ("2026-01-01T00:05:59", 360.0),
    ("2026-01-01T00:06:00", None),  # after the end
    ("2025-12-31T23:59:00", None),  # before the start
])
def test_current(trace: TraceSource, at: str, expected: float | None) -> None:
    assert trace.current(datetime.fromisoformat(at).replace(tzinfo=UTC)) == expected


def test_per_second(tmp_path: Path) -> None:
    src = TraceSource.from_csv(write(tmp_path / "t.csv", [("2026-01-01T00:00:00", "60"),
                                                         ("2026-01-01T00:01:00", "120")]), per_second=True)
    assert src.current(datetime(2026, 1, 1, 0, 1, tzinfo=UTC)) == 2.0


def test_history_same_and_coarser_step(trace: TraceSource) -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    same = trace.history(start, start + timedelta(minutes=8), timedelta(minutes=1))
    assert list(same.iloc[:2]) == [60.0, 120.0] and math.isnan(same.iloc[2]) and math.isnan(same.iloc[7])
    coarse = trace.history(start, start + timedelta(minutes=6), timedelta(minutes=2))
    assert list(coarse) == [90.0, 240.0, 330.0]  # the gap is skipped by the mean
    assert isinstance(coarse.index, pd.DatetimeIndex) and coarse.index.freq == pd.Timedelta(minutes=2)


def test_bad_file_names_the_row(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="row 3, field 'value'"):
        TraceSource.from_csv(write(tmp_path / "bad.csv", [("2026-01-01T00:00:00", "1"), ("2026-01-01T00:01:00", "x")]))


def _old_history(src: TraceSource, start: datetime, end: datetime, step: timedelta) -> pd.Series:
    """TraceSource.history before it searched the stamps (boolean masks over the whole series): the reference."""
    grid = pd.date_range(pd.Timestamp(start), pd.Timestamp(end), freq=pd.Timedelta(step), inclusive="left",
                         unit="ns")
    window = src.series[(src.series.index >= grid[0]) & (src.series.index < grid[-1] + pd.Timedelta(step))]
    if step == src.step.to_pytimedelta():
        out = window.reindex(grid)
    else:
        pos = ((window.index - grid[0]) // pd.Timedelta(step)).astype(int)
        out = window.groupby(np.asarray(pos)).mean().reindex(range(len(grid)))
        out.index = grid
    return out.astype(float)


_T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _minutes(n: int, *, drop: tuple[int, ...] = (), nan: tuple[int, ...] = (), offset_s: int = 0) -> pd.Series:
    index = pd.date_range(_T0 + timedelta(seconds=offset_s), periods=n, freq="1min", tz="UTC")
    values = np.random.default_rng(3).uniform(50, 500, n)
    values[list(nan)] = np.nan
    series = pd.Series(values, index=index)
    return series.drop(series.index[list(drop)])


# (name, trace, grid start offset from _T0, grid length, step): regular, gapped (missing stamps and NaN),
# off-grid stamps, windows over either end of the trace, and re-stepped grids (coarser, unaligned, finer)
_GRIDS = [
    ("regular", _minutes(600), timedelta(0), timedelta(hours=10), timedelta(minutes=1)),
    ("regular, inside", _minutes(600), timedelta(minutes=37), timedelta(hours=2), timedelta(minutes=1)),
    ("before and after the trace", _minutes(600), -timedelta(hours=1), timedelta(hours=12), timedelta(minutes=1)),
    ("wholly outside", _minutes(600), timedelta(hours=20), timedelta(hours=1), timedelta(minutes=1)),
    ("one point", _minutes(600), timedelta(minutes=599), timedelta(minutes=1), timedelta(minutes=1)),
    ("gapped", _minutes(600, drop=(5, 6, 7, 300), nan=(10, 11, 400)), timedelta(0), timedelta(hours=10),
     timedelta(minutes=1)),
    ("grid off the trace's stamps", _minutes(600), timedelta(seconds=30), timedelta(hours=2), timedelta(minutes=1)),
    ("stamps off the grid", _minutes(600, offset_s=20), timedelta(0), timedelta(hours=2), timedelta(minutes=1)),
    ("re-stepped 5m", _minutes(600, drop=(5, 6), nan=(12,)), timedelta(0), timedelta(hours=10), timedelta(minutes=5)),
    ("re-stepped 7m, unaligned", _minutes(600, nan=tuple(range(20, 30))), timedelta(minutes=3),
     timedelta(hours=5), timedelta(minutes=7)),
    ("re-stepped 30s (finer)", _minutes(600), timedelta(minutes=2), timedelta(hours=1), timedelta(seconds=30)),
    ("re-stepped, outside", _minutes(600), timedelta(hours=30), timedelta(hours=1), timedelta(minutes=5)),
]


@pytest.mark.parametrize(("trace_series", "offset", "length", "step"), [g[1:] for g in _GRIDS],
                         ids=[g[0] for g in _GRIDS])
def test_history_matches_the_masked_reference(trace_series: pd.Series, offset: timedelta, length: timedelta,
                                              step: timedelta) -> None:
    src = TraceSource(trace_series)
    start = _T0 + offset
    got = src.history(start, start + length, step)
    want = _old_history(src, start, start + length, step)
    assert got.index.equals(want.index)
    # the trace's own step copies values (exact); a re-stepped mean may differ in the last bit of a sum
    np.testing.assert_allclose(got.to_numpy(), want.to_numpy(), rtol=1e-12, atol=0, equal_nan=True)
    assert got.index.freq == pd.Timedelta(step)


def test_naive_times_are_one_line_errors_naming_the_argument(trace: TraceSource) -> None:
    """A naive datetime is a ValueError that says what was expected, not an int64 comparison on local time."""
    naive = datetime(2026, 1, 1, 0, 10)
    with pytest.raises(ValueError, match=r"^now 2026-01-01T00:10:00: must be timezone-aware \(UTC\)$"):
        trace.current(naive)
    with pytest.raises(ValueError, match=r"^history: start and end must be timezone-aware \(UTC\)$"):
        trace.history(naive, naive + timedelta(minutes=10), timedelta(minutes=1))
