"""Per-policy forecasts for the loop: fit once, then refresh once per forecast step.

A policy's forecast only changes when its demand grid moves a step, its
spec or its events change. In between (e.g. four 15 s cycles per 1 m
step) the cached forecast is reused. When the step moves, a model with
``update(new_points)`` (the calendar model) absorbs the new points without a
refit; a full refit happens when the spec generation, the model, the
horizon or the events change, and at least every ``REFIT_EVERY``. Called by
``controller.operator.reconcile``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from controller.operator.resources import ScalingPolicySpec
from forecasting.base import Event, Forecast, Forecaster
from forecasting.timeutil import stamps_ns, ts_ns

ForecasterFactory = Callable[[str], Forecaster]
REFIT_EVERY = timedelta(hours=1)


@dataclass
class _Entry:
    key: tuple[Any, ...]  # what forces a full refit when it changes
    end: pd.Timestamp  # last history point the model has seen
    fitted_end: pd.Timestamp  # last history point of the last full fit
    model: Forecaster | None
    forecast: Forecast | None
    error: str | None


def horizon_steps(spec: ScalingPolicySpec) -> int:
    """Steps to forecast: the status horizon, and every lead time plus a sync period, plus a step."""
    step = spec.forecast.step
    longest = max(
        spec.forecast.horizon,
        spec.lead_time + spec.sync_period,
        (spec.database_replicas.lead_time if spec.database_replicas else timedelta(0)) + spec.sync_period,
    )
    return math.ceil((longest + step) / step) + 1


class ForecastCache:
    """Forecasts by policy uid; counts full fits and incremental updates for the cycle report."""

    def __init__(self, factory: ForecasterFactory) -> None:
        self.factory = factory
        self._entries: dict[str, _Entry] = {}
        self.fits = 0
        self.updates = 0

    def forget_except(self, uids: set[str]) -> None:
        """Drop the entries of policies that are gone."""
        for uid in set(self._entries) - uids:
            del self._entries[uid]

    def get(
        self, uid: str, generation: int, spec: ScalingPolicySpec, history: pd.Series, events: list[Event]
    ) -> tuple[Forecast | None, str | None]:
        """(forecast, None) or (None, why not) for ``history`` ending at the last completed step."""
        horizon = horizon_steps(spec)
        key = (generation, spec.forecast.model, horizon,
               tuple((e.name, e.kind, e.start, e.end, e.expected_lift) for e in events))
        end = history.index[-1]
        cached = self._entries.get(uid)
        if cached is not None and cached.key == key:
            if cached.end == end:
                return cached.forecast, cached.error
            update = getattr(cached.model, "update", None)
            if cached.model is not None and update is not None and end > cached.end \
                    and end - cached.fitted_end < REFIT_EVERY:
                try:
                    update(history[history.index > cached.end])
                    forecast = cached.model.predict(horizon, events)
                except ValueError:
                    pass  # fall through to a full refit
                else:
                    self.updates += 1
                    self._entries[uid] = _Entry(key, end, cached.fitted_end, cached.model, forecast, None)
                    return forecast, None
        series = history.copy()
        series.index.freq = pd.tseries.frequencies.to_offset(pd.Timedelta(spec.forecast.step))
        model: Forecaster | None = None
        try:
            model = self.factory(spec.forecast.model)
            self.fits += 1
            fc: Forecast | None = model.fit(series, events).predict(horizon, events)
            error = None
        except ValueError as exc:
            fc, error, model = None, f"forecast failed: {exc}", None
        self._entries[uid] = _Entry(key, end, end, model, fc, error)
        return fc, error


def value_at(forecast: Forecast, q: float, now: datetime) -> float | None:
    """The forecast's ``q`` quantile for the step containing ``now`` (None outside it, or not finite)."""
    stamps = stamps_ns(forecast.index)  # int64 ns: numpy's searchsorted, without pandas' scalar checks
    i = int(np.searchsorted(stamps, ts_ns(now), side="right")) - 1
    if not 0 <= i < len(stamps):
        return None
    value = float(forecast.quantile(q)[i])
    return value if math.isfinite(value) else None
