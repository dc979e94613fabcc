"""What the calendar model measures on its own residuals, and its lean update input.

Called by ``calendar_fit`` after each fit (per-kind lift and shape spreads,
which size the event intervals, and the pooling of rare kinds) and by
``calendar_predict`` on each update (``continuation``). Pure numpy/pandas; stamps are int64 nanoseconds
(``forecasting.timeutil``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting.base import Event
from forecasting.features import EventLayout, event_window
from forecasting.series import future_index
from forecasting.timeutil import stamps_ns, td_ns, ts_ns, utc_ns_index


def continuation(points: pd.Series, last: pd.Timestamp, step: pd.Timedelta) -> pd.Series | None:
    """The points after ``last`` on its grid, with NaN for missing steps (None if there are none).
    A lean version of ``extend_history`` for the per-cycle update path."""
    if not isinstance(points, pd.Series) or not isinstance(points.index, pd.DatetimeIndex):
        raise ValueError("new_points: expected a pandas Series on a DatetimeIndex")
    stamps = stamps_ns(utc_ns_index(points.index))
    values = np.asarray(points.to_numpy(), dtype=float)
    last_ns, step_ns = ts_ns(last), td_ns(step)
    keep = stamps > last_ns
    if not keep.any():
        return None
    stamps, values = stamps[keep], values[keep]
    if (values < 0).any() or np.isinf(values).any():
        raise ValueError("new_points: expected finite non-negative values")
    offset = stamps - last_ns
    if (offset % step_ns).any():
        raise ValueError(f"new_points: timestamps are off the {step} grid of the history")
    pos = offset // step_ns - 1
    out = np.full(int(pos.max()) + 1, np.nan)
    out[pos] = values
    return pd.Series(out, index=future_index(last, step, len(out)))  # the grid's index, shared


def lift_spread(
    stamps: np.ndarray, resid: np.ndarray, evs: Sequence[Event], kinds: Sequence[str], lift_sigma: float
) -> tuple[dict[str, float], dict[str, int]]:
    """Per kind: spread of the log lift across past occurrences (shrunk toward ``lift_sigma``),
    and how many occurrences it was measured on."""
    devs: dict[str, list[float]] = {k: [] for k in kinds}
    for event in evs:
        if event.kind not in devs:
            continue
        i0, i1 = np.searchsorted(stamps, [ts_ns(event.start), ts_ns(event.end)])
        window = resid[i0:i1]
        window = window[np.isfinite(window)]
        if window.size:
            devs[event.kind].append(float(window.mean()))
    n0 = 2.0
    out, counts = {}, {}
    for kind, values in devs.items():
        arr = np.asarray(values)
        out[kind] = math.sqrt((float(np.sum(arr**2)) + n0 * lift_sigma**2) / (max(len(arr) - 1, 0) + n0))
        counts[kind] = len(arr)
    return out, counts


def shape_spread(
    stamps: np.ndarray,
    resid: np.ndarray,
    evs: Sequence[Event],
    kinds: Sequence[str],
    step_ns: int,
    width: int,
    base_var: float,
) -> dict[str, np.ndarray]:
    """Per kind and shape bin: the residual variance beyond ``base_var``, as a new point would see it.

    The ramp bins of a kind whose real ramp does not follow its bins (a 3-minute jump into a
    jackpot, a tournament whose ramp length varies) miss by more than the plateau's lift spread
    says; this measures how much more, from the in-sample residuals of its past occurrences
    corrected for the coefficients fitted on them (n points per bin: times (n + 1) / (n - 1))."""
    ss = {k: np.zeros(width) for k in kinds}
    count = {k: np.zeros(width) for k in kinds}
    for event in evs:
        if event.kind not in ss:
            continue
        i0, i1, bins = event_window(stamps, event, step_ns)
        r = resid[i0:i1]
        ok = np.isfinite(r)
        ss[event.kind] += np.where(ok, r, 0.0) ** 2 @ bins
        count[event.kind] += ok.astype(float) @ bins
    out = {}
    for kind in kinds:
        n = count[kind]
        with np.errstate(divide="ignore", invalid="ignore"):
            pred = np.where(n >= 3, ss[kind] / np.maximum(n, 1) * (n + 1) / np.maximum(n - 1, 1), 0.0)
        out[kind] = np.maximum(pred - base_var, 0.0)
    return out


def pool_kinds(
    beta: np.ndarray,
    prior: np.ndarray,
    layout: EventLayout,
    sigma: dict[str, float],
    count: dict[str, int],
    tau: float,
) -> np.ndarray:
    """Event coefficients with each kind's block shrunk toward its prior (partial pooling).

    A kind's learned log lift is the mean over its n occurrences, each off by ~``sigma``; with a
    prior spread ``tau`` of kinds' lifts around the prior, the posterior mean keeps the fraction
    n tau^2 / (n tau^2 + sigma^2) of the learned deviation: a kind seen once with a wild lift
    (up or down) moves the forecast part of the way, one seen every week all of it."""
    out = beta.copy()
    kind_at, _, _ = layout.offsets()
    for kind, j in kind_at.items():
        n = count.get(kind, 0)
        width = layout.bins.width + (2 * layout.shape_harmonics if kind in layout.long_kinds else 0)
        keep = n * tau**2 / (n * tau**2 + sigma.get(kind, tau) ** 2) if n else 1.0  # unseen: the ridge prior did it
        out[j : j + width] = prior[j : j + width] + keep * (beta[j : j + width] - prior[j : j + width])
    return out
