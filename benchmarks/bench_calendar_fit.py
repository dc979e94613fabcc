"""Calendar fit time per trace (issue 15: out-of-sample calibration must keep fits cheap).

Times ``Calendar().fit`` on each issue-15 trace's history before its 14-day test window (the
design cache cleared before each fit, so every fit builds its design: the operator's worst case),
``--repeats`` times, and prints the minimum and median per trace. Run it on two checkouts to compare
(``PYTHONPATH=<other checkout> python benchmarks/bench_calendar_fit.py``): the table names the
checkout it imported. Wall times are from a shared 2-core machine: read ratios, not absolutes;
``OPENBLAS_NUM_THREADS=1`` keeps other jobs' load from inflating the small solves.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

import forecasting
from controller.traceio import read_events, read_series
from forecasting.models import shared_design
from forecasting.models.calendar import Calendar
from forecasting.series import DAY

DATA = Path(__file__).resolve().parent.parent / "data"
TRACES = ("metro_traffic_hourly", "victoria_electricity_halfhourly", "bank_calls_5min", "nyc_departures_hourly")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    table = Table(title=f"calendar fit ms ({Path(forecasting.__file__).parent.parent})")
    for col in ("trace", "points", "min ms", "median ms"):
        table.add_column(col)
    for name in TRACES:
        series, events = read_series(DATA / f"{name}.csv"), read_events(DATA / f"{name}_events.csv")
        step = series.index[1] - series.index[0]
        hist = series.iloc[: -14 * int(DAY / step)]
        times = []
        for _ in range(args.repeats):
            shared_design.CACHE.clear()
            t0 = time.perf_counter()
            Calendar().fit(hist, events)
            times.append((time.perf_counter() - t0) * 1e3)
        table.add_row(name, str(len(hist)), f"{min(times):.0f}", f"{statistics.median(times):.0f}")
    Console().print(table)


if __name__ == "__main__":
    main()
