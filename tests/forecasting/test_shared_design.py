"""Policies on one grid and one event calendar share the calendar fit's design (``shared_design``).

N policies whose demand differs but whose grid, events and observed points are the same build the
design matrix and its Gram matrix once, and each forecast is bit-identical to the one a fit
that built its own design gives (``shared_design.disabled()``, what every fit did before the
cache). A policy with a gap of its own, or other events, gets a design of its own; the cache
stays within its bound.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np
import pandas as pd
import pytest

from forecasting.base import Event, Forecast
from forecasting.models import shared_design
from forecasting.models.calendar import Calendar

HORIZON = 24


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    shared_design.CACHE.clear()
    yield
    shared_design.CACHE.clear()


def _policies(history: pd.Series, n: int) -> list[pd.Series]:
    """N services on the same grid: the same shape at other levels, with noise of their own."""
    rng = np.random.default_rng(3)
    return [history * (1 + k) * np.exp(rng.normal(0, 0.05, len(history))) for k in range(n)]


def _forecasts(histories: Sequence[pd.Series], events: Sequence[Event]) -> list[Forecast]:
    return [Calendar().fit(h, events).predict(HORIZON, events) for h in histories]


def _same(a: Forecast, b: Forecast) -> bool:
    return bool(np.array_equal(a.mean, b.mean)) and all(
        np.array_equal(a.quantiles[q], b.quantiles[q]) for q in a.quantiles)


def test_n_policies_sharing_a_grid_and_events_build_the_design_once(
        casino_5m: tuple[pd.Series, list[Event]]) -> None:
    history, events = casino_5m
    histories = _policies(history, 4)
    shared = _forecasts(histories, events)
    assert (shared_design.CACHE.built, shared_design.CACHE.hits) == (1, 3)
    with shared_design.disabled():
        own = _forecasts(histories, events)
    assert shared_design.CACHE.built == 1 + 4  # disabled: every fit built its own
    assert all(_same(a, b) for a, b in zip(shared, own, strict=True))  # bit-identical, not close


@pytest.mark.parametrize("change", ["gap", "events", "grid"])
def test_a_policy_with_other_points_events_or_grid_gets_its_own_design(
        casino_5m: tuple[pd.Series, list[Event]], change: str) -> None:
    history, events = casino_5m
    first = _forecasts([history], events)[0]
    other, other_events = history.copy(), list(events)
    if change == "gap":
        other.iloc[100:110] = np.nan  # its own observed points
    elif change == "events":
        other_events = other_events[:-1]
    else:
        other = other.iloc[1:]  # starts a step later
    second = _forecasts([other], other_events)[0]
    assert (shared_design.CACHE.built, shared_design.CACHE.hits) == (2, 0)
    with shared_design.disabled():
        assert _same(second, _forecasts([other], other_events)[0])
    assert not _same(first, second)


def test_the_cache_is_bounded(casino_30m: tuple[pd.Series, list[Event]]) -> None:
    history, events = casino_30m
    for k in range(shared_design.MAX_ENTRIES + 2):  # a new grid every time (the history moves a step)
        Calendar().fit(history.iloc[k:], events)
    assert shared_design.CACHE.built == shared_design.MAX_ENTRIES + 2
    assert len(shared_design.CACHE._entries) == shared_design.MAX_ENTRIES
    Calendar().fit(history.iloc[shared_design.MAX_ENTRIES + 1:], events)  # the newest is still there
    assert shared_design.CACHE.hits == 1
