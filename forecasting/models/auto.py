"""``auto``: pick the best model per series by a short internal backtest.

Holds out the end of the history (a day, or a fifth of a shorter history),
fits every candidate at a few origins inside it on the points before each
origin, scores the mean absolute error of the median over a one-hour horizon
(at least one step), and refits the winner on the whole history. At daily
and coarser steps the holdout is four weeks and the horizon one week. Ties and
histories too short to hold anything out go to ``calendar`` (which itself
falls back to ``seasonal-naive`` when it must) with a warning. ``chosen``
names the winner; forecasts are labelled ``auto(<winner>)``. Used through
the registry (``pitboss forecast --model auto``, the default), which hands
it the table of models to build candidates from (``factory``): this module
never imports the registry.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, Self

import numpy as np
import pandas as pd

from forecasting.base import Event, Forecast, Forecaster, SupportsUpdate
from forecasting.series import DAY, WEEK, check_horizon, extend_history, prepare_history, step_of

CANDIDATES = ("seasonal-naive", "holt-winters", "calendar")
MIN_TRAIN = 2 * DAY


class Auto:
    """Chooses among ``candidates`` by holdout error, then delegates."""

    name: ClassVar[str] = "auto"

    def __init__(
        self,
        candidates: Sequence[str] = CANDIDATES,
        origins: int = 3,
        horizon: int | None = None,
        *,
        factory: Mapping[str, Callable[[], Forecaster]],
    ) -> None:
        unknown = [c for c in candidates if c not in factory or c == self.name]
        if unknown or not candidates:
            raise ValueError(f"candidates: expected names among {', '.join(CANDIDATES)}, got {list(candidates)!r}")
        if origins < 1:
            raise ValueError(f"origins: expected at least 1, got {origins}")
        if horizon is not None:
            check_horizon(horizon)
        self.candidates = tuple(candidates)
        self.factory = factory
        self.origins = origins
        self.horizon = horizon
        self.chosen: str | None = None
        self.scores: dict[str, float] = {}
        self._model: Forecaster | None = None
        self._history: pd.Series | None = None
        self._events: list[Event] = []

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        """Score the candidates on the held-out end of ``history``, refit the best."""
        hist = prepare_history(history)
        step = step_of(hist)
        if step >= DAY:  # daily and coarser: a week ahead, over the last four weeks
            horizon = self.horizon or max(1, int(WEEK / step))
            holdout = min(max(4 * horizon, int(4 * WEEK / step)), len(hist) // 5)
        else:
            horizon = self.horizon or max(1, int(pd.Timedelta(hours=1) / step))
            holdout = min(int(DAY / step), len(hist) // 5)
        first = len(hist) - holdout
        self.scores = {}
        if holdout < horizon or hist.index[first] - hist.index[0] < MIN_TRAIN:
            warnings.warn(
                f"auto: history of {len(hist)} steps is too short for a holdout; using calendar", stacklevel=2
            )
            self.chosen = "calendar" if "calendar" in self.candidates else self.candidates[0]
        else:
            span = holdout - horizon
            origins = sorted({first + round(span * i / max(1, self.origins - 1)) for i in range(self.origins)})
            y = hist.to_numpy()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                for name in self.candidates:
                    errors = []
                    for origin in origins:
                        model = self.factory[name]().fit(hist.iloc[:origin], events)
                        point = model.predict(horizon, events).quantile(0.5)
                        actual = y[origin : origin + horizon]
                        ok = np.isfinite(actual)
                        if ok.any():
                            errors.append(float(np.mean(np.abs(actual[ok] - point[ok]))))
                    self.scores[name] = float(np.mean(errors)) if errors else math.inf
            # The last candidate wins ties, so list the preferred (calendar) last.
            self.chosen = min(reversed(self.candidates), key=lambda n: self.scores[n])
        self._model = self.factory[self.chosen]().fit(hist, events)
        self._history, self._events = hist, list(events)
        return self

    def update(self, new_points: pd.Series) -> Self:
        """Delegates to the chosen model when it supports updates; else refits it with the points."""
        if self._model is None:
            raise ValueError("update: call fit before update")
        if isinstance(self._model, SupportsUpdate):
            self._model.update(new_points)
        else:
            assert self.chosen is not None and self._history is not None
            self._history = extend_history(self._history, new_points)
            self._model = self.factory[self.chosen]().fit(self._history, self._events)
        return self

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        """The chosen model's forecast, labelled ``auto(<chosen>)``."""
        if self._model is None:
            raise ValueError("predict: call fit before predict")
        fc = self._model.predict(horizon, events)
        return Forecast(
            index=fc.index, mean=fc.mean, quantiles=fc.quantiles, model=f"auto({self.chosen})", fallback=fc.fallback
        )
