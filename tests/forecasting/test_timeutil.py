"""One time unit: stamps enter as UTC nanoseconds, and kernels take integers only from timeutil.

pandas 3 parses ISO text at second or microsecond resolution; ``as_unit`` makes
those resolutions here on any pandas (2.2 .. 3.x), so these tests fail on code
that mixes ``DatetimeIndex.asi8`` with ``Timestamp.value`` in both venvs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting.base import REQUIRED_QUANTILES, Event, Forecast
from forecasting.series import prepare_history
from forecasting.timeutil import stamps_ns, td_ns, ts_ns, utc_ns, utc_ns_index
from tests.conftest import REPO

START = pd.Timestamp("2026-03-02T00:00:00Z")
PACKAGES = ("casino", "controller", "forecasting", "cli", "dashboards")


@pytest.mark.parametrize("unit", ["s", "ms", "us", "ns"])
def test_integers_are_nanoseconds_whatever_the_resolution(unit: str) -> None:
    index = pd.date_range(START, periods=3, freq="1h").as_unit(unit)
    assert stamps_ns(index).tolist() == [START.value + k * 3_600 * 10**9 for k in range(3)]
    assert ts_ns(index[1]) == START.value + 3_600 * 10**9
    assert td_ns(pd.Timedelta(hours=1).as_unit(unit)) == 3_600 * 10**9
    out = utc_ns_index(index)
    assert out.unit == "ns" and out.freq == index.freq and str(out.tz) == "UTC"


def test_naive_and_other_zones_become_utc() -> None:
    assert utc_ns("2026-03-02T01:00:00") == pd.Timestamp("2026-03-02T01:00:00Z")
    assert utc_ns(pd.Timestamp("2026-03-02T02:00:00+01:00")) == pd.Timestamp("2026-03-02T01:00:00Z")
    assert utc_ns("2026-03-02T01:00:00").unit == "ns"
    assert str(utc_ns_index(pd.DatetimeIndex(["2026-03-02T01:00:00"])).tz) == "UTC"
    with pytest.raises(ValueError, match="timestamp"):
        utc_ns(pd.NaT)  # type: ignore[arg-type]


def test_series_forecasts_and_events_enter_at_nanoseconds() -> None:
    index = pd.date_range(START, periods=48, freq="1h").as_unit("s")
    history = prepare_history(pd.Series(np.arange(48.0), index=index))
    assert history.index.unit == "ns"
    fc = Forecast(index=index[:2], mean=np.ones(2), quantiles={q: np.ones(2) for q in REQUIRED_QUANTILES})
    assert fc.index.unit == "ns" and fc.index.freq is not None
    event = Event("cup", "tournament", START.as_unit("s"), (START + pd.Timedelta(hours=1)).as_unit("us"))
    assert event.start.unit == event.end.unit == "ns"
    assert Event("x", "k", "2026-03-02T00:00:00", "2026-03-02T01:00:00").start == START  # type: ignore[arg-type]


def test_no_raw_asi8_outside_timeutil() -> None:
    """``DatetimeIndex.asi8`` is in the index's own unit: every kernel takes ``stamps_ns`` instead."""
    offenders = []
    for package in PACKAGES:
        for path in sorted((REPO / package).rglob("*.py")):
            if path == REPO / "forecasting" / "timeutil.py":
                continue
            for no, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
                code = line.split("#", 1)[0]
                if re.search(r"\.asi8\b|\.view\(\s*['\"]i8|astype\(\s*['\"]?(np\.)?int64['\"]?\s*\)\s*//", code):
                    offenders.append(f"{Path(path).relative_to(REPO)}:{no}: {line.strip()}")
    assert not offenders, "\n".join(offenders)
