"""``gbm``: LightGBM quantile regression on calendar features (benchmark baseline).

The gradient-boosted model a forecasting practitioner would reach for: one
LightGBM model per quantile (pinball loss) on features known in advance for
the target step (slot of the day and of the week, day of the week, one 0/1
column per event kind seen in the history) and the demand one day and one
week before it. When the target is more than a day ahead, the day-before
value is the model's own median forecast (recursive). Quantiles LightGBM
does not fit directly are interpolated, and all are made monotone.
Each fit sees at most the last ``max_days`` (112) days. LightGBM is imported when a model is fitted. Registered by
``forecasting.models.baselines``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from forecasting.base import Event, Forecast
from forecasting.models.baselines.common import event_columns, kinds_in, prepared
from forecasting.series import DAY, QUANTILES, WEEK, assemble, check_horizon, future_index, season_steps

FITTED: tuple[float, ...] = (0.025, 0.1, 0.5, 0.9, 0.95, 0.975, 0.99)


class Gbm:
    """Per-quantile LightGBM on calendar, event and lag features."""

    name: ClassVar[str] = "gbm"

    def __init__(self, trees: int = 150, learning_rate: float = 0.05, leaves: int = 31, seed: int = 7,
                 max_days: float = 112.0) -> None:
        if trees < 1 or not 0 < learning_rate <= 1 or leaves < 2 or not max_days > 0:
            raise ValueError("gbm: expected trees >= 1, 0 < learning_rate <= 1, leaves >= 2 and max_days > 0")
        self.max_days = max_days
        self.trees = trees
        self.params = {"objective": "quantile", "learning_rate": learning_rate, "num_leaves": leaves,
                       "min_data_in_leaf": 20, "seed": seed, "num_threads": 1, "verbose": -1,
                       "deterministic": True}
        self._models: dict[float, Any] = {}
        self._y = np.zeros(0)
        self._index: pd.DatetimeIndex | None = None
        self._kinds: list[str] = []
        self._day = self._week = 0

    def _features(self, index: pd.DatetimeIndex, events: Sequence[Event], lag_day: np.ndarray,
                  lag_week: np.ndarray) -> np.ndarray:
        step = pd.Timedelta(index.freq)
        per_day = max(1, int(DAY / step))
        minutes = np.asarray(index.hour * 60 + index.minute, dtype=float)
        slot_day = np.floor(minutes * per_day / 1440.0)
        dow = np.asarray(index.day_of_week, dtype=float)
        cols = [slot_day, dow, dow * per_day + slot_day, lag_day, lag_week]
        return np.column_stack([*cols, event_columns(index, events, self._kinds)])

    def _lag(self, y: np.ndarray, positions: np.ndarray, lag: int) -> np.ndarray:
        if not lag:
            return np.full(len(positions), np.nan)
        back = positions - lag
        out = np.full(len(positions), np.nan)
        ok = (back >= 0) & (back < len(y))
        out[ok] = y[back[ok]]
        return out

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        """Fit one quantile model per level of FITTED on every step with its features."""
        import lightgbm

        hist, _, step = prepared(history)
        hist = hist.iloc[-max(2, int(pd.Timedelta(days=self.max_days) / step)) :]
        y = hist.to_numpy(dtype=float)  # LightGBM takes NaN features; NaN targets are dropped below
        self._day, self._week = season_steps(step, DAY), season_steps(step, WEEK)
        index = pd.DatetimeIndex(hist.index)
        self._kinds = kinds_in(events, index[0], index[-1])
        pos = np.arange(len(y))
        x = self._features(index, events, self._lag(y, pos, self._day), self._lag(y, pos, self._week))
        ok = np.isfinite(y)
        self._models = {}
        for q in FITTED:
            data = lightgbm.Dataset(x[ok], y[ok], params={"verbose": -1})
            self._models[q] = lightgbm.train({**self.params, "alpha": q}, data, num_boost_round=self.trees)
        self._y, self._index = y, index
        return self

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        """Quantiles over the ``horizon`` steps after the history (the day-before lag recursive past a day)."""
        if not self._models or self._index is None:
            raise ValueError("predict: call fit before predict")
        horizon = check_horizon(horizon)
        step = pd.Timedelta(self._index.freq)
        index = future_index(self._index[-1], step, horizon)
        n = len(self._y)
        y = np.concatenate([self._y, np.full(horizon, np.nan)])
        pos = np.arange(n, n + horizon)
        preds = {q: np.zeros(horizon) for q in FITTED}
        chunk = self._day or horizon  # each chunk's day-before lags are known or already predicted
        for lo in range(0, horizon, chunk):
            hi = min(horizon, lo + chunk)
            p = pos[lo:hi]
            x = self._features(index[lo:hi], events, self._lag(y, p, self._day), self._lag(y, p, self._week))
            for q, model in self._models.items():
                preds[q][lo:hi] = model.predict(x)
            y[p] = preds[0.5][lo:hi]
        median = preds[0.5]
        offsets = {}
        for q in QUANTILES:  # linear in q between the two fitted levels around it
            j = int(np.clip(np.searchsorted(FITTED, q), 1, len(FITTED) - 1))
            below, above = FITTED[j - 1], FITTED[j]
            w = (q - below) / (above - below)
            offsets[q] = (1 - w) * preds[below] + w * preds[above] - median
        return assemble(index, median, offsets, model=self.name)
