"""Numeric kernels of the calendar model: free functions over arrays, no model state.

Called by ``forecasting.models.calendar`` (fit, update, predict). Stamps are
int64 nanoseconds since the epoch (``forecasting.timeutil``); weeks start on
Monday 00:00 UTC (the epoch was a Thursday, hence the shift).

* ``log_offset``: the constant added before the log transform. It scales with
  the *positive* values, so a series that is zero more than half the time
  (a call centre closed nights and weekends) does not get a near-zero offset,
  under which log(0 + offset) sits ten log units below the open hours, the
  Fourier terms ring around every opening and the upper quantiles explode.
* ``week_slots`` / ``zero_slots``: slots of the week in which every observed
  value was exactly zero (closed hours). The calendar fit and the residual
  filter leave them out and the forecast there is zero, instead of a log
  regression asked to fit a step from "closed" to "open".
"""

from __future__ import annotations

import numpy as np

WEEK_NS = 7 * 86_400 * 10**9
MONDAY_NS = 4 * 86_400 * 10**9  # 1970-01-05 (a Monday) minus the epoch (a Thursday)
MIN_ZERO_WEEKS = 2  # a slot is "closed" once it was zero in at least two weeks (and never open)


def log_offset(values: np.ndarray) -> float:
    """The offset c of log(y + c): 1 % of the median positive value (1e-3 when none is positive).

    For a series with no zeros this is 1 % of its median, as before; zeros do not drag it down."""
    finite = values[np.isfinite(values)]
    positive = finite[finite > 0]
    if not positive.size:
        return 1e-3
    return max(1e-9, 0.01 * float(np.median(positive)))


def week_slots(stamps: np.ndarray, step_ns: int) -> np.ndarray | None:
    """Slot of the week (0 .. steps per week - 1) of each stamp; None when steps do not divide a week."""
    if step_ns <= 0 or WEEK_NS % step_ns:
        return None
    return ((stamps - MONDAY_NS) % WEEK_NS) // step_ns


def zero_slots(stamps: np.ndarray, values: np.ndarray, step_ns: int) -> np.ndarray:
    """Sorted slots of the week where every observed value is zero, seen in >= ``MIN_ZERO_WEEKS`` weeks."""
    slots = week_slots(stamps, step_ns)
    if slots is None:
        return np.zeros(0, dtype=np.int64)
    ok = np.isfinite(values)
    size = WEEK_NS // step_ns
    seen = np.bincount(slots[ok], minlength=size)
    nonzero = np.bincount(slots[ok & (values != 0)], minlength=size)
    return np.flatnonzero((seen >= MIN_ZERO_WEEKS) & (nonzero == 0)).astype(np.int64)


def in_zero_slots(stamps: np.ndarray, step_ns: int, closed: np.ndarray) -> np.ndarray:
    """Boolean mask: which stamps fall in one of the ``closed`` slots."""
    if not closed.size:
        return np.zeros(len(stamps), dtype=bool)
    slots = week_slots(stamps, step_ns)
    if slots is None:
        return np.zeros(len(stamps), dtype=bool)
    return np.isin(slots, closed)


CLIP_MADS = 6.0  # residuals beyond 6 robust sd (an outage's log(0 + c)) are clipped for the dynamics


def robust_clip(resid: np.ndarray, mads: float = CLIP_MADS) -> np.ndarray:
    """``resid`` clipped to median +- ``mads`` robust sd (1.4826 MAD); NaN stays NaN.

    A day of zeros in an open service (an outage) is a run of residuals ~5 log units low: left
    in, it makes the residual look like a near-random walk (AR coefficient ~1) and its variance
    sets every later interval ten times too wide. Clipped, it weighs as a large but bounded miss."""
    finite = resid[np.isfinite(resid)]
    if finite.size < 10:
        return resid
    centre = float(np.median(finite))
    spread = 1.4826 * float(np.median(np.abs(finite - centre)))
    if spread <= 0:
        return resid
    return np.clip(resid, centre - mads * spread, centre + mads * spread)


HUBER_K = 4.0  # only gross misses (beyond 4 robust sd) lose weight: ordinary traces fit as before


def huber_weights(resid: np.ndarray, k: float = HUBER_K) -> np.ndarray | None:
    """Huber IRLS weights min(1, k s / |r|) with s the robust sd; None when no residual exceeds k s.

    Least squares in log space is dragged far down by zeros that are not closed hours (an
    outage day, 20 % dropped samples: log(0 + c) is ~5 log units below the level); with these
    weights they pull like points k robust sd away, no further."""
    centre = float(np.median(resid))
    spread = 1.4826 * float(np.median(np.abs(resid - centre)))
    if spread <= 0:
        return None
    dist = np.abs(resid - centre) / (k * spread)
    if not (dist > 1).any():
        return None
    return np.minimum(1.0, 1.0 / np.maximum(dist, 1e-12))
