"""Trace files: the repository data reads cleanly; bad files name file, row and field."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from controller.errors import InputError
from controller.traceio import read_events, read_series, write_events, write_series


def test_reads_metro_trace(data_dir: Path) -> None:
    series = read_series(data_dir / "metro_traffic_hourly.csv")
    assert len(series) == 17520
    assert series.index.tz is not None and str(series.index.tz) == "UTC"
    assert series.index.freq == pd.Timedelta(hours=1)
    assert int(series.isna().sum()) == 17
    events = read_events(data_dir / "metro_traffic_hourly_events.csv")
    assert len(events) == 22
    assert all(e.end > e.start for e in events)


def test_roundtrip(tmp_path: Path, data_dir: Path) -> None:
    series = read_series(data_dir / "metro_traffic_hourly.csv").iloc[:500]
    events = read_events(data_dir / "metro_traffic_hourly_events.csv")
    write_series(series, tmp_path / "s.csv")
    write_events(events, tmp_path / "e.csv")
    again = read_series(tmp_path / "s.csv")
    pd.testing.assert_series_equal(series, again, check_names=False)
    assert read_events(tmp_path / "e.csv") == events


def test_unsorted_is_sorted_and_gaps_filled(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("timestamp,value\n2024-01-01T00:02:00,3\n2024-01-01T00:00:00,1\n2024-01-01T00:01:00,2\n2024-01-01T00:05:00,\n")
    series = read_series(path)
    assert list(series.index.minute) == [0, 1, 2, 3, 4, 5]
    assert series.iloc[0] == 1 and series.iloc[2] == 3 and series.isna().sum() == 3


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ("time,value\n2024-01-01,1\n", r"row 1, field 'timestamp'"),
        ("timestamp,value\n2024-01-01T00:00,1\nnot-a-date,2\n", r"row 3, field 'timestamp'"),
        ("timestamp,value\n2024-01-01T00:00,1\n2024-01-01T00:01,abc\n", r"row 3, field 'value'"),
        ("timestamp,value\n2024-01-01T00:00,1\n2024-01-01T00:01,-4\n", r"row 3, field 'value'"),
        ("timestamp,value\n2024-01-01T00:00,1\n2024-01-01T00:00,2\n", r"row 3, field 'timestamp'.*duplicate"),
        (
            "timestamp,value\n2024-01-01T00:00,1\n2024-01-01T00:01,1\n2024-01-01T00:02,1\n2024-01-01T00:03:30,1\n",
            r"row 5.*irregular",
        ),
        ("", r"empty"),
    ],
)
def test_bad_series(tmp_path: Path, body: str, pattern: str) -> None:
    path = tmp_path / "bad.csv"
    path.write_text(body)
    with pytest.raises(InputError, match=pattern) as info:
        read_series(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("body", "pattern"),
    [
        ("start,end,kind\n", r"row 1, field 'name'"),
        ("start,end,kind,name\n2024-01-02,2024-01-01,promo,a\n", r"row 2, field 'end'"),
        ("start,end,kind,name\n2024-01-01,2024-01-02,,a\n", r"row 2, field 'kind'"),
        ("start,end,kind,name,expected_lift\n2024-01-01,2024-01-02,p,a,-2\n", r"field 'expected_lift'"),
        ("start,end,kind,name\n2024-01-01,2024-01-02,p,a\n2024-01-01,2024-01-04,p,a\n", r"row 3.*duplicate"),
    ],
)
def test_bad_events(tmp_path: Path, body: str, pattern: str) -> None:
    path = tmp_path / "bad_events.csv"
    path.write_text(body)
    with pytest.raises(InputError, match=pattern):
        read_events(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot open"):
        read_series(tmp_path / "nope.csv")
