"""Each policy's demand history, read incrementally: the window last read, and only its tail each cycle.

``PolicyDemand.current`` (``controller.operator.policy_ports``) needs, every
cycle, what ``source.history(end - forecast.history, end, step)`` returns:
14 days of 1-minute points by default (20,160), for every policy. Read in
full every 15 s that was most of a steady cycle's time (issue 14) and, on
Prometheus, two range queries of up to 11,000 points per policy per cycle
(``controller.sources.prometheus`` chunks at its per-series limit). A
``HistoryWindow`` keeps the series it last read (its values; the grid's
``DatetimeIndex`` is shared by every window on the same grid) and asks the
source only for the steps after its end, plus ``overlap_steps`` re-read,
shifts, merges and trims to the window's length. The result is, point for
point, what a full read would have returned, so long as the source does
not change points older than the overlap; a full read happens instead:

* the first time, and when the basis changes (``Basis``: the source
  object, the demand metric, the step, the history length; the rest of a
  spec change does not move the series, so the generation is not in it);
* when the end moved back, or forward by the whole window or more (a gap:
  the tail would be all of it);
* once per ``refresh_every`` (an hour, the refit period) at each window's
  own phase of the hour (a hash of the uid), so points revised or
  backfilled further back than the overlap are seen by the next refits,
  and the full reads of a cycle stay a few per hundred policies;
* when the source answered a read on another grid than the one asked for
  (the window cannot merge it; nothing is kept, the next cycle reads all).

A failed read raises as it did before and leaves the window as it was (its
next read covers what the failure missed). ``DemandHistories`` holds the
windows by uid for the ``Reconciler``, which drops those of policies gone
(``forget_except``, after a complete pass). Memory: one float per point per
policy (160 KB for 14 days at 1 m), the price of not re-reading them.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from controller.sources.base import DemandSource
from forecasting.timeutil import stamps_ns, td_ns, ts_ns

REFRESH_EVERY = timedelta(hours=1)  # a full re-read per window per hour: backfilled data reaches the refits
# Re-read at least this many steps, and at least OVERLAP_SPAN, at the tail of every read: the newest points
# of a range query are the ones still moving (a scrape not yet ingested when the query ran, remote-write or
# federation delay, a rate() over a window whose last sample arrives late), so a read that trusted its last
# points as final would keep a low first value of every step for good; anything older counts as settled
# until the hourly full read.
OVERLAP_STEPS = 3
OVERLAP_SPAN = timedelta(minutes=5)


def overlap_steps(step: timedelta) -> int:
    """Steps re-read at the tail of each read: at least OVERLAP_STEPS, covering at least OVERLAP_SPAN."""
    return max(OVERLAP_STEPS, math.ceil(OVERLAP_SPAN / step))


@dataclass(frozen=True)
class Basis:
    """What a window is a window of: a change of any of these reads it all again."""

    source: object  # the DemandSource, by identity (a factory that builds a new one means new data)
    metric: object  # the spec's demand metric (a shared source could answer for several)
    step: timedelta
    length: timedelta  # forecast.history

    def same(self, other: Basis | None) -> bool:
        return (other is not None and other.source is self.source and other.metric == self.metric
                and other.step == self.step and other.length == self.length)


@functools.lru_cache(maxsize=64)
def _grid(start_ns: int, step_ns: int, n: int, tz: str) -> pd.DatetimeIndex:
    """The grid of ``n`` stamps from ``start_ns`` at ``step_ns`` (freq set): one object for every window on it."""
    return pd.date_range(pd.Timestamp(start_ns, unit="ns", tz=tz), periods=n, freq=pd.Timedelta(step_ns, unit="ns"))


class HistoryWindow:
    """One policy's history window: what its source returned, kept to read only the tail next time."""

    def __init__(self, phase: timedelta = timedelta(0), refresh_every: timedelta = REFRESH_EVERY) -> None:
        self.phase_ns, self.refresh_ns = td_ns(phase), td_ns(refresh_every)
        self.basis: Basis | None = None  # None: nothing kept, the next read is a full one
        self.series: pd.Series | None = None
        self._values = np.empty(0)
        self._start_ns = self._step_ns = self._end_ns = 0
        self._tz = "UTC"
        self._full_at_ns = 0
        self.known = 0  # non-NaN points in ``series``
        self.full_reads = self.tail_reads = 0

    def read(self, source: DemandSource, basis: Basis, end: datetime, now: datetime) -> pd.Series:
        """What ``source.history(end - basis.length, end, basis.step)`` returns, reading only the tail when
        the kept window allows (see the module docstring); a failure raises and keeps the window."""
        end_ns, now_ns = ts_ns(end), ts_ns(now)
        shift = self._shift(basis, end_ns, now_ns)
        if shift is None:
            return self._full(source, basis, end, end_ns, now_ns)
        n, step_ns = len(self._values), self._step_ns
        keep = n - shift - overlap_steps(basis.step)  # points kept from the window; the rest re-read
        start_ns = self._start_ns + shift * step_ns
        tail_ns = start_ns + keep * step_ns
        got = source.history(pd.Timestamp(tail_ns, unit="ns", tz=self._tz).to_pydatetime(), end, basis.step)
        values = self._on_grid(got, tail_ns, step_ns, n - keep)
        if values is None:  # answered on another grid: nothing to merge with
            return self._full(source, basis, end, end_ns, now_ns)
        self.tail_reads += 1
        if shift == 0 and np.array_equal(values, self._values[keep:], equal_nan=True):
            assert self.series is not None
            return self.series  # nothing moved: the same series (the forecast's cache sees the same points)
        merged = np.empty(n)
        merged[:keep] = self._values[shift:shift + keep]
        merged[keep:] = values
        self._keep(merged, start_ns, end_ns)
        assert self.series is not None
        return self.series

    def _shift(self, basis: Basis, end_ns: int, now_ns: int) -> int | None:
        """Steps the window moves to end at ``end_ns``; None when it must be read in full."""
        if not basis.same(self.basis) or self._step_ns == 0:
            return None
        moved = end_ns - self._end_ns
        if moved < 0 or moved % self._step_ns:
            return None  # the end went back (or off the grid)
        shift = moved // self._step_ns
        if len(self._values) - shift - overlap_steps(basis.step) <= 0:
            return None  # a gap of the whole window: the tail would be all of it
        if (now_ns + self.phase_ns) // self.refresh_ns != (self._full_at_ns + self.phase_ns) // self.refresh_ns:
            return None  # this window's hourly full read (revised or backfilled points)
        return int(shift)

    def _full(self, source: DemandSource, basis: Basis, end: datetime, end_ns: int, now_ns: int) -> pd.Series:
        got = source.history(end - basis.length, end, basis.step)
        self.full_reads += 1
        self.basis, self.series, self._values, self.known = None, None, np.empty(0), 0
        index = got.index
        step_ns = td_ns(basis.step)
        if not isinstance(index, pd.DatetimeIndex) or index.tz is None or len(index) == 0:
            return got  # nothing a tail could extend: read in full again next time
        stamps = stamps_ns(index)
        if not end_ns - step_ns <= stamps[-1] < end_ns or not np.array_equal(np.diff(stamps),
                                                                             np.full(len(stamps) - 1, step_ns)):
            return got  # not the grid [start, end) at the step: nothing to shift
        self.basis, self._step_ns, self._tz, self._full_at_ns = basis, step_ns, str(index.tz), now_ns
        self._keep(np.array(got.to_numpy(dtype=float), copy=True), int(stamps[0]), end_ns)
        assert self.series is not None
        return self.series

    def _keep(self, values: np.ndarray, start_ns: int, end_ns: int) -> None:
        """Keep ``values`` (owned: never changed in place, a series handed out stays as it was)."""
        self._values, self._start_ns, self._end_ns = values, start_ns, end_ns
        self.series = pd.Series(values, index=_grid(start_ns, self._step_ns, len(values), self._tz), copy=False)
        self.known = int(np.count_nonzero(~np.isnan(values)))

    @staticmethod
    def _on_grid(got: pd.Series, first_ns: int, step_ns: int, n: int) -> np.ndarray | None:
        """The tail's values when it is exactly the ``n`` points from ``first_ns`` at ``step_ns``, else None."""
        index = got.index
        if not isinstance(index, pd.DatetimeIndex) or index.tz is None or len(index) != n:
            return None
        stamps = stamps_ns(index)
        if stamps[0] != first_ns or not np.array_equal(np.diff(stamps), np.full(n - 1, step_ns)):
            return None
        return np.array(got.to_numpy(dtype=float), copy=True)


def known_points(history: pd.Series | None, window: HistoryWindow | None = None) -> int:
    """Non-NaN points of ``history`` (the window's count when it is the window's series)."""
    if history is None:
        return 0
    if window is not None and history is window.series:
        return window.known
    return int(np.count_nonzero(~np.isnan(history.to_numpy(dtype=float))))


class DemandHistories:
    """The ``HistoryWindow`` of each policy, by uid; windows of policies gone are dropped."""

    def __init__(self, refresh_every: timedelta = REFRESH_EVERY) -> None:
        self.refresh_every = refresh_every
        self._windows: dict[str, HistoryWindow] = {}

    def window(self, uid: str) -> HistoryWindow | None:
        """The policy's window (made on first use, its hourly phase from the uid); None without a uid."""
        if not uid:
            return None
        found = self._windows.get(uid)
        if found is None:
            phase = self.refresh_every * (zlib.crc32(uid.encode()) / 2**32)  # spread over the hour, stable
            found = self._windows[uid] = HistoryWindow(phase, self.refresh_every)
        return found

    def forget_except(self, uids: set[str]) -> None:
        """Drop the windows of policies not in ``uids``."""
        for uid in set(self._windows) - uids:
            del self._windows[uid]

    def __len__(self) -> int:
        return len(self._windows)

    @property
    def reads(self) -> tuple[int, int]:
        """(full reads, tail reads) over the windows kept."""
        return (sum(w.full_reads for w in self._windows.values()), sum(w.tail_reads for w in self._windows.values()))


__all__ = ["OVERLAP_SPAN", "OVERLAP_STEPS", "REFRESH_EVERY", "Basis", "DemandHistories", "HistoryWindow",
           "known_points", "overlap_steps"]
