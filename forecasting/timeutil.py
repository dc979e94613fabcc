"""One time unit for every integer kernel: nanoseconds since the epoch, UTC.

pandas 3 keeps the resolution a timestamp was parsed or built at: a
``DatetimeIndex`` read from ISO strings is microsecond-based, so its
``asi8`` is in microseconds, while ``Timestamp.value`` and
``Timedelta.value`` are always nanoseconds. Comparing the two silently
shifts every stamp by a factor of 1,000 (a forecast that "does not cover"
now, an event window that matches nothing). The rule (a test over the
packages, ``tests/forecasting/test_timeutil.py``, finds any raw ``.asi8``):

* where a series, a forecast or an event enters the system, its stamps are
  made tz-aware UTC at nanosecond resolution (``utc_ns_index``,
  ``utc_ns``): ``prepare_history``, ``Forecast``, ``Event``, the trace reader;
* an integer kernel (``np.searchsorted`` over stamps, modular slot
  arithmetic) takes its integers only from ``stamps_ns``, ``ts_ns`` and
  ``td_ns`` below, never from a raw ``.asi8`` or ``.value``.

Pure helpers, called by ``forecasting`` and ``controller``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd


def utc_ns(ts: datetime | str | pd.Timestamp) -> pd.Timestamp:
    """``ts`` as a tz-aware UTC Timestamp at nanosecond resolution (a naive one is read as UTC)."""
    out = pd.Timestamp(ts)
    if out is pd.NaT:
        raise ValueError("timestamp: expected a time, got NaT")
    out = out.tz_localize("UTC") if out.tzinfo is None else out.tz_convert("UTC")
    return out.as_unit("ns")


def utc_ns_index(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """``index`` as tz-aware UTC at nanosecond resolution (naive is read as UTC); its freq is kept."""
    out = index.tz_localize("UTC") if index.tz is None else index
    if str(out.tz) != "UTC":
        out = out.tz_convert("UTC")
    if out.unit != "ns":
        freq = out.freq
        out = out.as_unit("ns")
        if freq is not None and out.freq is None:
            out = pd.DatetimeIndex(out, freq=freq)
    return out


def stamps_ns(index: pd.DatetimeIndex) -> np.ndarray:
    """int64 nanoseconds since the epoch of every stamp, whatever the index's resolution."""
    if index.unit == "ns":
        return index.asi8
    return index.as_unit("ns").asi8


def ts_ns(ts: datetime | pd.Timestamp) -> int:
    """Nanoseconds since the epoch of one time (a naive one is read as UTC)."""
    if isinstance(ts, pd.Timestamp):
        return int(ts.value)  # always nanoseconds, whatever ts.unit is
    return int(pd.Timestamp(ts).value)


def td_ns(td: timedelta | pd.Timedelta) -> int:
    """Nanoseconds of one duration."""
    return int(pd.Timedelta(td).value)  # always nanoseconds, whatever the unit is
