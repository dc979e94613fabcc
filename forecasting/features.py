"""Calendar features: Fourier daily/weekly/yearly terms and event-shape regressors.

Called by the ``calendar`` model to build its design matrix. Seasonal
columns come from per-slot lookup tables cached per (step, harmonics), so a
refit over 20,000 one-minute points costs a gather, not 400,000 sines (the
yearly period is no whole number of steps: its terms are computed). Event
columns give each event *kind* a shape, split in bins whose coefficients
(log lifts) are learned from past events. At sub-daily steps a ramp-up /
plateau / decay shape:

    pre     [start - R, start)              anticipation
    ramp1-4 [start + (k-1)R/4, start + kR/4)  ramp-up, in quarters
    plat    [start + R, end)                plateau
    decay1  [end, end + R/2)                decay, first part
    decay2  [end + R/2, end + R)            decay, second part
    decay3  [end + R, end + 3R)             decay, tail

with R = clamp(duration / 4, one step, 30 minutes). At daily and coarser
steps a point stands for its whole step [ts, ts + step), so the bins are
whole steps (``DAY_BINS``):

    pre2, pre1   the second and the first step before the event  anticipation (an eve)
    day          every step the event overlaps                   the event itself
    post1, post2 the first and the second step after it          aftermath (a catch-up)

Everything is UTC.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from forecasting.base import Event
from forecasting.timeutil import stamps_ns, td_ns, ts_ns

DAY_NS = 86_400 * 10**9
WEEK_NS = 7 * DAY_NS
MONDAY_OFFSET_NS = 3 * DAY_NS  # 1970-01-01 was a Thursday: shift so that slot 0 is Monday 00:00
MAX_RAMP = pd.Timedelta(minutes=30)

YEAR_NS = 31_556_952 * 10**9  # the mean Gregorian year, 365.2425 days

BINS: tuple[str, ...] = ("pre", "ramp1", "ramp2", "ramp3", "ramp4", "plat", "decay1", "decay2", "decay3")
# Share of the plateau's log lift each bin is expected to carry: the prior shape.
NOMINAL_SHAPE = np.array([0.1, 0.3, 0.55, 0.8, 0.95, 1.0, 0.6, 0.35, 0.12])
DAY_BINS: tuple[str, ...] = ("pre2", "pre1", "day", "post1", "post2")
DAY_NOMINAL = np.array([0.05, 0.2, 1.0, 0.2, 0.05])


@dataclass(frozen=True, eq=False)
class BinSet:
    """The event bins of one step regime: their names, prior shape and the full-lift bin."""

    names: tuple[str, ...]
    nominal: np.ndarray
    plat: int  # index of the bin that carries the event's full lift

    @property
    def width(self) -> int:
        return len(self.names)


SUB_DAILY = BinSet(BINS, NOMINAL_SHAPE, BINS.index("plat"))
COARSE = BinSet(DAY_BINS, DAY_NOMINAL, DAY_BINS.index("day"))


def bin_set(step: pd.Timedelta) -> BinSet:
    """The bins events get at this step: whole steps from a day up."""
    return COARSE if td_ns(step) >= DAY_NS else SUB_DAILY


@lru_cache(maxsize=32)
def _fourier_table(period_ns: int, step_ns: int, harmonics: int) -> np.ndarray:
    slots = period_ns // step_ns
    phase = 2 * np.pi * np.arange(slots) / slots
    cols = []
    for k in range(1, harmonics + 1):
        cols.append(np.sin(k * phase))
        cols.append(np.cos(k * phase))
    table = np.column_stack(cols) if cols else np.zeros((slots, 0))
    table.setflags(write=False)
    return table


def _fourier(stamps_ns: np.ndarray, step_ns: int, period_ns: int, harmonics: int, shift_ns: int = 0) -> np.ndarray:
    if harmonics <= 0:
        return np.zeros((len(stamps_ns), 0))
    if period_ns % step_ns == 0:
        table = _fourier_table(period_ns, step_ns, harmonics)
        slot = ((stamps_ns + shift_ns) % period_ns) // step_ns
        return table[slot]
    phase = 2 * np.pi * ((stamps_ns + shift_ns) % period_ns) / period_ns
    k = np.arange(1, harmonics + 1)
    ang = phase[:, None] * k[None, :]
    out = np.empty((len(stamps_ns), 2 * harmonics))
    out[:, 0::2] = np.sin(ang)
    out[:, 1::2] = np.cos(ang)
    return out


SHARED_ROWS = 2880  # designs this short (forecast horizons, updates) are cached: every policy on a grid asks


def seasonal_design(
    index: pd.DatetimeIndex,
    step: pd.Timedelta,
    *,
    daily: int,
    weekly: int,
    day_types: int,
    day_levels: bool = False,
    yearly: int = 0,
    weekdays: bool = False,
) -> np.ndarray:
    """Intercept, daily, weekly and ``yearly`` Fourier terms and, with ``day_types`` > 0,
    a level and ``day_types`` daily harmonics again for Fridays, Saturdays and Sundays
    (each relative to Monday-Thursday), so each day type gets its own daily shape.
    With ``day_levels`` (and no day types) only those three levels: a weekend that
    starts and ends sharply at midnight is a step, which few weekly harmonics smear.
    With ``weekdays`` every day but Monday gets its own level (and shape), each relative
    to Monday: a long history shows Tuesday's rush is not Thursday's (``DAYS``).

    Up to ``SHARED_ROWS`` rows on a regular grid the matrix is cached (read-only): the
    operator's policies all forecast the same steps after the same last point."""
    stamps = stamps_ns(index)
    step_ns = td_ns(step)
    n = len(stamps)
    if 0 < n <= SHARED_ROWS and (n == 1 or bool((np.diff(stamps) == step_ns).all())):
        return _shared_seasonal(int(stamps[0]), n, step_ns, daily, weekly, day_types, day_levels, yearly,
                                weekdays)
    return _seasonal(stamps, step_ns, daily, weekly, day_types, day_levels, yearly, weekdays)


@lru_cache(maxsize=64)
def _shared_seasonal(first: int, n: int, step_ns: int, daily: int, weekly: int, day_types: int,
                     day_levels: bool, yearly: int, weekdays: bool) -> np.ndarray:
    stamps = first + step_ns * np.arange(n, dtype=np.int64)
    out = _seasonal(stamps, step_ns, daily, weekly, day_types, day_levels, yearly, weekdays)
    out.setflags(write=False)
    return out


DAY_TYPES = (4, 5, 6)  # Friday, Saturday, Sunday: own shapes once three weeks are seen
DAYS = (1, 2, 3, 4, 5, 6)  # every day but Monday (the reference): own shapes on a long history


def _seasonal(stamps: np.ndarray, step_ns: int, daily: int, weekly: int, day_types: int, day_levels: bool,
              yearly: int, weekdays: bool = False) -> np.ndarray:
    cols = [np.ones((len(stamps), 1))]
    day_terms = _fourier(stamps, step_ns, DAY_NS, daily)
    cols.append(day_terms)
    cols.append(_fourier(stamps, step_ns, WEEK_NS, weekly, MONDAY_OFFSET_NS))
    cols.append(_fourier(stamps, step_ns, YEAR_NS, yearly))
    if day_types > 0 or day_levels:
        dow = ((stamps + MONDAY_OFFSET_NS) % WEEK_NS) // DAY_NS
        shape = day_terms[:, : 2 * day_types]
        for day in DAYS if weekdays else DAY_TYPES:
            flag = (dow == day).astype(float)[:, None]
            cols.append(flag)
            if day_types > 0:
                cols.append(shape * flag)
    return np.hstack(cols)


def ramp_of(event: Event, step: pd.Timedelta) -> pd.Timedelta:
    """The ramp length R of an event."""
    return max(step, min(MAX_RAMP, (event.end - event.start) / 4))


def event_window(stamps: np.ndarray, event: Event, step_ns: int) -> tuple[int, int, np.ndarray]:
    """(i0, i1, bins): the event's shape-bin indicators over ``stamps[i0:i1]`` (one column per bin
    of ``bin_set(step)``); ``stamps`` are int64 ns on a regular grid of ``step_ns``."""
    if step_ns >= DAY_NS:
        return _coarse_window(stamps, event, step_ns)
    s, e = ts_ns(event.start), ts_ns(event.end)
    r = max(step_ns, min(td_ns(MAX_RAMP), (e - s) // 4))
    i0, i1 = np.searchsorted(stamps, [s - r, e + 3 * r])
    tt = stamps[i0:i1]
    quarter = [min(s + k * r // 4, e) for k in (1, 2, 3, 4)]
    edges = np.array([s - r, s, *quarter, e, e + r // 2, e + r, e + 3 * r])
    # A bin is [edges[j], edges[j+1]); ramp bins may be empty for short events or coarse steps.
    which = np.searchsorted(edges, tt, side="right") - 1
    bins = np.zeros((len(tt), len(BINS)))
    ok = (which >= 0) & (which < len(BINS))
    bins[np.flatnonzero(ok), which[ok]] = 1.0
    return int(i0), int(i1), bins


def _coarse_window(stamps: np.ndarray, event: Event, step_ns: int) -> tuple[int, int, np.ndarray]:
    """Whole-step bins: the steps the event overlaps, and two steps either side of them."""
    s, e = ts_ns(event.start), ts_ns(event.end)
    phase = int(stamps[0]) % step_ns if len(stamps) else 0

    def ceil(x: int) -> int:  # the first grid point at or after x
        return x + (phase - x) % step_ns

    first, after = ceil(s - step_ns + 1), ceil(e)  # first step overlapping [s, e); first step after it
    edges = np.array([first - 2 * step_ns, first - step_ns, first, after, after + step_ns, after + 2 * step_ns])
    i0, i1 = np.searchsorted(stamps, [edges[0], edges[-1]])
    which = np.searchsorted(edges, stamps[i0:i1], side="right") - 1
    bins = np.zeros((len(which), len(DAY_BINS)))
    ok = (which >= 0) & (which < len(DAY_BINS))
    bins[np.flatnonzero(ok), which[ok]] = 1.0
    return int(i0), int(i1), bins


def event_bins(index: pd.DatetimeIndex, event: Event, step: pd.Timedelta) -> np.ndarray:
    """(len(index), bins) indicator matrix of the event's shape bins (see module docstring)."""
    out = np.zeros((len(index), bin_set(step).width))
    i0, i1, bins = event_window(stamps_ns(index), event, td_ns(step))
    out[i0:i1] = bins
    return out


@dataclass(frozen=True)
class EventLayout:
    """Which event columns a fitted model has, and how to build them for any index.

    Per kind: the shape bins, plus (for kinds of day-long events) the
    plateau times ``shape_harmonics`` daily Fourier pairs, so a holiday can
    learn a different daily shape, not only a level. Per recurring event
    name (the same name on several dates, e.g. a yearly holiday): a plateau
    level and shape deviation from its kind.
    """

    kinds: tuple[str, ...]
    long_kinds: frozenset[str]
    names: tuple[str, ...]
    long_names: frozenset[str]
    shape_harmonics: int
    bins: BinSet = SUB_DAILY

    def offsets(self) -> tuple[dict[str, int], dict[str, int], int]:
        """Column offset of every kind block and name block, and the total width."""
        pos, kind_at, name_at = 0, {}, {}
        for kind in self.kinds:
            kind_at[kind] = pos
            pos += self.bins.width + (2 * self.shape_harmonics if kind in self.long_kinds else 0)
        for name in self.names:
            name_at[name] = pos
            pos += 1 + (2 * self.shape_harmonics if name in self.long_names else 0)
        return kind_at, name_at, pos

    def design(self, index: pd.DatetimeIndex, events: Sequence[Event], step: pd.Timedelta) -> np.ndarray:
        """(len(index), width) event columns; overlapping events add up."""
        kind_at, name_at, width = self.offsets()
        out = np.zeros((len(index), width))
        stamps, step_ns, k = stamps_ns(index), td_ns(step), self.shape_harmonics
        plat, nb = self.bins.plat, self.bins.width
        for event in events:
            in_kind, in_name = event.kind in kind_at, event.name in name_at
            if not (in_kind or in_name):
                continue
            i0, i1, bins = event_window(stamps, event, step_ns)
            if i0 >= i1:
                continue
            plateau = bins[:, plat : plat + 1]
            shape = None
            if k and (event.kind in self.long_kinds or event.name in self.long_names):
                shape = _fourier(stamps[i0:i1], step_ns, DAY_NS, k) * plateau
            if in_kind:
                j = kind_at[event.kind]
                out[i0:i1, j : j + nb] += bins
                if event.kind in self.long_kinds and shape is not None:
                    out[i0:i1, j + nb : j + nb + 2 * k] += shape
            if in_name:
                j = name_at[event.name]
                out[i0:i1, j : j + 1] += plateau
                if event.name in self.long_names and shape is not None:
                    out[i0:i1, j + 1 : j + 1 + 2 * k] += shape
        return out


def plan_layout(
    events: Sequence[Event], index: pd.DatetimeIndex, observed: np.ndarray, step: pd.Timedelta, shape_harmonics: int
) -> EventLayout:
    """The event columns worth fitting on ``index``: kinds with events on observed points,
    and names that touch observed points and recur in ``events`` (so they will be seen again)."""
    stamps, step_ns = stamps_ns(index), td_ns(step)
    obs_count = np.concatenate([[0], np.cumsum(observed)])
    kinds: dict[str, list[float]] = {}
    names: dict[str, list[float]] = {}
    for event in events:
        i0, i1, _ = event_window(stamps, event, step_ns)
        if obs_count[i1] - obs_count[i0] == 0:
            continue
        hours = (event.end - event.start) / pd.Timedelta(hours=1)
        kinds.setdefault(event.kind, []).append(hours)
        names.setdefault(event.name, []).append(hours)
    counts: dict[str, int] = {}
    for event in events:
        counts[event.name] = counts.get(event.name, 0) + 1
    recurring = sorted(name for name in names if counts[name] > 1)
    day_long = 12.0 if step < pd.Timedelta(hours=6) else float("inf")
    return EventLayout(
        kinds=tuple(sorted(kinds)),
        long_kinds=frozenset(k for k, h in kinds.items() if float(np.median(h)) >= day_long),
        names=tuple(recurring),
        long_names=frozenset(n for n in recurring if float(np.median(names[n])) >= day_long),
        shape_harmonics=shape_harmonics,
        bins=bin_set(step),
    )


def nominal_presence(index: pd.DatetimeIndex, events: Sequence[Event], step: pd.Timedelta) -> np.ndarray:
    """Per point, the largest nominal shape weight of any event touching it (0 outside events)."""
    out = np.zeros(len(index))
    for event in events:
        i0, i1, bins = event_window(stamps_ns(index), event, td_ns(step))
        out[i0:i1] = np.maximum(out[i0:i1], bins @ bin_set(step).nominal)
    return out


def relevant(
    events: Sequence[Event], start: pd.Timestamp, end: pd.Timestamp, step: pd.Timedelta | None = None
) -> list[Event]:
    """Events whose shape (including ramp and decay margins, or the steps either side) can touch [start, end]."""
    margin = max(4 * td_ns(MAX_RAMP), 0 if step is None else 3 * td_ns(step))
    lo, hi = ts_ns(start) - margin, ts_ns(end) + margin
    return [e for e in events if ts_ns(e.start) <= hi and ts_ns(e.end) >= lo]
