"""The forecasting baselines (mstl, autoets, prophet, gbm) behind the Forecaster contract.

Real libraries (statsforecast, prophet, lightgbm: the ``bench`` extra) on a
small hourly series; each test skips when its library is not installed.
Also: the product never imports these libraries, and ``register`` says
which package is missing.
"""

from __future__ import annotations

import subprocess
import sys
import warnings

import numpy as np
import pandas as pd
import pytest

from forecasting import registry
from forecasting.base import REQUIRED_QUANTILES, Event
from forecasting.models import baselines
from forecasting.models.baselines.common import event_columns

LIBS = {"mstl": "statsforecast", "autoets": "statsforecast", "prophet": "prophet", "gbm": "lightgbm"}


@pytest.fixture
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "MODELS", dict(registry.MODELS))


def hourly_with_holidays(weeks: int = 6) -> tuple[pd.Series, list[Event]]:
    """A daily and weekly cycle; each 'holiday' (every Wednesday but the next one) halves the day."""
    rng = np.random.default_rng(5)
    index = pd.date_range("2026-03-02", periods=weeks * 168, freq="h", tz="UTC")
    hour, dow = index.hour.to_numpy(), index.day_of_week.to_numpy()
    values = 100 + 80 * np.sin((hour - 8) / 24 * 2 * np.pi).clip(0) + 20 * (dow < 5) + rng.normal(0, 3, len(index))
    events = []
    for day in pd.date_range(index[0], index[-1], freq="D"):
        if day.day_of_week == 2 and day.day % 2 == 0:  # some Wednesdays: known in advance
            start, end = day, day + pd.Timedelta(days=1)
            values[(index >= start) & (index < end)] *= 0.5
            events.append(Event(name=f"h-{day:%m%d}", kind="holiday", start=start, end=end))
    return pd.Series(values, index=index), events


@pytest.mark.parametrize("name", list(LIBS))
def test_contract(name: str, isolated_registry: None) -> None:
    pytest.importorskip(LIBS[name])
    registry.register_baselines((name,))
    history, events = hourly_with_holidays()
    history.iloc[100:103] = np.nan  # gaps are filled or skipped, never an error
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fc = registry.create(name).fit(history, events).predict(30, events)
    assert len(fc.index) == 30 and fc.index[0] == history.index[-1] + pd.Timedelta(hours=1)
    assert str(fc.index.tz) == "UTC" and fc.model == name
    grid = np.vstack([fc.quantiles[q] for q in sorted(fc.quantiles)])
    assert all(q in fc.quantiles for q in REQUIRED_QUANTILES)
    assert np.isfinite(grid).all() and (grid >= 0).all() and (np.diff(grid, axis=0) >= -1e-9).all()
    assert np.isfinite(fc.mean).all()
    # A sane level: the forecast's median is within the history's range.
    assert 0 <= float(np.median(fc.quantile(0.5))) <= float(np.nanmax(history)) * 1.5


@pytest.mark.parametrize("name", ["prophet", "gbm"])
def test_event_aware_baselines_lower_a_holiday(name: str, isolated_registry: None) -> None:
    pytest.importorskip(LIBS[name])
    registry.register_baselines((name,))
    history, events = hourly_with_holidays()
    end = history.index[-1] + pd.Timedelta(hours=1)
    # The next two days: a holiday, then an ordinary day of the same week shape.
    future = [Event(name="next", kind="holiday", start=end, end=end + pd.Timedelta(days=1))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = registry.create(name).fit(history, events)
        with_event = model.predict(24, events + future).quantile(0.5)
        without = model.predict(24, events).quantile(0.5)
    assert with_event.sum() < 0.85 * without.sum()


def test_register_names_the_missing_package(monkeypatch: pytest.MonkeyPatch, isolated_registry: None) -> None:
    monkeypatch.setattr(baselines, "missing", lambda: {"prophet": "prophet"})
    with pytest.raises(ValueError, match="model: 'prophet' needs the 'prophet' package"):
        registry.register_baselines(("prophet",))
    with pytest.raises(ValueError, match="unknown baseline 'arima'"):
        registry.register_baselines(("arima",))
    assert "prophet" not in registry.register_baselines()  # all: the missing one is left out, not an error


def test_event_columns_cover_the_steps_an_event_overlaps() -> None:
    index = pd.date_range("2026-01-01", periods=6, freq="h", tz="UTC")
    ev = Event(name="e", kind="k", start=index[1] + pd.Timedelta(minutes=30), end=index[3])
    cols = event_columns(index, [ev, Event(name="x", kind="other", start=index[0], end=index[5])], ["k"])
    assert cols[:, 0].tolist() == [0, 1, 1, 0, 0, 0]


def test_the_product_never_imports_the_baseline_libraries() -> None:
    code = (
        "import sys, cli.app, controller.simulate.policies, controller.operator.app, forecasting.registry, "
        "forecasting.models.baselines\n"
        "bad = [m for m in ('statsforecast', 'prophet', 'lightgbm') if m in sys.modules]\n"
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
