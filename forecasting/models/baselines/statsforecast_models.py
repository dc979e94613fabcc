"""``mstl`` and ``autoets``: statsforecast's models as Forecasters (benchmark baselines, no events).

``mstl`` is MSTL with the daily and weekly seasons (in steps: 24 and 168 on
hourly data) and an AutoETS trend; at steps of a minute or less STL's
smoothing jumps are set R-style (window / 10), without which statsmodels-
style STL takes minutes per fit. ``autoets`` is AutoETS with the daily
season, which statsforecast only models up to 24 points (so it is
non-seasonal at sub-hourly steps: faithful to what a user gets). Gaps are
filled a season back before fitting (statsforecast takes no NaN); each fit
sees at most the last ``max_days`` (56) days;
quantiles come from the models' own prediction intervals. statsforecast is
imported when a model is fitted. Registered by ``forecasting.models.baselines``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from forecasting.base import Event, Forecast
from forecasting.models.baselines.common import LEVELS, from_levels, prepared, seasons
from forecasting.series import check_horizon, future_index

MAX_ETS_SEASON = 24  # statsforecast's AutoETS falls back to non-seasonal above this


class _Statsforecast:
    """Fit on the gap-filled history, predict with intervals at LEVELS."""

    name: ClassVar[str] = ""

    def __init__(self, max_days: float = 56.0) -> None:
        if not max_days > 0:
            raise ValueError(f"max_days: expected a positive number of days, got {max_days}")
        self.max_days = max_days
        self._model: Any = None
        self._last: pd.Timestamp | None = None
        self._step: pd.Timedelta | None = None
        self.method = ""

    def _make(self, step: pd.Timedelta, n: int) -> Any:
        raise NotImplementedError

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        """Fit on ``history``; events are ignored (these models take none)."""
        hist, y, step = prepared(history)
        keep = max(2, int(pd.Timedelta(days=self.max_days) / step))
        hist, y = hist.iloc[-keep:], y[-keep:]
        self._model = self._make(step, len(y)).fit(y.astype(float))
        self._last, self._step = hist.index[-1], step
        return self

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        """Mean and quantiles over the ``horizon`` steps after the fitted history."""
        if self._model is None or self._last is None or self._step is None:
            raise ValueError("predict: call fit before predict")
        horizon = check_horizon(horizon)
        result = self._model.predict(h=horizon, level=list(LEVELS))
        out = {k: np.nan_to_num(np.asarray(v, dtype=float)) for k, v in result.items()}
        return from_levels(future_index(self._last, self._step, horizon), out, model=self.name)


class Mstl(_Statsforecast):
    """statsforecast MSTL(daily, weekly) + AutoETS trend."""

    name: ClassVar[str] = "mstl"

    def _make(self, step: pd.Timedelta, n: int) -> Any:
        from statsforecast.models import MSTL, AutoETS

        lengths = seasons(step, n)
        if not lengths:
            self.method = "AutoETS (history shorter than two days)"
            return AutoETS(model="ZZN")
        kwargs: dict[str, Any] = {}
        if max(lengths) > 1000:  # R-style jumps: ceil(window / 10) of the daily season's trend and low-pass windows
            day = lengths[0]
            trend_window = math.ceil(1.5 * day / (1 - 1.5 / 7))  # statsmodels' default for seasonal=7
            jumps = {"trend_jump": math.ceil(trend_window / 10), "low_pass_jump": math.ceil((day + 1) / 10)}
            kwargs["stl_kwargs"] = jumps
        self.method = f"MSTL{tuple(lengths)}+AutoETS"
        return MSTL(season_length=lengths, trend_forecaster=AutoETS(model="ZZN"), **kwargs)


class AutoEts(_Statsforecast):
    """statsforecast AutoETS with the daily season when it is at most 24 steps."""

    name: ClassVar[str] = "autoets"

    def _make(self, step: pd.Timedelta, n: int) -> Any:
        from statsforecast.models import AutoETS

        lengths = seasons(step, n)
        season = lengths[0] if lengths and lengths[0] <= MAX_ETS_SEASON else 1
        self.method = f"AutoETS(season {season})"
        return AutoETS(season_length=season)
