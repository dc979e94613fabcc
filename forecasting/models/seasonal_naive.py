"""``seasonal-naive``: tomorrow looks like today, next week like this week.

The baseline every accuracy number is compared with. The forecast for step
``T+h`` is the value one season earlier (weekly lag when the history holds at
least a week, else daily). Quantiles come from the empirical distribution of
the in-sample seasonal differences, widened by sqrt(seasons ahead). Known
events are ignored on purpose. Used through ``forecasting.registry``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from forecasting.base import Event, Forecast
from forecasting.series import (
    DAY,
    QUANTILES,
    WEEK,
    assemble,
    check_horizon,
    extend_history,
    fill_gaps,
    future_index,
    prepare_history,
    season_steps,
    step_of,
)

SEASONS = ("auto", "daily", "weekly")


class SeasonalNaive:
    """Repeat the last season (weekly, or daily when history is shorter than a week)."""

    name: ClassVar[str] = "seasonal-naive"

    def __init__(self, season: str = "auto") -> None:
        if season not in SEASONS:
            raise ValueError(f"season: expected one of {', '.join(SEASONS)}, got {season!r}")
        self.season = season
        self._history: pd.Series | None = None
        self._lag = 0
        self._offsets: dict[float, float] = {}

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        """Remember the history and the spread of its seasonal differences."""
        self._history = prepare_history(history)
        self._refresh()
        return self

    def update(self, new_points: pd.Series) -> Self:
        """Append points after the fitted history (no refit needed: O(new points))."""
        if self._history is None:
            raise ValueError("update: call fit before update")
        keep = 5 * self._lag if self._lag else None
        self._history = extend_history(self._history, new_points, keep=keep)
        return self

    def _refresh(self) -> None:
        assert self._history is not None
        step = step_of(self._history)
        n = len(self._history)
        week, day = season_steps(step, WEEK), season_steps(step, DAY)
        if self.season in ("auto", "weekly") and week and n >= week + 1:
            self._lag = week
        elif self.season == "daily" and day and n >= day + 1:
            self._lag = day
        elif day and n >= day + 1:
            self._lag = day
            warnings.warn(
                f"seasonal-naive: history of {n} steps is shorter than a week; using the daily lag",
                stacklevel=2,
            )
        else:
            self._lag = 0
            warnings.warn(
                f"seasonal-naive: history of {n} steps is shorter than a day; falling back to the recent mean",
                stacklevel=2,
            )
        values = self._history.to_numpy()
        lag = self._lag or 1
        diffs = values[lag:] - values[:-lag]
        diffs = diffs[np.isfinite(diffs)]
        if diffs.size < 10:
            scale = float(np.nanstd(values)) if np.isfinite(values).sum() > 1 else 0.0
            z = {0.025: -1.96, 0.05: -1.645, 0.1: -1.2816, 0.5: 0.0, 0.9: 1.2816, 0.95: 1.645, 0.975: 1.96, 0.99: 2.326}
            self._offsets = {q: z[q] * scale for q in QUANTILES}
        else:
            centre = float(np.quantile(diffs, 0.5))
            self._offsets = {q: float(np.quantile(diffs, q)) - centre for q in QUANTILES}

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        """The last season repeated over ``horizon`` steps."""
        if self._history is None:
            raise ValueError("predict: call fit before predict")
        horizon = check_horizon(horizon)
        if self._history.index.freq is None:  # pragma: no cover - prepare_history always sets it
            raise ValueError("history: lost its frequency")
        step = step_of(self._history)
        index = future_index(self._history.index[-1], step, horizon)
        values = self._history.to_numpy()
        if self._lag:
            filled = fill_gaps(values, self._lag)
            lag = self._lag
            h = np.arange(1, horizon + 1)
            back = lag * np.ceil(h / lag).astype(int) - h  # steps back from the end within the last season
            point = filled[len(filled) - 1 - back]
            seasons_ahead = np.ceil(h / lag)
        else:
            tail = values[-max(1, min(len(values), 12)) :]
            point = np.full(horizon, float(np.nanmean(tail)))
            seasons_ahead = np.ones(horizon)
        widen = np.sqrt(seasons_ahead)
        offsets = {q: off * widen for q, off in self._offsets.items()}
        return assemble(index, point, offsets, model=self.name)
