"""bench-forecast-closure: the calendar model's week after a closure, on real traces it was not tuned on.

A closure seen once (a shop shut from Christmas to New Year, no event marking
the days between the bank holidays) must not pull the forecast down nor keep
the band wide on the ordinary days after it (issue 15). No trace in ``data/``
has one, so this benchmark makes one: per trace, the ten days ending two days
before the last 14 are set to zero (every hour, so no slot of the week is
"closed"), and the calendar model forecasts each of the next seven days a day
ahead, fitted on the history up to its midnight, once on the trace as it is
("plain") and once with the closure. It prints the closure run's MAE of the
median over the plain run's, each run's share of actuals at or below q95, and
each run's q95 summed over the week over the actual demand (the band's cost).

Run from the repository root: ``python benchmarks/bench_forecast_closure.py``
(about a minute). The rule it measures is ``calendar_kernels.closure_days``.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from controller.traceio import read_events, read_series  # noqa: E402
from forecasting.base import Event  # noqa: E402
from forecasting.models.calendar import Calendar  # noqa: E402

TRACES = ("metro_traffic_hourly", "victoria_electricity_halfhourly", "bank_calls_5min", "nyc_departures_hourly")
DAY = pd.Timedelta(days=1)


def week_after(series: pd.Series, events: list[Event], t0: pd.Timestamp) -> tuple[float, float, float]:
    """(MAE of the median, share at or below q95, q95 sum / actual sum) of 7 day-ahead forecasts from t0."""
    steps = int(DAY / (series.index[1] - series.index[0]))
    err, below, upper, total = 0.0, [], 0.0, 0.0
    for k in range(7):
        origin = t0 + k * DAY
        fc = Calendar().fit(series[series.index < origin], events).predict(steps, events)
        actual = series.reindex(fc.index).to_numpy()
        q50, q95 = np.asarray(fc.quantiles[0.5]), np.asarray(fc.quantiles[0.95])
        ok = np.isfinite(actual)
        err += float(np.abs(actual - q50)[ok].sum())
        below.append(float((actual <= q95)[ok].mean()))
        upper += float(q95[ok].sum())
        total += float(actual[ok].sum())
    return err, float(np.mean(below)), upper / total


def main() -> None:
    warnings.simplefilter("ignore")
    table = Table(title="calendar, day-ahead over the 7 days after a 10-day closure (ends 2 days before them)")
    for col in ("trace", "MAE closure / plain", "below q95 plain", "below q95 closure", "q95 / actual plain",
                "q95 / actual closure"):
        table.add_column(col, justify="left" if col == "trace" else "right")
    for stem in TRACES:
        series = read_series(REPO / "data" / f"{stem}.csv")
        events = read_events(REPO / "data" / f"{stem}_events.csv")
        t0 = series.index[-1].normalize() - 14 * DAY
        shut = series.copy()
        shut[(shut.index >= t0 - 12 * DAY) & (shut.index < t0 - 2 * DAY)] = 0.0
        plain, closed = week_after(series, events, t0), week_after(shut, events, t0)
        table.add_row(stem, f"{closed[0] / plain[0]:.3f}x", f"{plain[1]:.3f}", f"{closed[1]:.3f}",
                      f"{plain[2]:.3f}", f"{closed[2]:.3f}")
    Console(width=150).print(table)


if __name__ == "__main__":
    main()
