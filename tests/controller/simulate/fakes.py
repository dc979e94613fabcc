"""In-memory fake forecasters for simulator tests (registered by the tests that use them).

The real models live in forecasting/models and are exercised by the CLI and
benchmark tests; these fakes make the simulator's own rules testable exactly:
``Clairvoyant`` forecasts a known demand function (a perfect calendar), and
``LastValue`` repeats the last observed value (a forecaster that misses spikes).
Both record every history they were fitted on, so tests can check that no
policy ever sees the future.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from forecasting.base import REQUIRED_QUANTILES, Event, Forecast


class _Recording:
    name: ClassVar[str] = "fake"
    fitted_until: ClassVar[list[pd.Timestamp]] = []

    def __init__(self) -> None:
        self._last: pd.Timestamp | None = None
        self._step: pd.Timedelta | None = None
        self._history: pd.Series | None = None

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        if len(history) < 2:
            raise ValueError("history: needs at least 2 points")
        self._history = history
        self._last = history.index[-1]
        self._step = history.index[1] - history.index[0]
        type(self).fitted_until.append(self._last)
        return self

    def _index(self, horizon: int) -> pd.DatetimeIndex:
        assert self._last is not None and self._step is not None
        return pd.date_range(self._last + self._step, periods=horizon, freq=self._step)

    @staticmethod
    def _forecast(index: pd.DatetimeIndex, values: np.ndarray) -> Forecast:
        return Forecast(
            index=index, mean=values, quantiles={q: values.copy() for q in REQUIRED_QUANTILES}, model="fake"
        )


class Clairvoyant(_Recording):
    """Forecasts ``truth(index)`` exactly: what a perfect calendar model would say."""

    name: ClassVar[str] = "fake-clairvoyant"
    truth: ClassVar[Callable[[pd.DatetimeIndex], np.ndarray]] = staticmethod(lambda idx: np.zeros(len(idx)))

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        index = self._index(horizon)
        return self._forecast(index, np.asarray(type(self).truth(index), dtype=float))


class LastValue(_Recording):
    """Repeats the last observed value: blind to anything scheduled."""

    name: ClassVar[str] = "fake-last"

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        assert self._history is not None
        last = float(self._history.dropna().iloc[-1])
        return self._forecast(self._index(horizon), np.full(horizon, last))
