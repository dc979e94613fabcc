"""The Forecaster protocol and the plain data it speaks: Event and Forecast.

Every model in ``forecasting/models`` implements ``Forecaster``; everything
that forecasts (CLI, backtests, simulator, operator) calls only this protocol.

Conventions:
* history is a ``pd.Series`` of float demand per step on a regular, tz-aware
  UTC ``DatetimeIndex`` with a set ``freq``; NaN marks a gap;
* ``predict(horizon, events)`` forecasts the ``horizon`` steps right after the
  end of the fitted history;
* a Forecast always has the quantiles in ``REQUIRED_QUANTILES``, monotone in q;
  ``Forecast.quantile`` reads any level in (0, 1) off them (linear in between,
  an exponential tail beyond the outermost ones);
* optionally, a model also implements ``SupportsUpdate.update(new_points)``:
  absorb points that continue the fitted history without a full refit, so a
  loop can refit hourly and update every cycle (check with ``isinstance``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import ClassVar, Protocol, Self, runtime_checkable

import numpy as np
import pandas as pd

from forecasting.timeutil import utc_ns, utc_ns_index

REQUIRED_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.95, 0.99)


@dataclass(frozen=True)
class Event:
    """A known-in-advance event (promotion, tournament, holiday...)."""

    name: str
    kind: str
    start: pd.Timestamp  # tz-aware UTC
    end: pd.Timestamp  # tz-aware UTC, > start
    expected_lift: float | None = None  # multiplier of normal demand, when known
    labels: dict[str, str] = field(default_factory=dict, hash=False, compare=False)

    def __post_init__(self) -> None:
        # The boundary where events enter: UTC at nanosecond resolution (forecasting.timeutil).
        object.__setattr__(self, "start", utc_ns(self.start))
        object.__setattr__(self, "end", utc_ns(self.end))


@dataclass(frozen=True)
class Forecast:
    """Point and quantile forecasts over ``index`` (tz-aware UTC)."""

    index: pd.DatetimeIndex
    mean: np.ndarray
    quantiles: dict[float, np.ndarray]
    model: str = ""

    fallback: str | None = None  # the model that actually forecast, when ``model`` fell back to it

    def __post_init__(self) -> None:
        # The boundary where forecasts enter the deciders: UTC at nanosecond resolution.
        object.__setattr__(self, "index", utc_ns_index(pd.DatetimeIndex(self.index)))
        n = len(self.index)
        if self.mean.shape != (n,):
            raise ValueError(f"mean: expected shape ({n},), got {self.mean.shape}")
        for q, values in self.quantiles.items():
            if values.shape != (n,):
                raise ValueError(f"quantiles[{q}]: expected shape ({n},), got {values.shape}")

    def quantile(self, q: float) -> np.ndarray:
        """The ``q`` quantile (0 < q < 1): a stored level, linear between two, or a tail beyond them.

        Beyond the highest stored level the tail is exponential (a generalised Pareto tail of shape 0, the
        peaks-over-threshold model when the data cannot pin the shape down), its scale read off the two
        highest levels: Q(q) = Q(hi) + b ln((1 - hi) / (1 - q)), b = (Q(hi) - Q(hi2)) / ln((1 - hi2) / (1 - hi)).
        The stored levels are the calibrated ones (conformal on the model's own errors), so the tail carries
        their calibration and their hour-of-week shape; storing q0.999 instead would be the largest residual
        of a few hundred per bucket, noise. Below the lowest level the mirror image, from the two lowest.
        Monotone in q; finite for every q < 1. ``tail_levels`` says which levels a tail reads.
        """
        if not 0 < q < 1:
            raise ValueError(f"quantile: expected a level in (0, 1), got {q}")
        if q in self.quantiles:
            return self.quantiles[q]
        if q == 0.5:
            return self.mean
        levels = sorted(self.quantiles)
        if not levels:
            raise ValueError(f"quantile: {q} needs stored quantiles, the forecast has none")
        if q > levels[-1] or q < levels[0]:
            if len(levels) < 2:
                raise ValueError(f"quantile: {q} is outside the stored levels {levels} (one level has no tail)")
            a, b = tail_levels(levels, q)
            spread = np.maximum(self.quantiles[a] - self.quantiles[b], 0.0) if q > a else \
                np.maximum(self.quantiles[b] - self.quantiles[a], 0.0)
            if q > a:
                return self.quantiles[a] + spread * (np.log((1 - a) / (1 - q)) / np.log((1 - b) / (1 - a)))
            return self.quantiles[a] - spread * (np.log(a / q) / np.log(b / a))
        hi = next(level for level in levels if level > q)
        lo = max(level for level in levels if level < q)
        w = (q - lo) / (hi - lo)
        return (1 - w) * self.quantiles[lo] + w * self.quantiles[hi]

    def to_frame(self) -> pd.DataFrame:
        """A DataFrame with columns mean, q50, q90, ... indexed by timestamp."""
        data = {"mean": self.mean}
        for q in sorted(self.quantiles):
            pct = q * 100
            # q50, q95 ...; a fractional percentage keeps its decimals (q2.5, q97.5).
            data[f"q{round(pct):02d}" if abs(pct - round(pct)) < 1e-9 else f"q{pct:g}"] = self.quantiles[q]
        return pd.DataFrame(data, index=self.index)


def tail_levels(levels: Sequence[float], q: float) -> tuple[float, float]:
    """(the outermost stored level on ``q``'s side, the one next to it): what ``Forecast.quantile``'s tail reads."""
    ordered = sorted(levels)
    return (ordered[-1], ordered[-2]) if q > ordered[-1] else (ordered[0], ordered[1])


@runtime_checkable
class Forecaster(Protocol):
    """What every model implements. ``name`` is its key in the registry."""

    name: ClassVar[str]

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        """Learn from ``history`` (and the events that overlap it). Returns self."""
        ...

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        """Forecast ``horizon`` steps after the fitted history, given known events."""
        ...


@runtime_checkable
class SupportsUpdate(Protocol):
    """Optional extension of Forecaster: a cheap incremental update between refits."""

    def update(self, new_points: pd.Series) -> Self:
        """Absorb ``new_points`` (same grid, continuing the fitted history; points at or
        before its end are ignored). ``predict`` then forecasts after the new end. Returns self."""
        ...
