"""Trace replay through the DemandSource protocol."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

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
