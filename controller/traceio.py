"""Read and write trace files: the series CSV and the events CSV.

The format is documented in data/README.md: a series CSV with header
``timestamp,value`` (ISO 8601, read as UTC, regular grid, empty value = gap)
and an events CSV with header ``start,end,kind,name[,expected_lift]``.
Called by the CLI (forecast, backtest, simulate, trace synth) and the
trace-replay metrics source. Bad input raises ``InputError`` naming the file,
the row (1-based, counting the header as row 1) and the field.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from controller.errors import InputError
from forecasting.base import Event
from forecasting.timeutil import utc_ns, utc_ns_index

SERIES_HEADER = ("timestamp", "value")
EVENTS_HEADER = ("start", "end", "kind", "name")


def _parse_ts(text: str, *, source: str, row: int, field: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(text.strip())
    except (ValueError, TypeError):
        ts = None
    if ts is None or ts is pd.NaT or not text.strip():
        raise InputError(
            f"expected an ISO 8601 timestamp, got {text!r}", source=source, row=row, field=field
        )
    # pandas 3 parses ISO text at second/microsecond resolution: make it ns here, where stamps enter.
    return utc_ns(ts)


def read_series(path: str | Path) -> pd.Series:
    """Read a series CSV into a float Series on a regular UTC grid (NaN = gap).

    Unsorted rows are sorted; duplicate timestamps, an irregular grid that is
    not a whole multiple of the step, a missing column or an unparsable value
    raise InputError naming the row. Missing grid points become NaN gaps.
    """
    source = str(path)
    try:
        handle = open(path, newline="", encoding="utf-8")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", source=source) from exc
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise InputError("file is empty; expected header 'timestamp,value'", source=source)
        header = [h.strip().lower() for h in header]
        for col in SERIES_HEADER:
            if col not in header:
                raise InputError(
                    f"missing column; expected header 'timestamp,value', got {','.join(header)!r}",
                    source=source,
                    row=1,
                    field=col,
                )
        i_ts, i_val = header.index("timestamp"), header.index("value")
        stamps: list[pd.Timestamp] = []
        values: list[float] = []
        for row_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) <= max(i_ts, i_val):
                raise InputError("too few columns", source=source, row=row_no)
            stamps.append(_parse_ts(row[i_ts], source=source, row=row_no, field="timestamp"))
            raw = row[i_val].strip()
            if raw == "":
                values.append(math.nan)
                continue
            try:
                value = float(raw)
            except ValueError:
                raise InputError(
                    f"expected a number or empty, got {raw!r}", source=source, row=row_no, field="value"
                ) from None
            if not math.isfinite(value) or value < 0:
                raise InputError(
                    f"expected a finite non-negative number, got {raw!r}",
                    source=source,
                    row=row_no,
                    field="value",
                )
            values.append(value)
    if len(stamps) < 2:
        raise InputError("needs at least two rows to know the step", source=source)
    series = pd.Series(values, index=pd.DatetimeIndex(stamps), dtype=float)
    row_of = {ts: i + 2 for i, ts in enumerate(stamps)}
    dup = series.index.duplicated()
    if dup.any():
        ts = series.index[dup][0]
        raise InputError(f"duplicate timestamp {ts.isoformat()}", source=source, row=row_of[ts], field="timestamp")
    series = series.sort_index()
    diffs = series.index.to_series().diff().dropna()
    # The step is the most common spacing (ties: the smallest); gaps are whole multiples of it.
    counts = diffs.value_counts()
    step = min(counts.index[counts == counts.max()])
    if step <= pd.Timedelta(0):
        raise InputError("timestamps must increase", source=source, field="timestamp")
    off_grid = (diffs % step) != pd.Timedelta(0)
    if off_grid.any():
        ts = off_grid[off_grid].index[0]
        raise InputError(
            f"irregular grid: {ts.isoformat()} is not a whole number of {step} steps after the previous row",
            source=source,
            row=row_of[ts],
            field="timestamp",
        )
    full = utc_ns_index(pd.date_range(series.index[0], series.index[-1], freq=step))
    series = series.reindex(full)
    series.index.freq = pd.tseries.frequencies.to_offset(step)
    series.name = Path(path).stem
    return series


def read_events(path: str | Path) -> list[Event]:
    """Read an events CSV. Raises InputError naming the row and field on bad input."""
    source = str(path)
    try:
        handle = open(path, newline="", encoding="utf-8")  # noqa: SIM115 (closed by the with below)
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror}", source=source) from exc
    events: list[Event] = []
    # Names recur across years in real calendars (columbus_day 2016 and 2017), so
    # only the same name at the same start is a duplicate.
    seen: set[tuple[str, pd.Timestamp]] = set()
    with handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise InputError("file is empty; expected header 'start,end,kind,name'", source=source)
        header = [h.strip().lower() for h in header]
        for col in EVENTS_HEADER:
            if col not in header:
                raise InputError(
                    f"missing column; expected header 'start,end,kind,name[,expected_lift]', got {','.join(header)!r}",
                    source=source,
                    row=1,
                    field=col,
                )
        idx = {col: header.index(col) for col in header}
        for row_no, row in enumerate(reader, start=2):
            if not row or all(not cell.strip() for cell in row):
                continue
            if len(row) < len(EVENTS_HEADER):
                raise InputError("too few columns", source=source, row=row_no)
            start = _parse_ts(row[idx["start"]], source=source, row=row_no, field="start")
            end = _parse_ts(row[idx["end"]], source=source, row=row_no, field="end")
            if end <= start:
                raise InputError(
                    f"end {end.isoformat()} must be after start {start.isoformat()}",
                    source=source,
                    row=row_no,
                    field="end",
                )
            kind = row[idx["kind"]].strip()
            name = row[idx["name"]].strip()
            if not kind:
                raise InputError("must not be empty", source=source, row=row_no, field="kind")
            if not name:
                raise InputError("must not be empty", source=source, row=row_no, field="name")
            if (name, start) in seen:
                raise InputError(
                    f"duplicate event {name!r} starting {start.isoformat()}",
                    source=source,
                    row=row_no,
                    field="name",
                )
            seen.add((name, start))
            lift: float | None = None
            if "expected_lift" in idx and idx["expected_lift"] < len(row):
                raw = row[idx["expected_lift"]].strip()
                if raw:
                    try:
                        lift = float(raw)
                    except ValueError:
                        lift = math.nan
                    if not math.isfinite(lift) or lift <= 0:
                        raise InputError(
                            f"expected a positive multiplier or empty, got {raw!r}",
                            source=source,
                            row=row_no,
                            field="expected_lift",
                        )
            events.append(Event(name=name, kind=kind, start=start, end=end, expected_lift=lift))
    return events


def _iso(ts: pd.Timestamp) -> str:
    return ts.tz_convert("UTC").tz_localize(None).isoformat()


def write_series(series: pd.Series, path: str | Path) -> None:
    """Write a series in the trace format (NaN written as an empty value)."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(SERIES_HEADER)
        for ts, value in series.items():
            writer.writerow([_iso(pd.Timestamp(ts)), "" if pd.isna(value) else f"{float(value):.6g}"])


def write_events(events: Iterable[Event], path: str | Path) -> None:
    """Write events in the trace format, with the optional expected_lift column."""
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*EVENTS_HEADER, "expected_lift"])
        for event in events:
            lift = "" if event.expected_lift is None else f"{event.expected_lift:g}"
            writer.writerow([_iso(event.start), _iso(event.end), event.kind, event.name, lift])


def events_overlapping(events: Sequence[Event], start: pd.Timestamp, end: pd.Timestamp) -> list[Event]:
    """The events whose [start, end) window overlaps [start, end)."""
    return [e for e in events if e.start < end and e.end > start]
