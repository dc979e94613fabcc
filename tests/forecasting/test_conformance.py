"""Every registered model goes through the same checks (the Forecaster contract)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from forecasting import registry
from forecasting.base import REQUIRED_QUANTILES, Event, Forecast, Forecaster, SupportsUpdate

MODELS = registry.names()
HORIZON = 8


def test_registry_has_the_issue_models() -> None:
    assert {"seasonal-naive", "holt-winters", "calendar", "auto"} <= set(MODELS)


def test_unknown_model_names_the_field() -> None:
    with pytest.raises(ValueError, match="model: unknown model 'nope'"):
        registry.create("nope")


@pytest.fixture(params=MODELS)
def name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def _check(fc: Forecast, history: pd.Series, horizon: int) -> None:
    step = history.index.freq
    assert len(fc.index) == horizon
    assert fc.index[0] == history.index[-1] + step
    assert (np.diff(fc.index.asi8) == pd.Timedelta(step).value).all()
    assert str(fc.index.tz) == "UTC"
    assert fc.mean.shape == (horizon,)
    for q in REQUIRED_QUANTILES:
        assert q in fc.quantiles
    levels = sorted(fc.quantiles)
    stacked = np.vstack([fc.quantiles[q] for q in levels])
    assert np.isfinite(stacked).all() and np.isfinite(fc.mean).all()
    assert (np.diff(stacked, axis=0) >= -1e-9).all(), "quantiles must be monotone in q"
    assert (stacked >= 0).all() and (fc.mean >= 0).all()


def test_shapes_continuity_monotone_nonnegative(name: str, casino_30m: tuple[pd.Series, list[Event]]) -> None:
    series, events = casino_30m
    history = series.iloc[:-HORIZON]
    model = registry.create(name)
    assert isinstance(model, Forecaster)
    fc = model.fit(history, events).predict(HORIZON, events)
    _check(fc, history, HORIZON)


def test_handles_gaps(name: str, casino_30m: tuple[pd.Series, list[Event]]) -> None:
    series, events = casino_30m
    history = series.iloc[:-HORIZON].copy()
    history.iloc[100:130] = np.nan  # a 15-hour gap
    history.iloc[-3:] = np.nan  # and a gap at the very end
    fc = registry.create(name).fit(history, events).predict(HORIZON, events)
    _check(fc, history, HORIZON)


def test_deterministic(name: str, casino_30m: tuple[pd.Series, list[Event]]) -> None:
    series, events = casino_30m
    first = registry.create(name).fit(series, events).predict(HORIZON, events)
    second = registry.create(name).fit(series, events).predict(HORIZON, events)
    for q in first.quantiles:
        np.testing.assert_array_equal(first.quantiles[q], second.quantiles[q])


def test_short_history_falls_back_with_a_warning(name: str, casino_30m: tuple[pd.Series, list[Event]]) -> None:
    series, events = casino_30m
    history = series.iloc[:30]  # 15 hours: too short for any daily season
    with pytest.warns(UserWarning):
        fc = registry.create(name).fit(history, events).predict(HORIZON, events)
    _check(fc, history, HORIZON)


def test_unsorted_naive_index_is_regularised(name: str, casino_30m: tuple[pd.Series, list[Event]]) -> None:
    series, events = casino_30m
    history = series.iloc[:-HORIZON]
    shuffled = history.sample(frac=1.0, random_state=1)
    shuffled.index = shuffled.index.tz_localize(None)  # naive timestamps are read as UTC
    expected = registry.create(name).fit(history, events).predict(HORIZON, events)
    got = registry.create(name).fit(shuffled, events).predict(HORIZON, events)
    assert got.index.equals(expected.index)
    np.testing.assert_allclose(got.quantiles[0.95], expected.quantiles[0.95])


def test_events_outside_history_and_horizon_are_harmless(
    name: str, casino_30m: tuple[pd.Series, list[Event]]
) -> None:
    series, events = casino_30m
    ts = series.index
    far = [
        Event("ancient", "promotion", ts[0] - pd.Timedelta(days=30), ts[0] - pd.Timedelta(days=29), 2.0),
        Event("straddle", "tournament", ts[0] - pd.Timedelta(hours=2), ts[0] + pd.Timedelta(hours=2)),
        Event("future", "jackpot", ts[-1] + pd.Timedelta(days=5), ts[-1] + pd.Timedelta(days=6), 4.0),
    ]
    fc = registry.create(name).fit(series, [*events, *far]).predict(HORIZON, [*events, *far])
    _check(fc, series, HORIZON)


def test_bad_calls_raise_value_errors_naming_the_field(name: str, casino_30m: tuple[pd.Series, list[Event]]) -> None:
    series, _ = casino_30m
    with pytest.raises(ValueError, match="predict"):
        registry.create(name).predict(HORIZON)
    model = registry.create(name).fit(series)
    for bad in (0, -3):
        with pytest.raises(ValueError, match="horizon"):
            model.predict(bad)
    with pytest.raises(ValueError, match="history"):
        registry.create(name).fit(pd.Series([1.0, 2.0, 3.0]))


def test_update_continues_the_history(name: str, casino_30m: tuple[pd.Series, list[Event]]) -> None:
    series, events = casino_30m
    model = registry.create(name).fit(series.iloc[:-20], events)
    if not isinstance(model, SupportsUpdate):
        pytest.skip(f"{name} has no incremental update (optional)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.update(series.iloc[-20:-12])
        model.update(series.iloc[-14:-10])  # overlapping points are ignored
    fc = model.predict(HORIZON, events)
    _check(fc, series.iloc[:-10], HORIZON)


# The table in docs/adding-a-model.md: each test above is a case, each registered model a column.
# A model without the optional update skips that case (n/a); every other cell must pass.
DOC = Path(__file__).resolve().parents[2] / "docs" / "adding-a-model.md"
CASES = {
    "shapes_continuity_monotone_nonnegative": "horizon steps right after the history, UTC, finite, monotone, >= 0",
    "handles_gaps": "NaN gaps inside and at the end of the history",
    "deterministic": "the same fit twice gives the same quantiles",
    "short_history_falls_back_with_a_warning": "15 hours of history: a UserWarning and a valid forecast",
    "unsorted_naive_index_is_regularised": "a shuffled, naive index gives the sorted UTC answer",
    "events_outside_history_and_horizon_are_harmless": "events far before, straddling, far after",
    "bad_calls_raise_value_errors_naming_the_field": "predict before fit, horizon <= 0, a non-time index",
    "update_continues_the_history": "optional `update`: new (overlapping) points continue the fit",
}


def model_table() -> str:
    """The Markdown table of which registered model passes which case (docs/adding-a-model.md)."""
    rows = ["| case (`test_<case>`) | " + " | ".join(f"`{m}`" for m in MODELS) + " |",
            "|---|" + "---|" * len(MODELS)]
    for case, what in CASES.items():
        marks = ["n/a" if case.startswith("update") and not isinstance(registry.create(m), SupportsUpdate)
                 else "pass" for m in MODELS]
        rows.append(f"| `{case}`: {what} | " + " | ".join(marks) + " |")
    return "\n".join(rows)


def test_every_case_is_a_test() -> None:
    tests = {name.removeprefix("test_") for name in globals() if name.startswith("test_")}
    assert set(CASES) <= tests
    assert tests - set(CASES) == {"registry_has_the_issue_models", "unknown_model_names_the_field",
                                  "every_case_is_a_test", "the_recipe_shows_this_table"}


def test_the_recipe_shows_this_table() -> None:
    assert model_table() in DOC.read_text(), f"docs/adding-a-model.md: paste model_table():\n{model_table()}"
