"""The calendar fit's design matrix, built once for every policy that shares it (issue 14).

Policies that forecast on the same grid (first stamp, length, step), with the
same seasonal terms, the same relevant events and the same observed points
(no gaps or closed hours of their own) have the same design matrix: only
their demand differs. ``fit_design`` returns its observed rows and their Gram
matrix (the left side of the normal equations) from a small bounded cache,
so a cycle that fits N such policies builds and multiplies it once; each fit
still solves its own right-hand side, with the same arrays and the same
``np.linalg.solve``, so its forecast is bit-identical to a fit that built
them itself (``tests/forecasting/test_shared_design.py``). A factorisation
(Cholesky) shared as well would save ~0.1 ms more per fit and change the last
bits, so the solve stays per fit.

On a long history the regression is recency-weighted (``recency_weights``):
the weights depend only on the stamps (each point's age from the last one)
and the events (rows in their windows keep a higher floor), so they are part
of the design, and the cached Gram matrix is the weighted
X'WX. Without weights (``half_life`` None) the design and every forecast are
exactly as before.

The operator's fits on one grid fall in the same cycle (the grid moves once
per step; the fit budget spreads fits over the cycles of a step and the
next), and a fit never returns to an older grid, so what the cache must hold
is one design per event calendar on the current grid. ``MAX_BYTES`` bounds
it (an entry is the observed design and its Gram matrix, 6.3 MB at 14 days
of 1-minute points and the casino calendar). A new design evicts designs
of older grids (they end before it: an earlier step) but never one of the
current step (whatever its history length): when
more calendars interleave in a cycle than fit, the newcomer is built and not
kept, so the calendars that fit keep their hits instead of every fit
evicting the next one's design (an LRU bounded at K entries shares nothing
once K + 1 calendars interleave: ``benchmarks/bench_design_cache.py``).
Entries are read-only. ``disabled()`` turns the cache off (a test's
baseline). Called by ``forecasting.models.calendar_fit.fit_prepared``.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.base import Event
from forecasting.features import EventLayout, plan_layout
from forecasting.models.calendar_state import Terms, seasonal
from forecasting.timeutil import stamps_ns, td_ns, ts_ns

# Two designs at 14 days of 1-minute points (6.3 MB each): the current grid's for two event calendars;
# more at shorter histories. 16 KB a policy at 1,000 policies.
MAX_BYTES = 16 * 2**20


@dataclass(frozen=True, eq=False)
class FitDesign:
    """The design of one (terms, grid, events, observed points): what every fit over it shares."""

    width: int  # seasonal columns (the event columns follow)
    layout: EventLayout  # the event columns
    observed: np.ndarray  # the design's observed rows, (observed points, columns), read-only
    gram: np.ndarray  # observed.T @ W @ observed (W: ``weights``, else the identity), read-only
    weights: np.ndarray | None = None  # recency weight of each observed row (None: unweighted)

    @property
    def columns(self) -> int:
        return int(self.observed.shape[1])

    @property
    def nbytes(self) -> int:
        return int(self.observed.nbytes + self.gram.nbytes + (0 if self.weights is None else self.weights.nbytes))


class DesignCache:
    """``FitDesign`` by key within ``max_bytes``; older grids make room, the current grid's stay. Counts."""

    def __init__(self, max_bytes: int = MAX_BYTES) -> None:
        self.max_bytes = max_bytes
        self.enabled = True
        self.built = 0  # designs computed (a miss, or every call while disabled)
        self.hits = 0
        self.unkept = 0  # built and not kept: the designs of the current grids fill the bytes
        self._entries: OrderedDict[tuple[object, ...], tuple[int, FitDesign]] = OrderedDict()  # (grid end, design)
        self._bytes = 0
        self._lock = threading.Lock()  # fits may run on several threads (the local run, tests)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def get(self, key: tuple[object, ...], build: Callable[[], FitDesign], end: int = 0) -> FitDesign:
        """The design of ``key`` (``end``: its grid's last stamp, ns), built on a miss."""
        if not self.enabled:
            self.built += 1
            return build()
        with self._lock:
            found = self._entries.get(key)
            if found is not None:
                self._entries.move_to_end(key)
                self.hits += 1
                return found[1]
        design = build()  # outside the lock: a fit on another thread need not wait for this one
        with self._lock:
            self.built += 1
            if key in self._entries:  # another thread built it meanwhile
                return design
            size = design.nbytes
            for old in [k for k, (e, _) in self._entries.items() if e < end]:
                if self._bytes + size <= self.max_bytes:
                    break
                self._bytes -= self._entries.pop(old)[1].nbytes  # an older grid's: no fit goes back to it
            if self._bytes + size <= self.max_bytes:
                self._entries[key] = (end, design)
                self._bytes += size
            else:
                self.unkept += 1
        return design

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0
            self.built = self.hits = self.unkept = 0


CACHE = DesignCache()


@contextmanager
def disabled() -> Iterator[None]:
    """Every fit inside builds its own design (the baseline the shared one must equal)."""
    was, CACHE.enabled = CACHE.enabled, False
    try:
        yield
    finally:
        CACHE.enabled = was


def seasonal_width(terms: Terms, idx: pd.DatetimeIndex, step: pd.Timedelta) -> int:
    """Columns of the seasonal design of ``terms`` (from one row: its width does not depend on the rows)."""
    return int(seasonal(terms, idx[:1], step).shape[1])


def recency_weights(
    stamps: np.ndarray, half_life: pd.Timedelta, floor: float,
    events: np.ndarray | None = None, event_floor: float = 1.0,
) -> np.ndarray:
    """Weight of each point by its age from the last stamp: halves every ``half_life``, at least ``floor``;
    at least ``event_floor`` where ``events`` (a mask) marks a point inside an event's window."""
    age = (stamps[-1] - stamps).astype(float) / td_ns(half_life)
    w = np.maximum(floor, np.exp2(-age))
    if events is not None:
        w = np.where(events, np.maximum(w, event_floor), w)
    return np.asarray(w)


def fit_design(
    terms: Terms, idx: pd.DatetimeIndex, step: pd.Timedelta, events: Sequence[Event], observed: np.ndarray,
    shape_harmonics: int, recency: tuple[pd.Timedelta, float, float] | None = None,
) -> FitDesign:
    """The (shared) design of a fit over ``idx`` with these relevant ``events`` and ``observed`` points;
    ``recency`` (half-life, floor, event rows' floor) weighs the rows by age (``recency_weights``; a row
    with a non-zero event column is inside an event's window), None leaves them equal."""
    mask = np.asarray(observed, dtype=bool)
    key = (terms, ts_ns(idx[0]), len(idx), td_ns(step), tuple(events), shape_harmonics,
           None if recency is None else (td_ns(recency[0]), *recency[1:]),
           hashlib.blake2b(np.packbits(mask).tobytes(), digest_size=16).digest())

    def build() -> FitDesign:
        S = seasonal(terms, idx, step)
        layout = plan_layout(events, idx, mask, step, shape_harmonics)
        E = layout.design(idx, events, step)
        Xo = np.hstack([S, E])[mask]
        weights = None
        if recency is None:
            gram = Xo.T @ Xo
        else:
            half_life, floor, event_floor = recency
            inside = (E != 0).any(axis=1) if E.shape[1] else None
            weights = recency_weights(stamps_ns(idx), half_life, floor, inside, event_floor)[mask]
            gram = Xo.T @ (Xo * weights[:, None])
            weights.setflags(write=False)
        Xo.setflags(write=False)
        gram.setflags(write=False)
        return FitDesign(width=int(S.shape[1]), layout=layout, observed=Xo, gram=gram, weights=weights)

    return CACHE.get(key, build, end=ts_ns(idx[-1]))


__all__ = [
    "CACHE", "MAX_BYTES", "DesignCache", "FitDesign", "disabled", "fit_design", "recency_weights", "seasonal_width",
]
