"""Backtest metrics on hand-computed cases, origin discipline and the JSON shape."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Self

import numpy as np
import pandas as pd
import pytest

from forecasting.backtest import backtest, daily_naive_scale
from forecasting.base import Event, Forecast
from forecasting.series import QUANTILES, future_index

START = pd.Timestamp("2026-03-02T00:00:00Z")


def three_days() -> pd.Series:
    """Hourly: 10 before noon and 20 after, day 1 is +2 everywhere (daily-naive MAE = 2)."""
    hours = np.arange(72)
    values = np.where(hours % 24 >= 12, 20.0, 10.0) + np.where((hours >= 24) & (hours < 48), 2.0, 0.0)
    return pd.Series(values, index=pd.date_range(START, periods=72, freq="1h"))


class Constant:
    """A fake model (deterministic test double): flat forecast with fixed quantiles.
    Records the last timestamp of every history it was fitted on."""

    name: ClassVar[str] = "constant"
    seen: ClassVar[list[pd.Timestamp]] = []

    def __init__(self, level: float = 15.0, lo: float = 5.0, hi: float = 18.0, q95: float | None = None) -> None:
        self.level, self.lo, self.hi, self.q95 = level, lo, hi, q95

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Self:
        self.last = history.index[-1]
        self.step = pd.Timedelta(history.index.freq)
        Constant.seen.append(self.last)
        return self

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        index = future_index(self.last, self.step, horizon)
        flat = np.full(horizon, self.level)
        qs = {}
        for q in QUANTILES:
            value = self.level if q == 0.5 else (self.lo if q < 0.5 else self.hi)
            if q == 0.95 and self.q95 is not None:
                value = self.q95
            qs[q] = np.full(horizon, value)
        return Forecast(index=index, mean=flat, quantiles=qs, model=self.name)


def test_daily_naive_scale_is_the_in_sample_mae_of_the_daily_lag() -> None:
    assert daily_naive_scale(three_days().iloc[:48]) == pytest.approx(2.0)


def test_hand_computed_mase_smape_coverage() -> None:
    Constant.seen.clear()
    result = backtest(three_days(), [], {"constant": Constant}, horizon=6, every=12, test_steps=24)
    # Origins at hour 48 (actuals 10, error 5) and hour 60 (actuals 20, error 5); scale 2.
    assert result.origins == 2
    score = result.models["constant"]
    assert score.mase == pytest.approx(2.5)
    assert score.smape == pytest.approx((200 * 5 / 25 + 200 * 5 / 35) / 2)
    assert score.coverage_95 == pytest.approx(0.5)  # 20 lies above the 97.5% bound of 18
    assert score.event_mase is None and score.spike_recall is None
    # Each origin saw only the data strictly before it.
    assert Constant.seen[:1] == [START + pd.Timedelta(hours=47)]
    assert START + pd.Timedelta(hours=59) in Constant.seen


def test_event_mase_counts_only_points_inside_events() -> None:
    event = Event("e", "promotion", START + pd.Timedelta(hours=48), START + pd.Timedelta(hours=50))
    result = backtest(three_days(), [event], {"constant": Constant}, horizon=6, every=12, test_steps=24)
    # Inside the event: hours 48 and 49, actual 10, forecast 15 -> MAE 5 / scale 2.
    assert result.models["constant"].event_mase == pytest.approx(2.5)


def spiky() -> tuple[pd.Series, Event]:
    series = three_days()
    series.iloc[58] = 40.0  # 10:00 on day 2
    series.iloc[59] = 50.0  # 11:00
    event = Event("spike", "tournament", START + pd.Timedelta(hours=58), START + pd.Timedelta(hours=60))
    return series, event


@pytest.mark.parametrize(("q95", "recall"), [(41.0, 1.0), (39.0, 0.0)])
def test_spike_recall_uses_the_last_forecast_half_a_horizon_ahead(q95: float, recall: float) -> None:
    series, event = spiky()
    # Horizon 4 h: the forecast issued at 08:00 covers 10:00-11:00; its q95 must reach 0.8 x 50 = 40.
    # The seasonal naive forecasts 12 there, so the peak of 50 qualifies (>= 1.3 x 12).
    result = backtest(
        series, [event], {"constant": lambda: Constant(q95=q95, hi=60.0)}, horizon=4, every=1, test_steps=24
    )
    assert result.models["constant"].spike_recall == recall


def test_spike_recall_places_an_extra_origin_when_the_grid_misses_the_event() -> None:
    series, event = spiky()
    result = backtest(
        series, [event], {"constant": lambda: Constant(q95=41.0, hi=60.0)}, horizon=4, every=12, test_steps=24
    )
    assert result.origins == 2  # the grid; the anchor origin is not counted
    assert result.models["constant"].spike_recall == 1.0


def test_events_the_seasonal_naive_already_sees_do_not_qualify() -> None:
    series = three_days()
    event = Event("quiet", "promotion", START + pd.Timedelta(hours=58), START + pd.Timedelta(hours=60))
    result = backtest(series, [event], {"constant": Constant}, horizon=4, every=1, test_steps=24)
    assert result.models["constant"].spike_recall is None


def test_json_shape_is_exactly_the_issues() -> None:
    result = backtest(three_days(), [], {"constant": Constant, "seasonal-naive": Constant}, horizon=6, every=12,
                      test_steps=24)
    data = result.to_json()
    assert set(data) == {"series", "step_seconds", "horizon_steps", "origins", "models", "best"}
    assert data["step_seconds"] == 3600 and data["horizon_steps"] == 6 and data["origins"] == 2
    assert set(data["models"]["constant"]) == {
        "mase", "event_mase", "smape", "coverage_95", "spike_recall", "fit_predict_ms_p50", "fallback", "calibration"
    }
    assert data["models"]["constant"]["fallback"] is None  # issue 9: "seasonal-naive" when a model fell back
    assert data["best"] in data["models"]


def test_progress_reaches_the_total() -> None:
    calls: list[tuple[int, int]] = []
    backtest(three_days(), [], {"constant": Constant}, horizon=6, every=12, test_steps=24,
             progress=lambda done, total: calls.append((done, total)))
    assert calls[-1][0] == calls[-1][1] and len(calls) == calls[-1][1]


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"horizon": 0}, "horizon"),
        ({"every": 0}, "step"),
        ({"test_steps": 72}, "test_days"),
        ({"test_steps": 60}, "test_days"),  # leaves 12 h: no daily season to scale MASE by
        ({"horizon": 30}, "horizon"),  # longer than the test window
    ],
)
def test_bad_arguments_name_the_field(kwargs: dict[str, int], field: str) -> None:
    args = {"horizon": 6, "every": 12, "test_steps": 24, **kwargs}
    with pytest.raises(ValueError, match=field):
        backtest(three_days(), [], {"constant": Constant}, **args)
