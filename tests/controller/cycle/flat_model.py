"""A tiny in-process forecaster for the feed and cache tests: it forecasts the last value it saw.

It stands in for a model where what is tested is when a feed or cache fits, updates and falls
back, not forecasting. Used by tests/controller/cycle/test_feed.py and
tests/controller/operator/test_forecast_cache.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from forecasting.base import REQUIRED_QUANTILES, Event, Forecast

T0 = pd.Timestamp("2026-02-02T12:00:00Z")
STEP = pd.Timedelta(minutes=1)


class Flat:
    """Forecasts the last value it saw; ``fail`` makes fit or update raise."""

    name: ClassVar[str] = "flat"

    def __init__(self, fail: str = "") -> None:
        self.fail, self.end, self.level = fail, T0, 0.0

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        if self.fail == "fit":
            raise ValueError("history: broken on purpose")
        self.end, self.level = history.index[-1], float(history.iloc[-1])
        return self

    def update(self, new_points: pd.Series) -> Self:
        if self.fail == "update":
            raise ValueError("new_points: broken on purpose")
        self.end, self.level = new_points.index[-1], float(new_points.iloc[-1])
        return self

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        index = pd.date_range(self.end + STEP, periods=horizon, freq=STEP)
        mean = np.full(horizon, self.level)
        return Forecast(index=index, mean=mean, quantiles={q: mean * (0.5 + q) for q in REQUIRED_QUANTILES},
                        model="flat")
