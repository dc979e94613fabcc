"""The forecast policies decide from a forecast at (nearly) every step, whatever pandas parses.

Issue 9: under pandas 3 a trace read from ISO ``T`` text is microsecond-based;
stamps compared in different units made every pitboss decision
``MetricsUnavailable`` and the policy never scaled down. The trace here goes
through the real CSV reader, and through the same at second and microsecond
resolution (what pandas 3 produces) on any pandas, with the real models.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from controller.simulate.engine import SimConfig, simulate
from controller.simulate.policies import build
from controller.simulate.predictive import Oracle, Predictive
from controller.traceio import read_events, read_series, write_events
from forecasting import registry
from forecasting.base import Event, Forecast
from forecasting.models.seasonal_naive import SeasonalNaive
from forecasting.synth import synth_trace

CFG = SimConfig(capacity_per_replica=2000, lead_time=timedelta(minutes=30), test_days=1.0)
FORECAST_REASONS = {"ScaleUpForecast", "ScaleUpObserved", "ScaleDown", "ScaleDownStabilized", "ScaleDownStep",
                    "ScaleDownForecast", "ScaleDownForecastHold",
                    "Hold", "CapacityLimited"}


@pytest.fixture(scope="module")
def trace_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Eight days of 15-minute casino demand written with ISO ``T`` stamps, and its events."""
    series, events = synth_trace(days=8, step="15min", seed=11)
    folder = tmp_path_factory.mktemp("coverage")
    with open(folder / "trace.csv", "w", encoding="utf-8") as handle:
        handle.write("timestamp,value\n")
        for ts, value in series.items():
            handle.write(f"{ts.strftime('%Y-%m-%dT%H:%M:%S')},{value:g}\n")
    write_events(events, folder / "events.csv")
    return folder / "trace.csv", folder / "events.csv"


@pytest.mark.parametrize("unit", [None, "s", "us"])
def test_pitboss_decides_from_its_forecast_and_scales_down_after_peaks(
    trace_files: tuple[Path, Path], unit: str | None
) -> None:
    series = read_series(trace_files[0])
    if unit is not None:
        series.index = series.index.as_unit(unit)
    events = read_events(trace_files[1])
    scalers = [build("holt-winters"), build("pitboss"), Oracle()]
    result = simulate(series, events, CFG, scalers, reference=Oracle())
    for name in ("holt-winters", "pitboss"):
        run = result.runs[name]
        steps = len(result.demand)
        assert sum(run.reasons.values()) == steps
        assert run.steps_without_forecast == 0, run.notes
        assert run.reasons.get("MetricsUnavailable", 0) <= 0.01 * steps, run.reasons
        assert sum(n for r, n in run.reasons.items() if r in FORECAST_REASONS) >= 0.99 * steps
        down = ("ScaleDown", "ScaleDownStep", "ScaleDownForecast")
        assert sum(run.reasons.get(r, 0) for r in down) > 0  # it scales down after peaks
        assert run.fallback is None
        assert np.count_nonzero(np.diff(run.asked) < 0) >= 5
    pitboss = result.runs["pitboss"]
    assert pitboss.metrics.cost_vs_oracle is not None and pitboss.metrics.cost_vs_oracle < 1.6
    out = result.to_json()["policies"]
    assert out["pitboss"]["steps_without_forecast"] == 0 and out["pitboss"]["fallback"] is None  # type: ignore[index]
    assert "steps_without_forecast" not in out["oracle"]  # type: ignore[operator]


class Yesterday:
    """A model whose forecasts are a day old: they exist, but never cover now (a fake: the bug, on purpose)."""

    name = "yesterday"

    def fit(self, history: pd.Series, events: Sequence[Event] = ()) -> Yesterday:
        self._model = SeasonalNaive().fit(history)
        return self

    def predict(self, horizon: int, events: Sequence[Event] = ()) -> Forecast:
        fc = self._model.predict(horizon, events)
        return Forecast(index=fc.index - pd.Timedelta(days=1), mean=fc.mean, quantiles=fc.quantiles, model=self.name)


def test_a_forecast_that_never_covers_now_is_counted_and_logged(
    trace_files: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(registry.MODELS, Yesterday.name, Yesterday)  # type: ignore[arg-type]
    series = read_series(trace_files[0])
    policy = Predictive("stale", "yesterday", use_events=False, refit_every=timedelta(hours=6))
    with caplog.at_level(logging.ERROR, logger="controller.simulate.predictive"):
        result = simulate(series, [], CFG, [policy])
    run = result.runs["stale"]
    assert run.steps_without_forecast == len(result.demand)
    assert set(run.reasons) <= {"MetricsUnavailable", "ScaleUpObserved"}  # never a scale-down without one
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "forecast does not cover" in errors[0]  # logged once per run, counted each step
    now = result.index[0]
    assert now.isoformat() in errors[0] and (now - pd.Timedelta(days=1)).isoformat() in errors[0]
    assert any("forecast does not cover" in note for note in run.notes)


def test_a_model_that_falls_back_says_so(trace_files: tuple[Path, Path]) -> None:
    """Three days of history: holt-winters needs two, pitboss's calendar too; at 2 days both fall back."""
    series = read_series(trace_files[0]).iloc[: int(2.5 * 96)]
    cfg = SimConfig(capacity_per_replica=2000, lead_time=timedelta(minutes=30), test_days=0.6)
    result = simulate(series, [], cfg, [build("pitboss")])
    run = result.runs["pitboss"]
    assert run.fallback == "seasonal-naive"
    assert any("fell back to seasonal-naive" in note and "needs two days" in note for note in run.notes)
    assert result.to_json()["policies"]["pitboss"]["fallback"] == "seasonal-naive"  # type: ignore[index]
