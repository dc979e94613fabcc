"""``prophet``: Prophet with daily and weekly seasonality and the event calendar (benchmark baseline).

Prophet's defaults a user starts from (daily and weekly seasonality, no
yearly term, linear trend), plus one multiplicative regressor per event
kind seen in the fitted history, 1 while an event of that kind is on: its
"holidays" at any length, so an hour-long tournament and a whole-day bank
holiday are handled alike, lifting or lowering demand. Quantiles are the
empirical quantiles of Prophet's predictive samples. Each fit sees at most
the last ``max_days`` days and ``max_points`` points of history (a fit on
10,000 points takes seconds; Prophet's cost grows with the history). Fits
offline: the prophet wheel ships its compiled Stan model. Prophet is
imported when a model is fitted. Registered by ``forecasting.models.baselines``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from forecasting.base import Event, Forecast
from forecasting.models.baselines.common import event_columns, from_samples, kinds_in
from forecasting.series import DAY, check_horizon, future_index, prepare_history, step_of


class ProphetModel:
    """Prophet + one multiplicative regressor per event kind."""

    name: ClassVar[str] = "prophet"

    def __init__(self, max_days: float = 56.0, max_points: int = 10_000, samples: int = 300) -> None:
        if max_points < 10 or max_days <= 0 or samples < 20:
            raise ValueError("prophet: expected max_days > 0, max_points >= 10 and samples >= 20")
        self.max_days, self.max_points, self.samples = max_days, max_points, samples
        self._model: Any = None
        self._kinds: list[str] = []
        self._last: pd.Timestamp | None = None
        self._step: pd.Timedelta | None = None

    def _frame(self, index: pd.DatetimeIndex, events: Sequence[Event]) -> pd.DataFrame:
        frame = pd.DataFrame({"ds": index.tz_convert("UTC").tz_localize(None)})
        cols = event_columns(index, events, self._kinds)
        for i in range(len(self._kinds)):
            frame[f"event_{i}"] = cols[:, i]
        return frame

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        """Fit on the recent history with a regressor for each event kind it contains."""
        from prophet import Prophet

        for noisy in ("cmdstanpy", "prophet"):  # cmdstanpy resets its level on each fit: silence it outright
            logging.getLogger(noisy).disabled = True
        hist = prepare_history(history)
        step = step_of(hist)
        keep = min(len(hist), self.max_points, max(2, int(pd.Timedelta(days=self.max_days) / step)))
        hist = hist.iloc[-keep:]
        self._kinds = kinds_in(events, hist.index[0], hist.index[-1])
        frame = self._frame(pd.DatetimeIndex(hist.index), events)
        frame["y"] = hist.to_numpy()  # NaN rows are gaps: Prophet skips them
        model = Prophet(
            daily_seasonality=step < DAY,
            weekly_seasonality=True,
            yearly_seasonality=False,
            uncertainty_samples=self.samples,
        )
        for i in range(len(self._kinds)):
            model.add_regressor(f"event_{i}", mode="multiplicative", standardize=False)
        self._model = model.fit(frame)
        self._last, self._step = hist.index[-1], step
        return self

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        """Quantiles of Prophet's predictive samples over the ``horizon`` steps after the history."""
        if self._model is None or self._last is None or self._step is None:
            raise ValueError("predict: call fit before predict")
        horizon = check_horizon(horizon)
        index = future_index(self._last, self._step, horizon)
        draws = np.asarray(self._model.predictive_samples(self._frame(index, events))["yhat"], dtype=float)
        draws = np.maximum(np.nan_to_num(draws), 0.0)
        return from_samples(index, draws, model=self.name, mean=draws.mean(axis=1))
